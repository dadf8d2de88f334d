/**
 * GetCapacity: how much more the CO may provision with a StorageClass's parameters in a topology segment,
 * from the project's Cinder quotas (src/block/block-capacity.ts). Cinder's quotas are per project, so every
 * zone gets the same answer. No finite quota applies → the largest int64: the CO then never filters on
 * capacity, which is what an unlimited quota means (0 would tell the scheduler nothing fits). Object
 * volumes (`backend: object`) have no quota the driver can read: unlimited too.
 */
import type { CallContext, ServiceHandlers } from './server';
import type * as csi from './types';
import { GIB, validateCapabilities } from './validate';
import { validateObjectCapability } from './controller-object';
import { parseVolumeParameters } from './controller-params';
import type { ControllerDeps, ControllerRouting } from './controller-routing';
import { unimplemented } from './errors';
import { isObjectBackend } from '../object/object-params';

/** available_capacity of an unlimited quota: int64's largest value, in bytes. */
export const UNLIMITED_BYTES = '9223372036854775807';

const bytes = (gib: number): string => (BigInt(gib) * BigInt(GIB)).toString();

export function capacityHandlers(deps: ControllerDeps, routing: ControllerRouting): ServiceHandlers {
  return {
    async GetCapacity(req: csi.GetCapacityRequest, ctx: CallContext): Promise<csi.GetCapacityResponse> {
      const params = req.parameters ?? {};
      const caps = req.volume_capabilities ?? [];
      if (isObjectBackend(params)) {
        caps.forEach((c, i) => validateObjectCapability(c, `volume_capabilities[${i}]`));
        return { available_capacity: UNLIMITED_BYTES };
      }
      if (caps.length > 0) validateCapabilities(caps, 'volume_capabilities');
      // The same parameters as CreateVolume; affinity keys change where a volume goes, not how much fits.
      const p = parseVolumeParameters(params, { cluster: deps.cluster, pvcAnnotations: true });
      // GetCapacity carries no secrets: the `[Global]` cloud (or the only one) answers.
      const backend = routing.forSecrets(undefined);
      if (!backend.getCapacity) throw unimplemented('this backend has no capacity to report');
      const c = await backend.getCapacity({ volumeType: p.volumeType }, ctx.signal);
      ctx.log.debug(
        {
          availableGiB: c.availableGiB,
          maximumVolumeGiB: c.maximumVolumeGiB,
          from: c.from,
          zone: req.accessible_topology?.segments,
        },
        'capacity',
      );
      return {
        available_capacity: c.availableGiB === undefined ? UNLIMITED_BYTES : bytes(c.availableGiB),
        ...(c.maximumVolumeGiB !== undefined ? { maximum_volume_size: { value: bytes(c.maximumVolumeGiB) } } : {}),
      };
    },
  };
}
