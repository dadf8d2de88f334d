/**
 * NodeExpandVolume and NodeGetVolumeStats: the RPCs about a volume already in use. Expansion checks the
 * device really grew (optionally rescanning it) before growing the filesystem; stats report usage and a
 * volume condition read from mountinfo and the by-id links. Growing and statfs are the mounter's.
 */
import type { MountInfo } from '../mount/mountinfo';
import { failedPrecondition, invalidArgument, notFound } from './errors';
import type { ServiceHandlers, CallContext } from './server';
import type {
  CapacityRange,
  NodeExpandVolumeRequest,
  NodeExpandVolumeResponse,
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  VolumeCondition,
  VolumeUsage,
} from './types';
import { isAbsolute } from 'node:path';
import { requirePathUnder, requireString, validateCapability } from './validate';
import { isBlock, lookForDevice, type NodeDeps } from './node-deps';

/**
 * Reported with an abnormal condition when nothing can be measured: kubelet drops a stats answer whose
 * usage is empty ("usage is nil", pkg/volume/csi/csi_client.go), and the condition with it.
 */
const UNMEASURABLE: VolumeUsage[] = [{ unit: 'BYTES', total: 0, used: 0, available: 0 }];

/** Handlers of the in-use phase. */
export function volumeHandlers(deps: NodeDeps): ServiceHandlers {
  return {
    NodeExpandVolume: (req: NodeExpandVolumeRequest, ctx: CallContext) => nodeExpandVolume(deps, req, ctx),
    NodeGetVolumeStats: (req: NodeGetVolumeStatsRequest) => nodeGetVolumeStats(deps, req),
  };
}

/**
 * Grows the filesystem at volume_path to its device (raw block: nothing to grow) and answers the device
 * size. Throws NOT_FOUND when volume_path does not exist, FAILED_PRECONDITION when the device is still
 * smaller than required_bytes (after a rescan with `rescan-on-resize`) or nothing is mounted there, and
 * FAILED_PRECONDITION naming CAP_SYS_RESOURCE when the kernel denies an ext4 online resize.
 */
export async function nodeExpandVolume(
  deps: NodeDeps,
  req: NodeExpandVolumeRequest,
  ctx: CallContext,
): Promise<NodeExpandVolumeResponse> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  const volumePath = volumePathOf(req.volume_path, volumeId, deps.kubeletDir);
  if (req.staging_target_path) requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  if (req.volume_capability) validateCapability(req.volume_capability, 'volume_capability');
  const required = requiredBytes(req.capacity_range);

  const kind = await deps.mounter.pathKind(volumePath);
  if (kind === 'missing') throw notFound(`volume_path ${volumePath} does not exist`);
  if (kind === 'stale') throw failedPrecondition(`volume_path ${volumePath} is a stale mount; cannot expand it`);
  const raw = isBlock(req.volume_capability) || kind === 'block-device';
  // A raw-block target is a bind of the device node itself: sizing it reaches the device by number.
  const device = raw ? volumePath : await mountedDevice(deps, volumeId, volumePath);

  let size = await deps.mounter.deviceSizeBytes(device);
  if (size < required && deps.blockStorage.rescanOnResize) {
    await deps.mounter.rescanDevice(device);
    size = await deps.mounter.deviceSizeBytes(device);
  }
  if (size < required) {
    throw failedPrecondition(
      `device ${device} of volume ${volumeId} has ${size} bytes, less than the ${required} required; not grown yet`,
    );
  }
  if (!raw) await deps.mounter.resizeFilesystem(device, volumePath);
  ctx.log.info({ volumePath, device, sizeBytes: size, raw }, 'volume expanded on node');
  return { capacity_bytes: size };
}

/**
 * volume_path of the in-use RPCs, checked before anything is looked at. A relative path is NOT_FOUND: the CO
 * only ever publishes or stages at absolute paths (NodePublish/NodeStage refuse others), so no volume can be
 * there, and that is known without resolving it against the plugin's working directory, i.e. without touching
 * the filesystem. An absolute path outside the kubelet dir (or escaping it with `..` or a link) stays
 * INVALID_ARGUMENT, decided lexically too: the plugin refuses to look there at all, so it cannot claim what
 * is or is not there. Only a path under the kubelet dir is ever stat()ed.
 */
function volumePathOf(path: string | undefined, volumeId: string, kubeletDir: string): string {
  const p = requireString(path, 'volume_path');
  if (!isAbsolute(p))
    throw notFound(`volume ${volumeId} is not at volume_path "${p}": a relative path never holds a published volume`);
  return requirePathUnder(p, kubeletDir, 'volume_path');
}

function requiredBytes(range: CapacityRange | null | undefined): number {
  const v = range?.required_bytes;
  if (v === undefined || v === null || v === '') return 0;
  if (!/^\d+$/.test(String(v)))
    throw invalidArgument('capacity_range.required_bytes', `"${String(v)}" is not a non-negative integer`);
  return Number(v);
}

/**
 * The block device mounted at `path`, from mountinfo. Falls back to the volume's by-id link when the
 * recorded source is not a device node here (a containerized mount table can name `/dev/root`).
 */
async function mountedDevice(deps: NodeDeps, volumeId: string, path: string): Promise<string> {
  const top = await deps.mounter.findMount(path);
  if (!top) throw failedPrecondition(`nothing is mounted at volume_path ${path}`);
  if ((await deps.mounter.pathKind(top.source)) === 'block-device') return top.source;
  const found = await lookForDevice(deps, volumeId);
  if (found && (await deps.mounter.isMountPointOf(path, found.path))) return found.path;
  throw failedPrecondition(
    `cannot tell which device is mounted at volume_path ${path} (mountinfo names ${top.source})`,
  );
}

/**
 * Usage of a published or staged volume: BYTES and INODES for a filesystem, total BYTES for raw block,
 * and a condition that is abnormal when the path is no longer a mount, is stale, its filesystem went
 * read-only under a read-write mount, or the volume's device is gone. Throws NOT_FOUND for a missing path.
 */
export async function nodeGetVolumeStats(
  deps: NodeDeps,
  req: NodeGetVolumeStatsRequest,
): Promise<NodeGetVolumeStatsResponse> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  const volumePath = volumePathOf(req.volume_path, volumeId, deps.kubeletDir);
  const stagingPath = req.staging_target_path
    ? requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path')
    : undefined;

  const kind = await deps.mounter.pathKind(volumePath);
  switch (kind) {
    case 'missing':
      throw notFound(`volume_path ${volumePath} does not exist`);
    case 'stale':
      return {
        usage: UNMEASURABLE,
        volume_condition: abnormal(`${volumePath} is a stale mount (transport endpoint or I/O error)`),
      };
    case 'file':
      return { usage: UNMEASURABLE, volume_condition: abnormal(`${volumePath} is no longer bound to a block device`) };
    case 'block-device': {
      const total = await deps.mounter.deviceSizeBytes(volumePath);
      return { usage: [{ unit: 'BYTES', total }], volume_condition: await deviceCondition(deps, volumeId, volumePath) };
    }
    case 'directory': {
      // An unmounted directory holds no volume: statfs there would measure the host's filesystem. A known
      // volume (its device is here) was unmounted underneath, which is a condition to report; an unknown one
      // is not at this path at all.
      if (!(await deps.mounter.findMount(volumePath))) {
        if (!(await lookForDevice(deps, volumeId)))
          throw notFound(`volume ${volumeId} is not mounted at volume_path ${volumePath}`);
        return {
          usage: UNMEASURABLE,
          volume_condition: abnormal(
            `${volumePath} is no longer a mount point: the volume's filesystem was unmounted underneath`,
          ),
        };
      }
      const s = await deps.mounter.fsStats(volumePath);
      return {
        usage: [
          { unit: 'BYTES', total: s.totalBytes, used: s.usedBytes, available: s.availableBytes },
          { unit: 'INODES', total: s.totalInodes, used: s.usedInodes, available: s.freeInodes },
        ],
        volume_condition: await filesystemCondition(deps, volumeId, volumePath, stagingPath),
      };
    }
  }
}

const NORMAL: VolumeCondition = { abnormal: false, message: 'volume is healthy' };
const abnormal = (message: string): VolumeCondition => ({ abnormal: true, message });

async function filesystemCondition(
  deps: NodeDeps,
  volumeId: string,
  volumePath: string,
  stagingPath?: string,
): Promise<VolumeCondition> {
  const paths = stagingPath && stagingPath !== volumePath ? [volumePath, stagingPath] : [volumePath];
  for (const path of paths) {
    const kind = await deps.mounter.pathKind(path);
    if (kind === 'stale') return abnormal(`${path} is a stale mount (transport endpoint or I/O error)`);
    const top = kind === 'missing' ? undefined : await deps.mounter.findMount(path);
    if (!top) return abnormal(`${path} is no longer a mount point: the volume's filesystem was unmounted underneath`);
    if (wentReadOnly(top))
      return abnormal(`the filesystem at ${path} (${top.source}) went read-only under a read-write mount`);
  }
  return deviceCondition(deps, volumeId, volumePath);
}

/**
 * The filesystem itself is read-only (superblock `ro`, as after ext4 errors=remount-ro) while the mount
 * was made read-write. A read-only publish or a reader-only staging mount is `ro` per mount, so not flagged.
 */
function wentReadOnly(m: MountInfo): boolean {
  return m.superOptions.includes('ro') && m.mountOptions.includes('rw');
}

async function deviceCondition(deps: NodeDeps, volumeId: string, path: string): Promise<VolumeCondition> {
  const device = await lookForDevice(deps, volumeId);
  if (!device) return abnormal(`the device of volume ${volumeId} is gone from ${deps.byIdDir} (detached?)`);
  if (!(await deps.mounter.isMountPointOf(path, device.path))) {
    return abnormal(`${path} is not backed by ${device.path}, the volume's device now`);
  }
  return NORMAL;
}
