/**
 * What is written on a block device and the tools that change it: blkid probe, mkfs, fsck, online grow.
 * Invariant: a device that holds any signature (filesystem, partition table, RAID, LUKS, swap…) is never
 * formatted, under any failure or retry; formatDevice re-probes right before mkfs to keep it.
 */
import { open, rm } from 'node:fs/promises';
import { CodedError, Status } from '../errors';
import { ExecError } from './exec';
import { exists, type ToolDeps } from './block-device';

export { deviceSizeBytes, rescanDevice, type ToolDeps } from './block-device';

/** mkfs of a multi-TiB device with lazy init still writes the journal; allow minutes. */
export const MKFS_TIMEOUT_MS = 10 * 60_000;
/** e2fsck -p of a large, dirty filesystem. */
export const FSCK_TIMEOUT_MS = 10 * 60_000;
export const RESIZE_TIMEOUT_MS = 10 * 60_000;

/** blkid exit codes (blkid(8)): 2 = nothing found, 8 = ambivalent low-level probe. */
const BLKID_NOTHING_FOUND = 2;
const BLKID_AMBIVALENT = 8;
/** e2fsck exit codes (e2fsck(8)): 1 = errors corrected, 2 = corrected, reboot advised, 4+ = not corrected. */
const FSCK_CORRECTED = 1;
const FSCK_CORRECTED_REBOOT = 2;

/**
 * Primary XFS superblock fields (xfs_format.h, struct xfs_dsb): the magic at byte 0 and sb_inprogress at
 * byte 126, which mkfs.xfs sets in the first superblock it writes and clears last.
 */
const XFS_MAGIC = 'XFSB';
const XFS_INPROGRESS_OFFSET = 126;

export type FsType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs';
export const FORMATTABLE_FS_TYPES: readonly FsType[] = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs'];
export const DEFAULT_FS_TYPE: FsType = 'ext4';

export type ProbeResult =
  | { kind: 'filesystem'; type: string }
  | { kind: 'partition-table'; type: string }
  | { kind: 'other'; type: string }
  /** A filesystem whose mkfs never finished (killed half-way): nothing can have been written to it. */
  | { kind: 'unfinished'; type: string }
  | { kind: 'blank' };

/** Whether `type` is one of the ext family, which e2fsprogs checks and grows. */
export function isExtFs(type: string): boolean {
  return type === 'ext2' || type === 'ext3' || type === 'ext4';
}

/**
 * Low-level probe of a device with `blkid -p -o export` (reads the device, never blkid's cache, which
 * can be stale right after attach). Only blkid's "nothing found" exit makes a device blank; anything
 * blkid cannot classify is `other`, which callers refuse.
 */
export async function probeDevice(deps: ToolDeps, device: string): Promise<ProbeResult> {
  const res = await deps.exec('blkid', ['-p', '-o', 'export', device], { okCodes: [0, BLKID_NOTHING_FOUND, BLKID_AMBIVALENT] });
  if (res.code === BLKID_NOTHING_FOUND) return { kind: 'blank' };
  if (res.code === BLKID_AMBIVALENT) return { kind: 'other', type: 'ambivalent (several signatures)' };
  const tags = new Map<string, string>();
  for (const line of res.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) tags.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const pt = tags.get('PTTYPE');
  const type = tags.get('TYPE');
  if (pt && !type) return { kind: 'partition-table', type: pt };
  if (type === 'xfs' && (await isUnfinishedXfs(device))) return { kind: 'unfinished', type };
  if (type && tags.get('USAGE') === 'filesystem') return { kind: 'filesystem', type };
  return { kind: 'other', type: type ?? pt ?? 'unknown' };
}

/**
 * An XFS superblock still flagged in progress: a mkfs.xfs killed between writing the superblock and
 * finishing. blkid reports it as xfs, but the kernel refuses to mount it ("Offline file system operation
 * in progress"), so no data can be on it, and without this check the volume could never be staged again.
 */
export async function isUnfinishedXfs(device: string): Promise<boolean> {
  const fh = await open(device, 'r');
  try {
    const sb = Buffer.alloc(XFS_INPROGRESS_OFFSET + 1);
    const { bytesRead } = await fh.read(sb, 0, sb.length, 0);
    return bytesRead === sb.length && sb.toString('latin1', 0, XFS_MAGIC.length) === XFS_MAGIC && sb[XFS_INPROGRESS_OFFSET] !== 0;
  } finally {
    await fh.close();
  }
}

export interface FormatOptions {
  /** Extra mkfs arguments placed before the device. */
  extraArgs?: readonly string[];
  /** Format over an `unfinished` filesystem (probeDevice) too, forcing mkfs past its signature. */
  replaceUnfinished?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

function mkfsArgv(fsType: FsType, device: string, extra: readonly string[]): [string, string[]] {
  if (isExtFs(fsType)) {
    // -m0: no root-reserved blocks on a data volume (as mount-utils). Lazy init lets a 10 GiB volume
    // format in well under a second; the kernel zeroes inode tables in the background after mount.
    const lazy = fsType === 'ext2' ? [] : ['-E', 'lazy_itable_init=1,lazy_journal_init=1'];
    return [`mkfs.${fsType}`, ['-q', '-m0', ...lazy, ...extra, device]];
  }
  // No -f for xfs or btrfs: their own refusal to overwrite a signature is a second guard.
  if (fsType === 'xfs') return ['mkfs.xfs', ['-q', ...extra, device]];
  return ['mkfs.btrfs', ['-q', ...extra, device]];
}

/**
 * Creates a filesystem on a blank device. Re-probes immediately before mkfs.
 * Throws CodedError INVALID_ARGUMENT for an fsType we do not make, FAILED_PRECONDITION when the device
 * is not blank (naming what blkid found) or the mkfs tool is not installed, INTERNAL when mkfs fails.
 */
export async function formatDevice(deps: ToolDeps, device: string, fsType: string, opts: FormatOptions = {}): Promise<void> {
  if (!(FORMATTABLE_FS_TYPES as readonly string[]).includes(fsType)) {
    const known = FORMATTABLE_FS_TYPES.join(', ');
    throw new CodedError(Status.INVALID_ARGUMENT, `fs_type ${fsType} is not supported (one of ${known})`);
  }
  // The superblock flag is read through the page cache: drop the device's cached pages first, so a page
  // read while mkfs was still writing cannot make a finished filesystem look unfinished.
  if (opts.replaceUnfinished) await deps.exec('blockdev', ['--flushbufs', device]);
  const found = await probeDevice(deps, device);
  const replacing = found.kind === 'unfinished' && opts.replaceUnfinished === true;
  if (found.kind !== 'blank' && !replacing) {
    throw new CodedError(Status.FAILED_PRECONDITION, `refusing to format ${device}: it holds ${describeProbe(found)}`);
  }
  // mkfs refuses to overwrite a signature it recognizes, even a half-made one: force it past that one only.
  const force = replacing ? [isExtFs(fsType) ? '-F' : '-f'] : [];
  const [cmd, argv] = mkfsArgv(fsType as FsType, device, [...force, ...(opts.extraArgs ?? [])]);
  deps.log.info({ device, fsType, replacing: found.kind === 'unfinished' ? found.type : undefined }, 'formatting blank device');
  try {
    await deps.exec(cmd, argv, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? MKFS_TIMEOUT_MS });
  } catch (e) {
    // The kernel refuses mkfs an exclusive open while another process holds the device: most often the mkfs
    // of an earlier, killed call still running. That ends by itself, so the retry is the caller's to make.
    if (e instanceof ExecError && DEVICE_HELD_RE.test(e.stderr)) {
      throw new CodedError(Status.ABORTED, `${device} is held by another process (an earlier mkfs or mount still running?); retry later`, { cause: e });
    }
    throw e;
  }
}

/** mke2fs's and mkfs.xfs's words for a device another process holds open exclusively. */
const DEVICE_HELD_RE = /apparently in use by the system|Device or resource busy/;

/** Human wording of a probe result for error messages. */
export function describeProbe(p: ProbeResult): string {
  switch (p.kind) {
    case 'blank':
      return 'nothing';
    case 'filesystem':
      return `a ${p.type} filesystem`;
    case 'partition-table':
      return `a ${p.type} partition table`;
    case 'other':
      return `a ${p.type} signature`;
    case 'unfinished':
      return `a ${p.type} filesystem whose mkfs never finished`;
  }
}

/**
 * Bytes an unmounted filesystem spans on its device, from its superblock: ext* block count × block size
 * (`dumpe2fs -h`), xfs data blocks × block size (`xfs_db -r`). Undefined for other types, or when the tool
 * is missing or cannot read it: the caller then leaves the size alone.
 */
export async function filesystemBytes(deps: ToolDeps, device: string, type: string, signal?: AbortSignal): Promise<number | undefined> {
  const num = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  try {
    if (isExtFs(type)) {
      const { stdout } = await deps.exec('dumpe2fs', ['-h', device], { signal });
      const n = num(stdout, /^Block count:\s+(\d+)/m) * num(stdout, /^Block size:\s+(\d+)/m);
      return Number.isFinite(n) && n > 0 ? n : undefined;
    }
    if (type === 'xfs') {
      const { stdout } = await deps.exec('xfs_db', ['-r', '-c', 'sb 0', '-c', 'print dblocks blocksize', device], { signal });
      const n = num(stdout, /^dblocks = (\d+)/m) * num(stdout, /^blocksize = (\d+)/m);
      return Number.isFinite(n) && n > 0 ? n : undefined;
    }
  } catch (e) {
    deps.log.warn({ device, type, err: e instanceof Error ? e.message : String(e) }, 'cannot read the filesystem size; not growing it at stage');
  }
  return undefined;
}

/**
 * Checks (and repairs what is safe to repair) an unmounted filesystem before mount, as mount-utils'
 * SafeFormatAndMount does: `e2fsck -p` for ext*; xfs and btrfs check themselves at mount.
 * Throws CodedError FAILED_PRECONDITION when e2fsck leaves errors uncorrected.
 */
export async function checkFilesystem(deps: ToolDeps, device: string, type: string, signal?: AbortSignal): Promise<void> {
  if (!isExtFs(type)) return;
  try {
    const { code } = await deps.exec('e2fsck', ['-p', device], {
      okCodes: [0, FSCK_CORRECTED, FSCK_CORRECTED_REBOOT],
      signal,
      timeoutMs: FSCK_TIMEOUT_MS,
    });
    if (code !== 0) deps.log.warn({ device, exitCode: code }, 'e2fsck corrected filesystem errors');
  } catch (e) {
    if (e instanceof ExecError && e.exitCode !== null) {
      const msg = `filesystem on ${device} has errors e2fsck -p could not fix: ${e.message}`;
      throw new CodedError(Status.FAILED_PRECONDITION, msg, { cause: e });
    }
    throw e;
  }
}

/**
 * Grows a mounted filesystem to fill its device: `resize2fs` (online) for ext*, `xfs_growfs` and
 * `btrfs filesystem resize max` on the mount path. Already full size is a no-op for all three.
 * Throws CodedError INVALID_ARGUMENT for a type we cannot grow, FAILED_PRECONDITION when the kernel
 * denies an ext4 online resize (no CAP_SYS_RESOURCE), INTERNAL when the tool fails.
 */
export async function resizeFilesystem(
  deps: ToolDeps,
  device: string,
  mountPath: string,
  type: string,
  signal?: AbortSignal,
): Promise<void> {
  const o = { signal, timeoutMs: RESIZE_TIMEOUT_MS };
  if (isExtFs(type)) {
    try {
      await deps.exec('resize2fs', [device], o);
    } catch (e) {
      // EXT4_IOC_RESIZE_FS checks CAP_SYS_RESOURCE (fs/ext4/resize.c ext4_resize_begin), which a
      // container that is not fully privileged may lack; say so instead of a bare EPERM.
      if (e instanceof ExecError && /Permission denied/i.test(e.stderr)) {
        const msg = `online resize of ${device} was denied: the node plugin needs CAP_SYS_RESOURCE (${e.stderr})`;
        throw new CodedError(Status.FAILED_PRECONDITION, msg, { cause: e });
      }
      throw e;
    }
  } else if (type === 'xfs') await deps.exec('xfs_growfs', ['-d', mountPath], o);
  else if (type === 'btrfs') await deps.exec('btrfs', ['filesystem', 'resize', 'max', mountPath], o);
  else throw new CodedError(Status.INVALID_ARGUMENT, `cannot resize a ${type} filesystem on ${device}`);
}

/**
 * Grows an unmounted ext2/3/4 filesystem to its device: `e2fsck -f -p` (resize2fs insists on a fresh forced
 * check) then `resize2fs`. Offline growth needs no CAP_SYS_RESOURCE, unlike the online ioctl, so a volume
 * restored or cloned into a larger size grows even where the plugin is not fully privileged. Other
 * filesystem types are left to the online resize after mounting. Throws FAILED_PRECONDITION when fsck finds
 * errors it cannot fix.
 *
 * resize2fs is not crash-safe: killed half-way it can leave the resize inode pointing past the old end,
 * which `e2fsck -p` refuses to repair. With `undoFile`, it saves every block it overwrites there first
 * (`-z`), so rollBackInterruptedGrow can put the filesystem back as it was; the file is removed once the
 * grow is complete, before anything mounts the filesystem.
 */
export async function growExtOffline(deps: ToolDeps, device: string, type: string, signal?: AbortSignal, undoFile?: string): Promise<boolean> {
  if (!isExtFs(type)) return false;
  try {
    await deps.exec('e2fsck', ['-f', '-p', device], { signal, timeoutMs: RESIZE_TIMEOUT_MS, okCodes: [0, FSCK_CORRECTED] });
  } catch (e) {
    const msg = `e2fsck -f of ${device} before growing it failed; the filesystem needs manual repair`;
    throw new CodedError(Status.FAILED_PRECONDITION, msg, { cause: e });
  }
  if (!undoFile) {
    await deps.exec('resize2fs', [device], { signal, timeoutMs: RESIZE_TIMEOUT_MS });
    return true;
  }
  // resize2fs refuses to start with an undo file already there.
  await rm(undoFile, { force: true });
  await deps.exec('resize2fs', ['-z', undoFile, device], { signal, timeoutMs: RESIZE_TIMEOUT_MS });
  await rm(undoFile, { force: true });
  return true;
}

/**
 * Rolls back an offline grow that was killed half-way (its undo file is still there) with `e2undo`, so the
 * filesystem is as it was before and can be checked and grown again. Returns whether it rolled back. An
 * undo file e2undo will not apply (it no longer matches the filesystem) is only logged and removed.
 */
export async function rollBackInterruptedGrow(deps: ToolDeps, device: string, undoFile: string, signal?: AbortSignal): Promise<boolean> {
  if (!(await exists(undoFile))) return false;
  let rolledBack = false;
  try {
    await deps.exec('e2undo', [undoFile, device], { signal, timeoutMs: RESIZE_TIMEOUT_MS });
    deps.log.warn({ device }, 'rolled back an offline grow that did not finish');
    rolledBack = true;
  } catch (e) {
    deps.log.warn({ device, err: e instanceof Error ? e.message : String(e) }, 'e2undo did not apply a leftover resize undo file; removing it');
  }
  await rm(undoFile, { force: true });
  return rolledBack;
}
