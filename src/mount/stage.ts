/**
 * Safe format-and-mount for NodeStageVolume: idempotent, and safe to repeat after a crash at any step,
 * because the only formatting path goes through a blank probe (and formatDevice probes again). Finding
 * the device is devices.ts; per-volume serialization is the caller's (and node-mounter.ts's).
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CodedError, Status, messageOf } from '../errors';
import { rescanDevice, type ToolDeps } from './block-device';
import {
  DEFAULT_FS_TYPE, checkFilesystem, describeProbe, deviceSizeBytes, filesystemBytes, formatDevice, growExtOffline, isExtFs, probeDevice,
  resizeFilesystem, rollBackInterruptedGrow,
} from './filesystem';
import { findMountByTarget, mountsOfSource } from './mountinfo';
import { isMountPointOf, mount } from './mounter';

/** Mode of a staging directory we create: kubelet and root only. */
export const STAGING_DIR_MODE = 0o750;

/**
 * Where the offline grow keeps its undo file: beside the staging path, in the volume's own directory under
 * the kubelet dir (node-local and persistent across plugin restarts), never inside the mount point.
 */
export function growUndoFile(stagingPath: string): string {
  return join(dirname(stagingPath), '.cinder-csi-resize2fs.undo');
}

export interface StageRequest {
  /** Device node or by-id link of the volume. */
  device: string;
  stagingPath: string;
  /** Filesystem to create on a blank device; default ext4. An existing filesystem is mounted as it is. */
  fsType?: string;
  mountFlags?: readonly string[];
  readOnly?: boolean;
  /** Grow the filesystem to the device after mounting (volume_context resizeRequired). */
  resizeIfNeeded?: boolean;
  signal?: AbortSignal;
}

export interface StageResult {
  /** The filesystem type actually mounted. */
  fsType: string;
  formatted: boolean;
  /** The device was already mounted on the staging path; nothing was done. */
  alreadyStaged: boolean;
}

/** Slack below which a filesystem counts as filling its device (xfs and ext4 round down to their block or AG size). */
const GROW_SLACK_BYTES = 1024 * 1024;

/**
 * Mounts the volume's filesystem on the staging path, formatting only a blank device.
 * Already staged (this device on this path) → success with alreadyStaged. Throws CodedError
 * FAILED_PRECONDITION when another device is mounted on the path, when the device holds a partition
 * table or a non-filesystem signature, or when a read-only volume is blank; INVALID_ARGUMENT for an
 * fsType we cannot create; INTERNAL when mkfs/mount fail twice (with a device rescan in between).
 */
export async function stageFilesystem(deps: ToolDeps, req: StageRequest): Promise<StageResult> {
  await mkdir(req.stagingPath, { recursive: true, mode: STAGING_DIR_MODE });
  const existing = await findMountByTarget(req.stagingPath);
  if (existing) {
    if (await isMountPointOf(req.stagingPath, req.device)) {
      // A previous attempt may have mounted and then failed to grow; growing a full-size filesystem is a no-op.
      if (req.resizeIfNeeded && !req.readOnly) {
        await resizeFilesystem(deps, req.device, req.stagingPath, existing.fsType, req.signal);
      }
      return { fsType: existing.fsType, formatted: false, alreadyStaged: true };
    }
    throw new CodedError(
      Status.FAILED_PRECONDITION,
      `staging_target_path ${req.stagingPath} already has ${existing.source} (${existing.fsType}) mounted, not ${req.device}`,
    );
  }
  let result: MountedResult;
  try {
    result = await formatAndMount(deps, req);
  } catch (e) {
    if (e instanceof CodedError && e.code !== Status.INTERNAL) throw e;
    // Reference issue #2588: a just-attached device can read as 0 bytes until rescanned; retry once.
    deps.log.warn({ device: req.device, err: messageOf(e) }, 'format/mount failed; rescanning device and retrying once');
    await rescanDevice(deps, req.device).catch((r) => deps.log.warn({ err: messageOf(r) }, 'rescan failed'));
    // A mount that timed out may still have happened; never stack a second one on it.
    result = (await isMountPointOf(req.stagingPath, req.device))
      ? { fsType: (await findMountByTarget(req.stagingPath))?.fsType ?? '', formatted: false, alreadyStaged: false }
      : await formatAndMount(deps, req);
  }
  if ((req.resizeIfNeeded || result.growAfterMount) && !req.readOnly) {
    await resizeFilesystem(deps, req.device, req.stagingPath, result.fsType, req.signal);
  }
  return { fsType: result.fsType, formatted: result.formatted, alreadyStaged: result.alreadyStaged };
}

/** What formatAndMount did, and whether the filesystem still needs growing now that it is mounted (xfs). */
type MountedResult = StageResult & { growAfterMount?: boolean };

/**
 * Whether an unmounted filesystem is smaller than its device: the volume was extended while no node had it
 * staged (a resize whose node step failed or never ran, e.g. an online grow the kernel denied), or it was
 * restored or cloned into a larger volume.
 */
async function smallerThanDevice(deps: ToolDeps, device: string, fsType: string, signal?: AbortSignal): Promise<boolean> {
  const fsBytes = await filesystemBytes(deps, device, fsType, signal);
  if (fsBytes === undefined) return false;
  return (await deviceSizeBytes(deps, device)) - fsBytes > GROW_SLACK_BYTES;
}

async function formatAndMount(deps: ToolDeps, req: StageRequest): Promise<MountedResult> {
  const wanted = req.fsType || DEFAULT_FS_TYPE;
  const found = await probeDevice(deps, req.device);
  let fsType: string;
  let formatted = false;
  let growAfterMount = false;
  if (found.kind === 'filesystem') {
    fsType = found.type;
    if (fsType !== wanted) {
      // As mount-utils: the data wins over the request; reformatting would destroy it.
      deps.log.warn(
        { device: req.device, requested: wanted, existing: fsType },
        'device already has a different filesystem; mounting it as is',
      );
    }
    // fsck only an unmounted filesystem: e2fsck refuses a mounted one, and another staging path may hold it.
    if ((await mountsOfSource(req.device)).length === 0) {
      const undoFile = growUndoFile(req.stagingPath);
      // An earlier stage killed during the grow below: put the filesystem back as it was before checking it.
      if (isExtFs(fsType)) await rollBackInterruptedGrow(deps, req.device, undoFile, req.signal);
      await checkFilesystem(deps, req.device, fsType, req.signal);
      // A filesystem smaller than its device is grown at every stage, not only when the volume context asks
      // (restores and clones): a NodeExpandVolume that failed on the mounted filesystem (online ext4 growth
      // needs CAP_SYS_RESOURCE) is then finished by the next stage. ext* grows here, before mounting
      // (offline: no CAP_SYS_RESOURCE needed, see growExtOffline); xfs only grows mounted, right after the mount.
      if (!req.readOnly && (req.resizeIfNeeded || (await smallerThanDevice(deps, req.device, fsType, req.signal)))) {
        growAfterMount = !(await growExtOffline(deps, req.device, fsType, req.signal, undoFile));
      }
    }
  } else if (found.kind === 'blank' || found.kind === 'unfinished') {
    if (req.readOnly) {
      const msg = found.kind === 'blank'
        ? `cannot stage blank device ${req.device} read-only: it would need formatting`
        : `cannot stage device ${req.device} read-only: it holds ${describeProbe(found)} and would need formatting`;
      throw new CodedError(Status.FAILED_PRECONDITION, msg);
    }
    if (found.kind === 'unfinished') {
      // A stage killed during mkfs: its filesystem never became mountable, so making it again loses nothing.
      deps.log.warn({ device: req.device, type: found.type }, 'device holds a filesystem whose mkfs never finished; formatting it again');
    }
    await formatDevice(deps, req.device, wanted, { signal: req.signal, replaceUnfinished: found.kind === 'unfinished' });
    fsType = wanted;
    formatted = true;
  } else {
    throw new CodedError(
      Status.FAILED_PRECONDITION,
      `device ${req.device} holds ${describeProbe(found)}, not a filesystem; refusing to format or mount it`,
    );
  }
  await mount(deps, req.device, req.stagingPath, {
    fsType,
    options: req.mountFlags ?? [],
    readOnly: req.readOnly,
    signal: req.signal,
  });
  return { fsType, formatted, alreadyStaged: false, growAfterMount };
}
