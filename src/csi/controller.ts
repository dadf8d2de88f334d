/**
 * The CSI Controller service: capabilities, and the handlers of every Controller RPC assembled from
 * controller-volumes, controller-publish, controller-snapshots and controller-modify over one ControllerRouting.
 * The server wrapper (server.ts) already serializes per volume, strips secrets from logs and maps errors to codes.
 */
import type { ServiceHandlers } from './server';
import type { ControllerGetCapabilitiesResponse, ControllerRpcType } from './types';
import { type ControllerDeps, ControllerRouting } from './controller-routing';
import { volumeHandlers } from './controller-volumes';
import { publishHandlers } from './controller-publish';
import { snapshotHandlers } from './controller-snapshots';
import { modifyHandlers } from './controller-modify';
import { capacityHandlers } from './controller-capacity';

export type { ControllerDeps } from './controller-routing';

/** What this controller implements. */
export const CONTROLLER_CAPABILITIES: readonly ControllerRpcType[] = [
  'CREATE_DELETE_VOLUME',
  'PUBLISH_UNPUBLISH_VOLUME',
  'LIST_VOLUMES',
  'LIST_VOLUMES_PUBLISHED_NODES',
  'GET_VOLUME',
  'VOLUME_CONDITION',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'CLONE_VOLUME',
  'EXPAND_VOLUME',
  'PUBLISH_READONLY',
  'SINGLE_NODE_MULTI_WRITER',
  'MODIFY_VOLUME',
  'GET_CAPACITY',
];

/**
 * Handlers of the Controller service, keyed by RPC name, for CsiServer. One Cinder backend is built per
 * entry of `deps.clouds`; each request picks one with its `cloud` secret (INVALID_ARGUMENT if unknown).
 * `backend: object` CreateVolume and every `obj1:` volume id go to the object backend (`deps.object`).
 */
export function controllerHandlers(deps: ControllerDeps): ServiceHandlers {
  const routing = new ControllerRouting(deps);
  return {
    async ControllerGetCapabilities(): Promise<ControllerGetCapabilitiesResponse> {
      return { capabilities: CONTROLLER_CAPABILITIES.map((type) => ({ rpc: { type } })) };
    },
    ...volumeHandlers(deps, routing),
    ...publishHandlers(routing),
    ...snapshotHandlers(deps, routing),
    ...modifyHandlers(routing),
    ...capacityHandlers(deps, routing),
  };
}
