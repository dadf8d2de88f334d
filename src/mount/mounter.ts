/**
 * mount(8)/umount(8) and what surrounds them: bind mounts (read-only takes a remount), tearing down every
 * mount stacked on a path including stale ones, and statfs. Mount state is always read from mountinfo;
 * a `stat` of a stale FUSE/NFS mount point fails with ENOTCONN/ECONNABORTED/EIO/ESTALE, which is handled, not thrown.
 */
import { lstat, rmdir, statfs, stat, unlink } from 'node:fs/promises';
import { CodedError, Status, messageOf } from '../errors';
import { ExecError } from './exec';
import { resolveBlockDevice, type ToolDeps } from './block-device';
import { findMountByTarget, mountsAt, readMountInfo, resolveMountPath, splitDevT } from './mountinfo';

export { deviceSizeBytes as blockDeviceSize } from './block-device';

export const MOUNT_TIMEOUT_MS = 120_000;
/** More mounts than this on one path means something keeps re-mounting it; give up rather than spin. */
export const MAX_STACKED_MOUNTS = 32;

// A dead rclone mount answers ECONNABORTED rather than ENOTCONN.
const STALE_ERRNOS = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO', 'ESTALE']);
const STALE_STDERR = /not connected|Input\/output error|Stale file handle/i;

export interface MountOptions {
  fsType?: string;
  options?: readonly string[];
  readOnly?: boolean;
  bind?: boolean;
  signal?: AbortSignal;
}

/**
 * Mounts `source` on `target` (which must exist). xfs always gets `nouuid` so a clone or restored
 * snapshot can be mounted next to its origin. Throws CodedError INTERNAL (ExecError) on failure.
 */
export async function mount(deps: ToolDeps, source: string, target: string, opts: MountOptions = {}): Promise<void> {
  const o = [...(opts.options ?? [])];
  if (opts.bind) o.unshift('bind');
  if (opts.readOnly) o.push('ro');
  if (opts.fsType === 'xfs' && !o.includes('nouuid')) o.push('nouuid');
  const argv = [
    ...(opts.fsType && !opts.bind ? ['-t', opts.fsType] : []),
    ...(o.length ? ['-o', o.join(',')] : []),
    source,
    target,
  ];
  await deps.exec('mount', argv, { signal: opts.signal, timeoutMs: MOUNT_TIMEOUT_MS });
}

/**
 * Bind-mounts `source` on `target`. The kernel ignores `ro` on the first bind (mount(8) "bind"), so a
 * read-only bind is a bind then `remount,bind,ro`; if the remount fails the bind is undone.
 */
export async function bindMount(
  deps: ToolDeps,
  source: string,
  target: string,
  readOnly: boolean,
  options: readonly string[] = [],
): Promise<void> {
  await mount(deps, source, target, { bind: true, options });
  if (!readOnly) return;
  try {
    await deps.exec('mount', ['-o', ['remount', 'bind', 'ro', ...options].join(','), target], {
      timeoutMs: MOUNT_TIMEOUT_MS,
    });
  } catch (e) {
    await unmount(deps, target).catch((u) =>
      deps.log.error({ target, err: messageOf(u) }, 'cannot undo bind after failed ro remount'),
    );
    throw e;
  }
}

/** Unmounts the topmost mount at `target`; `lazy` detaches it now and finishes when it is no longer busy. */
export async function unmount(deps: ToolDeps, target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  await deps.exec('umount', [...(opts.lazy ? ['-l'] : []), target], { timeoutMs: MOUNT_TIMEOUT_MS });
}

export interface CleanupOptions {
  /**
   * Detach a busy mount lazily instead of failing. Off by default: a lazily detached filesystem lives on
   * while files are open, and detaching its volume then loses writes.
   */
  lazyIfBusy?: boolean;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code as string | undefined;
}

/**
 * Unmounts everything stacked on `path`, then removes it (rmdir for a directory, unlink for a raw-block
 * target file; a non-empty directory is not removed). A stale mount is detached lazily. A missing path
 * or one with nothing mounted is success. Throws CodedError FAILED_PRECONDITION when a mount is busy
 * (and lazyIfBusy is off) or the directory is not empty, INTERNAL when umount fails otherwise.
 */
export async function cleanupMountPoint(deps: ToolDeps, path: string, opts: CleanupOptions = {}): Promise<void> {
  const target = await resolveMountPath(path);
  for (let i = 0; ; i++) {
    if (mountsAt(await readMountInfo(), target).length === 0) break;
    if (i >= MAX_STACKED_MOUNTS) {
      throw new CodedError(Status.INTERNAL, `${path} still has mounts after ${MAX_STACKED_MOUNTS} unmounts`);
    }
    const stale = await isStale(path);
    try {
      await unmount(deps, target, { lazy: stale });
    } catch (e) {
      const stderr = e instanceof ExecError ? e.stderr : '';
      if (STALE_STDERR.test(stderr)) {
        await unmount(deps, target, { lazy: true });
      } else if (/busy/i.test(stderr)) {
        if (!opts.lazyIfBusy)
          throw new CodedError(Status.FAILED_PRECONDITION, `${path} is busy: ${stderr}`, { cause: e });
        deps.log.warn({ path }, 'mount is busy; detaching lazily');
        await unmount(deps, target, { lazy: true });
      } else {
        throw e;
      }
    }
  }
  await removeMountPoint(path);
}

async function isStale(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (e) {
    return STALE_ERRNOS.has(errno(e) ?? '');
  }
}

async function removeMountPoint(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  try {
    if (st.isDirectory()) await rmdir(path);
    else await unlink(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    if (errno(e) === 'ENOTEMPTY') {
      throw new CodedError(Status.FAILED_PRECONDITION, `${path} is not mounted but not empty; not removing it`);
    }
    throw e;
  }
}

/**
 * Whether the topmost mount at `target` is `device`: a filesystem on it (same device number, or the same
 * source path for btrfs) or, for a raw-block target, a bind of the device node itself. False when
 * nothing is mounted there or the device does not exist.
 */
export async function isMountPointOf(target: string, device: string): Promise<boolean> {
  const top = await findMountByTarget(target);
  if (!top) return false;
  let dev;
  try {
    dev = await resolveBlockDevice(device);
  } catch {
    return false;
  }
  const { major, minor } = splitDevT((await stat(dev.path)).rdev);
  if (top.major === major && top.minor === minor) return true;
  if (top.source === dev.path || top.source === device) return true;
  try {
    const t = await stat(target);
    return t.isBlockDevice() && splitDevT(t.rdev).major === major && splitDevT(t.rdev).minor === minor;
  } catch {
    return false;
  }
}

/** Usage of the filesystem holding `path`, in bytes and inodes. */
export interface FsStats {
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
  totalInodes: number;
  usedInodes: number;
  freeInodes: number;
}

/** statfs of `path`. Throws CodedError NOT_FOUND when the path does not exist. */
export async function fsStats(path: string): Promise<FsStats> {
  let s;
  try {
    s = await statfs(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') throw new CodedError(Status.NOT_FOUND, `${path} does not exist`);
    throw new CodedError(Status.INTERNAL, `statfs ${path}: ${messageOf(e)}`, { cause: e });
  }
  return {
    totalBytes: s.blocks * s.bsize,
    // Used counts blocks reserved for root too, as df does; available is what an unprivileged writer gets.
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    availableBytes: s.bavail * s.bsize,
    totalInodes: s.files,
    usedInodes: s.files - s.ffree,
    freeInodes: s.ffree,
  };
}
