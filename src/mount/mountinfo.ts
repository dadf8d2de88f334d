/**
 * The kernel's table of mounts, read from /proc/self/mountinfo (never from `mount` output, whose format
 * is for people). A pure parser plus small lookups by target and by source; deciding what to do about
 * a mount is left to mounter.ts and stage.ts.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';

export const MOUNTINFO_PATH = '/proc/self/mountinfo';

/** Peer-group membership of a mount (mount_namespaces(7) "shared subtrees"). */
export interface Propagation {
  /** Peer group id when the mount is shared (`shared:N`). */
  shared?: number;
  /** Peer group this mount receives events from (`master:N`). */
  master?: number;
  /** Nearest dominant peer group visible here (`propagate_from:N`). */
  propagateFrom?: number;
  unbindable: boolean;
}

/** One line of mountinfo, with escapes decoded. Field names follow proc(5). */
export interface MountInfo {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  /** Path inside the source filesystem that is mounted (not "/" for bind mounts of a subdirectory or file). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  optionalFields: string[];
  propagation: Propagation;
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function parsePropagation(fields: readonly string[]): Propagation {
  const p: Propagation = { unbindable: false };
  for (const f of fields) {
    const [tag, value] = f.split(':', 2);
    const n = Number(value);
    if (tag === 'shared') p.shared = n;
    else if (tag === 'master') p.master = n;
    else if (tag === 'propagate_from') p.propagateFrom = n;
    else if (tag === 'unbindable') p.unbindable = true;
  }
  return p;
}

/**
 * Parses one mountinfo line; returns undefined for a blank or malformed line rather than throwing, so
 * one odd entry (a future kernel field) cannot hide every other mount.
 */
export function parseMountInfoLine(line: string): MountInfo | undefined {
  const f = line.trim().split(' ');
  const sep = f.indexOf('-', 6);
  if (f.length < 10 || sep < 0 || f.length < sep + 4) return undefined;
  const [major, minor] = f[2].split(':').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return undefined;
  const optionalFields = f.slice(6, sep);
  return {
    mountId: Number(f[0]),
    parentId: Number(f[1]),
    major,
    minor,
    root: unescapeMountField(f[3]),
    mountPoint: unescapeMountField(f[4]),
    mountOptions: f[5].split(','),
    optionalFields,
    propagation: parsePropagation(optionalFields),
    fsType: unescapeMountField(f[sep + 1]),
    source: unescapeMountField(f[sep + 2]),
    superOptions: f[sep + 3].split(','),
  };
}

/** Parses the whole text of a mountinfo file, in kernel order (a later entry is stacked above an earlier one). */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const m = parseMountInfoLine(line);
    if (m) out.push(m);
  }
  return out;
}

/** Reads and parses the mount table of this process's mount namespace. */
export async function readMountInfo(path = MOUNTINFO_PATH): Promise<MountInfo[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}

/**
 * Absolute, symlink-free form of a path for comparing with mountinfo. A stale mount point (ENOTCONN,
 * EIO, ESTALE) or a missing path cannot be resolved, so it falls back to lexical resolution.
 */
export async function resolveMountPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/** All mounts whose mount point is exactly `path` (already resolved), bottom of the stack first. */
export function mountsAt(mounts: readonly MountInfo[], path: string): MountInfo[] {
  return mounts.filter((m) => m.mountPoint === path);
}

/** The topmost mount at `path` (resolved first), or undefined when nothing is mounted there. */
export async function findMountByTarget(path: string, mountInfoPath?: string): Promise<MountInfo | undefined> {
  const target = await resolveMountPath(path);
  const stack = mountsAt(await readMountInfo(mountInfoPath), target);
  return stack[stack.length - 1];
}

/** Whether something is mounted exactly at `path`; false for a missing path. */
export async function isMountPoint(path: string, mountInfoPath?: string): Promise<boolean> {
  return (await findMountByTarget(path, mountInfoPath)) !== undefined;
}

/** Linux dev_t split as the kernel's MAJOR()/MINOR() for the 64-bit encoding glibc uses. */
export function splitDevT(rdev: number): { major: number; minor: number } {
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * Mounts of a block device, matched by device number (what ext4 and xfs record) or by the resolved
 * source path (btrfs reports an anonymous device number). Empty when the device is missing.
 */
export async function mountsOfSource(device: string, mountInfoPath?: string): Promise<MountInfo[]> {
  let dev: string;
  let num: { major: number; minor: number } | undefined;
  try {
    dev = await realpath(device);
    const st = await stat(dev);
    if (st.isBlockDevice()) num = splitDevT(st.rdev);
  } catch {
    return [];
  }
  const mounts = await readMountInfo(mountInfoPath);
  const out: MountInfo[] = [];
  for (const m of mounts) {
    const sameNumber = num !== undefined && m.major === num.major && m.minor === num.minor;
    if (sameNumber || m.source === dev || m.source === device) out.push(m);
  }
  return out;
}
