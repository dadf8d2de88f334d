/**
 * The Node service for object volumes (`obj1:` ids): staging asks the FUSE supervisor for one daemon per
 * volume at the staging path, publishing bind-mounts it into each pod (RWX), and stats report the
 * supervisor's view of the daemon as the volume condition. Block volumes never reach this module.
 */
import { lstat } from 'node:fs/promises';
import { failedPrecondition, invalidArgument, notFound, unavailable } from './errors';
import type { NodeDeps } from './node-deps';
import type { CallContext, ServiceHandlers, UnaryHandler } from './server';
import type {
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  NodePublishVolumeRequest,
  NodeStageVolumeRequest,
  NodeUnpublishVolumeRequest,
  NodeUnstageVolumeRequest,
  VolumeCapability,
} from './types';
import { requireMessage, requirePathUnder, requireString } from './validate';
import type { FuseMountService } from '../fuse/supervisor-client';
import { detachLazily, fuseMountAt, probeMount } from '../fuse/mount-health';
import { execFile } from '../mount/exec';
import { objectCredentials, objectMountSpec } from './node-object-context';
import { OBJECT_VOLUME_ID_PREFIX, parseObjectVolumeId, type ObjectVolumeRef } from '../object/volume-id';

/** The RPCs that carry a volume id and differ for object volumes. */
export const OBJECT_ROUTED_RPCS = [
  'NodeStageVolume',
  'NodeUnstageVolume',
  'NodePublishVolume',
  'NodeUnpublishVolume',
  'NodeGetVolumeStats',
];

/** Kubelet drops a stats answer without usage ("usage is nil"), and the condition with it. */
const UNMEASURABLE = [{ unit: 'BYTES' as const, total: 0, used: 0, available: 0 }];

/**
 * Wraps the block handlers so requests for `obj1:` volume ids go to the object handlers instead.
 * The routing is by id prefix only; a malformed `obj1:` id is answered INVALID_ARGUMENT by the object side.
 */
export function withObjectRouting(deps: NodeDeps, handlers: ServiceHandlers): ServiceHandlers {
  const object = objectNodeHandlers(deps);
  const out: ServiceHandlers = { ...handlers };
  for (const rpc of OBJECT_ROUTED_RPCS) {
    const block = handlers[rpc];
    const obj = object[rpc];
    out[rpc] = (req: { volume_id?: string }, ctx: CallContext) =>
      typeof req?.volume_id === 'string' && req.volume_id.startsWith(OBJECT_VOLUME_ID_PREFIX)
        ? obj(req, ctx)
        : block(req, ctx);
  }
  return out;
}

/** Handlers of the object-volume node phases, keyed by RPC name. */
export function objectNodeHandlers(deps: NodeDeps): Record<string, UnaryHandler> {
  return {
    NodeStageVolume: (req: NodeStageVolumeRequest, ctx: CallContext) => nodeStageObject(deps, req, ctx),
    NodeUnstageVolume: (req: NodeUnstageVolumeRequest, ctx: CallContext) => nodeUnstageObject(deps, req, ctx),
    NodePublishVolume: (req: NodePublishVolumeRequest, ctx: CallContext) => nodePublishObject(deps, req, ctx),
    NodeUnpublishVolume: (req: NodeUnpublishVolumeRequest, ctx: CallContext) => nodeUnpublishObject(deps, req, ctx),
    NodeGetVolumeStats: (req: NodeGetVolumeStatsRequest) => nodeGetObjectStats(deps, req),
  };
}

function fuseOf(deps: NodeDeps): FuseMountService {
  if (!deps.fuse)
    throw failedPrecondition('object-storage volumes are not enabled on this node (no FUSE supervisor configured)');
  return deps.fuse;
}

function objectRef(volumeId: string): ObjectVolumeRef {
  const ref = parseObjectVolumeId(volumeId);
  if (!ref) throw invalidArgument('volume_id', `"${volumeId}" is not a valid object volume id`);
  return ref;
}

function filesystemCap(cap: VolumeCapability): void {
  if (cap.access_type !== 'mount')
    throw invalidArgument('volume_capability', 'object volumes can only be mounted, not used as raw block');
}

const isReaderOnly = (cap: VolumeCapability) =>
  cap.access_mode?.mode === 'SINGLE_NODE_READER_ONLY' || cap.access_mode?.mode === 'MULTI_NODE_READER_ONLY';

/**
 * Mounts the bucket (or prefix) at staging_target_path through the supervisor; the same volume already
 * staged there is success. Throws INVALID_ARGUMENT for a bad field, context key, secret or mount option,
 * FAILED_PRECONDITION without a supervisor, UNAVAILABLE when it is unreachable, INTERNAL when the daemon fails.
 */
async function nodeStageObject(deps: NodeDeps, req: NodeStageVolumeRequest, ctx: CallContext): Promise<object> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  const ref = objectRef(volumeId);
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  const cap = requireMessage(req.volume_capability, 'volume_capability');
  filesystemCap(cap);
  const spec = objectMountSpec(volumeId, ref, stagingPath, req.volume_context, req.secrets, cap, isReaderOnly(cap));
  const creds = objectCredentials(spec.provider, req.secrets);
  await fuseOf(deps).mount(spec, creds);
  ctx.log.info(
    { stagingPath, mounter: spec.mounter, bucket: spec.bucket, prefix: spec.prefix, readOnly: spec.readOnly },
    'object volume staged',
  );
  return {};
}

/** Asks the supervisor to unmount the staging path (its credential file goes with it); nothing there is success. */
async function nodeUnstageObject(deps: NodeDeps, req: NodeUnstageVolumeRequest, ctx: CallContext): Promise<object> {
  objectRef(requireString(req.volume_id, 'volume_id'));
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  await fuseOf(deps).unmount(stagingPath);
  ctx.log.info({ stagingPath }, 'object volume unstaged');
  return {};
}

/**
 * Bind-mounts the staging mount at target_path, read-only (kernel-enforced) when asked. Node-publish secrets
 * (the StorageClass's `csi.storage.k8s.io/node-publish-secret-*`), which kubelet reads anew at every call
 * (a new pod, or every pod sync when the CSIDriver sets `requiresRepublish`), are how new keys reach a staged
 * volume (NodeStageVolume is not called again): when they differ from the daemon's, the supervisor replaces
 * it under the same mount. Throws FAILED_PRECONDITION when the volume is not staged, ALREADY_EXISTS when
 * another mount holds the target, INVALID_ARGUMENT for incomplete secrets.
 */
async function nodePublishObject(deps: NodeDeps, req: NodePublishVolumeRequest, ctx: CallContext): Promise<object> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  const ref = objectRef(volumeId);
  const targetPath = requirePathUnder(req.target_path, deps.kubeletDir, 'target_path');
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  const cap = requireMessage(req.volume_capability, 'volume_capability');
  filesystemCap(cap);
  if (!(await fuseMountAt(stagingPath))) {
    throw failedPrecondition(`volume ${volumeId} is not staged: no FUSE mount at staging_target_path ${stagingPath}`);
  }
  const readOnly = req.readonly || isReaderOnly(cap);
  const creds =
    req.secrets && Object.keys(req.secrets).length > 0 ? objectCredentials(ref.provider, req.secrets) : undefined;
  const res = await deps.mounter.publishBind(stagingPath, targetPath, { readOnly });
  // After the bind, so that a replaced daemon's binds include this one.
  if (creds) await fuseOf(deps).updateCredentials(stagingPath, creds);
  ctx.log.info(
    { targetPath, stagingPath, readOnly },
    res.alreadyPublished ? 'volume already published; nothing to do' : 'object volume published',
  );
  return {};
}

/** Unmounts the bind at target_path (lazily when its daemon is dead) and removes it; missing is success. */
async function nodeUnpublishObject(deps: NodeDeps, req: NodeUnpublishVolumeRequest, ctx: CallContext): Promise<object> {
  requireString(req.volume_id, 'volume_id');
  const targetPath = requirePathUnder(req.target_path, deps.kubeletDir, 'target_path');
  // A dead rclone mount answers ECONNABORTED, which the generic cleanup does not take for stale: detach it here.
  if (await fuseMountAt(targetPath)) {
    const h = await probeMount(targetPath);
    // Touching a hung mount would block (umount resolves the path); the supervisor replaces its daemon within seconds.
    if (h.state === 'unresponsive')
      throw unavailable(`${targetPath}: ${h.reason}; its FUSE daemon is being replaced, retry`);
    if (h.state === 'dead') await detachLazily({ exec: execFile, log: ctx.log }, targetPath);
  }
  await deps.mounter.cleanupMountPoint(targetPath, { lazyIfBusy: true });
  ctx.log.info({ targetPath }, 'object volume unpublished');
  return {};
}

/**
 * Usage from statfs (what the FUSE daemon reports) and a condition that is abnormal while the daemon
 * at volume_path (or the staging path) is dead, hung or restarting. Nothing here touches a FUSE path from this
 * process (a hung daemon would hold a libuv pool thread for good): mount state is read from mountinfo and the
 * statfs runs out of process with a deadline. Throws NOT_FOUND for a missing volume_path.
 */
async function nodeGetObjectStats(deps: NodeDeps, req: NodeGetVolumeStatsRequest): Promise<NodeGetVolumeStatsResponse> {
  objectRef(requireString(req.volume_id, 'volume_id'));
  const volumePath = requirePathUnder(req.volume_path, deps.kubeletDir, 'volume_path');
  const stagingPath = req.staging_target_path
    ? requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path')
    : undefined;
  const mounted = await fuseMountAt(volumePath);
  if (!mounted && !(await pathExists(volumePath))) throw notFound(`volume_path ${volumePath} does not exist`);
  const mounts = await deps.fuse?.list().catch(() => undefined);
  const known = mounts?.find((m) => m.target === (stagingPath ?? volumePath));
  if (known && known.state !== 'alive') {
    const condition = {
      abnormal: true,
      message: `FUSE mount is ${known.state}: ${known.lastError ?? 'no detail'} (restarts: ${known.restarts})`,
    };
    return { usage: UNMEASURABLE, volume_condition: condition };
  }
  const h = await probeMount(volumePath);
  if (h.state !== 'alive')
    return { usage: UNMEASURABLE, volume_condition: { abnormal: true, message: `${volumePath}: ${h.reason}` } };
  const s = h.stats;
  return {
    usage: [
      { unit: 'BYTES', total: s.totalBytes, used: s.usedBytes, available: s.availableBytes },
      { unit: 'INODES', total: s.totalInodes, used: s.usedInodes, available: s.freeInodes },
    ],
    volume_condition: { abnormal: false, message: 'FUSE mount is serving' },
  };
}

/** Whether `path` (not a mount point: lstat would reach the daemon) exists; a dead FUSE path (ENOTCONN, ...) exists. */
async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
