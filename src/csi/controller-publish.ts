/**
 * ControllerPublishVolume and ControllerUnpublishVolume: argument checks, then the backend attaches or
 * detaches and waits. Readonly publishing is enforced by the node (bind mount `ro`): Cinder has no read-only
 * attachment; the backend remembers the mode per node so a publish with the other one is ALREADY_EXISTS.
 */
import type { CallContext, ServiceHandlers } from './server';
import type * as csi from './types';
import { requireMessage, requireString, validateCapability } from './validate';
import type { ControllerRouting } from './controller-routing';
import { validateObjectCapability } from './controller-object';
import { isObjectVolumeId } from '../object/volume-id';

/** publish_context key of the device path Nova reported (reference-compatible; the node does not trust it). */
export const DEVICE_PATH_KEY = 'DevicePath';

export function publishHandlers(routing: ControllerRouting): ServiceHandlers {
  return {
    async ControllerPublishVolume(
      req: csi.ControllerPublishVolumeRequest,
      ctx: CallContext,
    ): Promise<csi.ControllerPublishVolumeResponse> {
      const volumeId = requireString(req.volume_id, 'volume_id');
      const nodeId = requireString(req.node_id, 'node_id');
      const cap = requireMessage(req.volume_capability, 'volume_capability');
      if (isObjectVolumeId(volumeId)) validateObjectCapability(cap, 'volume_capability');
      else validateCapability(cap, 'volume_capability');
      const backend = routing.forVolume(volumeId, req.secrets);
      const { devicePath } = await backend.publishVolume(volumeId, nodeId, ctx.signal, req.readonly === true);
      return { publish_context: devicePath ? { [DEVICE_PATH_KEY]: devicePath } : {} };
    },

    async ControllerUnpublishVolume(
      req: csi.ControllerUnpublishVolumeRequest,
      ctx: CallContext,
    ): Promise<csi.ControllerUnpublishVolumeResponse> {
      const volumeId = requireString(req.volume_id, 'volume_id');
      // An empty node_id means "from every node" (CSI spec).
      await routing.forVolume(volumeId, req.secrets).unpublishVolume(volumeId, req.node_id ?? '', ctx.signal);
      return {};
    },
  };
}
