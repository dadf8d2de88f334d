/**
 * The CSI Node service for Cinder block volumes: capabilities and NodeGetInfo here, the volume phases in
 * node-mount (stage, publish and their undoing) and node-volume (expand, stats). The server
 * wrapper (server.ts) already serializes per volume, strips secrets from logs and maps errors to codes.
 */
import { CodedError, Status, messageOf } from '../errors';
import { unavailable } from './errors';
import type { CallContext, ServiceHandlers } from './server';
import type { NodeGetCapabilitiesResponse, NodeGetInfoResponse, NodeRpcType } from './types';
import type { NodeDeps } from './node-deps';
import { mountHandlers } from './node-mount';
import { volumeHandlers } from './node-volume';
import { withObjectRouting } from './node-object';

export type { NodeDeps, NodeMetadata } from './node-deps';

/** Topology key of the node's availability zone, as the reference driver names it. */
export const ZONE_TOPOLOGY_KEY = 'topology.cinder.csi.openstack.org/zone';
/**
 * max_volumes_per_node when `[BlockStorage] node-volume-attach-limit` is unset: the reference documents
 * 256 (but reports 0, "unlimited", cinder-csi-plugin.md §8); a virtio-blk guest runs out of PCI slots first.
 */
export const DEFAULT_MAX_VOLUMES_PER_NODE = 256;
/** Kubernetes label values are at most 63 characters (apimachinery validation.LabelValueMaxLength). */
export const LABEL_VALUE_MAX_CHARS = 63;

/**
 * What this node implements. VOLUME_MOUNT_GROUP only with `--volume-mount-group` (NodeDeps.volumeMountGroup):
 * by default fsGroup is left to kubelet's recursive chown, as in the reference driver.
 */
export const NODE_CAPABILITIES: readonly NodeRpcType[] = [
  'STAGE_UNSTAGE_VOLUME',
  'EXPAND_VOLUME',
  'GET_VOLUME_STATS',
  'VOLUME_CONDITION',
  'SINGLE_NODE_MULTI_WRITER',
];

/**
 * An availability zone as a valid label value, as the reference's SanitizeLabel: runs of characters outside
 * `[-a-zA-Z0-9_.]` become `-`, the ends are trimmed of `-_.`, and the result is cut to 63 characters.
 * Unlike the reference, the ends are trimmed again after cutting, so the value never ends in `-`.
 */
export function sanitizeLabelValue(value: string): string {
  const trim = (s: string) => s.replace(/^[-_.]+|[-_.]+$/g, '');
  return trim(trim(value.replace(/[^-a-zA-Z0-9_.]+/g, '-')).slice(0, LABEL_VALUE_MAX_CHARS));
}

/**
 * Handlers of the Node service, keyed by RPC name, for CsiServer. Every path a request names must lie
 * under `deps.kubeletDir` (INVALID_ARGUMENT naming the field otherwise).
 */
export function nodeHandlers(deps: NodeDeps): ServiceHandlers {
  // Object volumes (`obj1:` ids) take their own stage/publish/stats path (src/csi/node-object.ts).
  return withObjectRouting(deps, {
    async NodeGetCapabilities(): Promise<NodeGetCapabilitiesResponse> {
      const types = deps.volumeMountGroup ? [...NODE_CAPABILITIES, 'VOLUME_MOUNT_GROUP' as const] : NODE_CAPABILITIES;
      return { capabilities: types.map((type) => ({ rpc: { type } })) };
    },
    NodeGetInfo: (_req: unknown, ctx: CallContext) => nodeGetInfo(deps, ctx),
    ...mountHandlers(deps),
    ...volumeHandlers(deps),
  });
}

/**
 * node_id is the Nova instance id (the override, else the metadata sources); the topology carries the
 * sanitized zone and every additional segment when topology is on. A metadata failure is UNAVAILABLE
 * with what each source said (the reference answers INTERNAL, issues #1030, #1947): kubelet retries it.
 */
async function nodeGetInfo(deps: NodeDeps, ctx: CallContext): Promise<NodeGetInfoResponse> {
  let nodeId = deps.nodeId;
  let zone: string | undefined;
  if (!nodeId) {
    const md = await instanceMetadata(deps, ctx);
    nodeId = md.uuid;
    zone = md.availabilityZone === undefined ? undefined : sanitizeLabelValue(md.availabilityZone);
  }
  const segments: Record<string, string> = {};
  if (deps.withTopology) {
    if (zone) segments[ZONE_TOPOLOGY_KEY] = zone;
    else ctx.log.warn({ nodeId }, 'no availability zone known for this node; reporting no zone topology');
    Object.assign(segments, deps.additionalTopology);
  }
  return {
    node_id: nodeId,
    max_volumes_per_node: deps.blockStorage.nodeVolumeAttachLimit ?? DEFAULT_MAX_VOLUMES_PER_NODE,
    accessible_topology: Object.keys(segments).length > 0 ? { segments } : null,
  };
}

async function instanceMetadata(
  deps: NodeDeps,
  ctx: CallContext,
): Promise<{ uuid: string; availabilityZone?: string }> {
  try {
    return await deps.metadata.get(ctx.signal);
  } catch (e) {
    // Our deadline, or the metadata client's own UNAVAILABLE with every source's answer, go out as they are.
    if (e instanceof CodedError && e.code !== Status.INTERNAL && e.code !== Status.UNKNOWN) throw e;
    throw unavailable(`instance metadata unavailable: ${messageOf(e)}`);
  }
}
