/**
 * Argument checks shared by the Controller and Node handlers. Each throws a CsiError whose message names the
 * field as the CSI spec spells it (`volume_capabilities[0].access_mode`), so a caller can fix its request.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { MOUNTINFO_PATH, parseMountInfo } from '../mount/mountinfo';
import { invalidArgument, outOfRange } from './errors';
import type { AccessModeName, CapacityRange, VolumeCapability } from './types';

export const GIB = 1024 ** 3;

/** Bytes of a whole number of GiB, as a decimal string (int64 beyond 2^53 stays exact). */
export const gibToBytes = (gib: number): string => (BigInt(gib) * BigInt(GIB)).toString();
/** CreateVolume without a capacity_range gets this, like the reference driver. */
export const DEFAULT_VOLUME_BYTES = GIB;
/** Longest file name Linux accepts (NAME_MAX). */
export const NAME_MAX_BYTES = 255;
/** Filesystems the node can make; '' means the default (ext4). */
export const SUPPORTED_FS_TYPES = ['', 'ext4', 'ext3', 'xfs', 'btrfs'] as const;

const SINGLE_NODE_MODES: readonly AccessModeName[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
];
const MULTI_NODE_MODES: readonly AccessModeName[] = [
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
];

/** Throws INVALID_ARGUMENT when a required string field is empty. */
export function requireString(value: string | undefined | null, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalidArgument(field, 'is required');
  return value;
}

/** Throws INVALID_ARGUMENT when a required message field is absent. */
export function requireMessage<T>(value: T | null | undefined, field: string): T {
  if (value === null || value === undefined) throw invalidArgument(field, 'is required');
  return value;
}

export interface CapabilityPolicy {
  /** Multi-node access modes are allowed (only for raw block volumes of a multiattach type). */
  allowMultiNode: (cap: VolumeCapability) => boolean;
}

/** Checks one capability's access type, mode and filesystem; names the field with its index. */
export function validateCapability(cap: VolumeCapability, field: string, policy?: CapabilityPolicy): void {
  if (!cap.access_type || (cap.access_type === 'block' && !cap.block) || (cap.access_type === 'mount' && !cap.mount)) {
    throw invalidArgument(`${field}.access_type`, 'is required (block or mount)');
  }
  const mode = cap.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') throw invalidArgument(`${field}.access_mode`, 'is required');
  if (cap.access_type === 'mount') {
    const fs = cap.mount!.fs_type;
    if (!(SUPPORTED_FS_TYPES as readonly string[]).includes(fs)) {
      throw invalidArgument(`${field}.mount.fs_type`, `"${fs}" is not supported (use ext4, ext3, xfs or btrfs)`);
    }
  }
  if (MULTI_NODE_MODES.includes(mode)) {
    if (cap.access_type === 'mount') {
      throw invalidArgument(
        `${field}.access_mode`,
        `${mode} needs a raw block volume: a filesystem on several nodes at once corrupts it`,
      );
    }
    if (policy && !policy.allowMultiNode(cap)) {
      throw invalidArgument(`${field}.access_mode`, `${mode} needs a volume type with multiattach enabled`);
    }
  } else if (!SINGLE_NODE_MODES.includes(mode)) {
    throw invalidArgument(`${field}.access_mode`, `"${mode}" is not a known access mode`);
  }
}

/** Checks a non-empty list of capabilities. */
export function validateCapabilities(
  caps: VolumeCapability[] | undefined,
  field: string,
  policy?: CapabilityPolicy,
): void {
  if (!caps || caps.length === 0) throw invalidArgument(field, 'is required');
  caps.forEach((c, i) => validateCapability(c, `${field}[${i}]`, policy));
}

/** Whether any capability asks for a multi-node access mode. */
export function isMultiNode(caps: readonly VolumeCapability[]): boolean {
  return caps.some((c) => c.access_mode && MULTI_NODE_MODES.includes(c.access_mode.mode));
}

/**
 * Size in whole GiB for a capacity_range: required_bytes rounded up, DEFAULT_VOLUME_BYTES when unset.
 * Throws OUT_OF_RANGE when limit_bytes is below what rounding gives, INVALID_ARGUMENT for negatives.
 */
export function sizeGiBFor(range: CapacityRange | null | undefined, field = 'capacity_range'): number {
  const required = parseBytes(range?.required_bytes, `${field}.required_bytes`);
  const limit = parseBytes(range?.limit_bytes, `${field}.limit_bytes`);
  if (limit > 0n && required > limit) {
    throw invalidArgument(field, `required_bytes ${required} is more than limit_bytes ${limit}`);
  }
  const bytes =
    required > 0n
      ? required
      : limit > 0n && limit < BigInt(DEFAULT_VOLUME_BYTES)
        ? limit
        : BigInt(DEFAULT_VOLUME_BYTES);
  const gib = (bytes + BigInt(GIB) - 1n) / BigInt(GIB);
  if (limit > 0n && gib * BigInt(GIB) > limit) {
    throw outOfRange(`${field}: volumes are whole GiB; ${gib} GiB is more than limit_bytes ${limit}`);
  }
  if (gib > BigInt(Number.MAX_SAFE_INTEGER)) throw outOfRange(`${field}: ${gib} GiB is too large`);
  return Number(gib);
}

function parseBytes(v: string | number | undefined, field: string): bigint {
  if (v === undefined || v === '' || v === null) return 0n;
  const s = String(v);
  if (!/^-?\d+$/.test(s)) throw invalidArgument(field, `"${s}" is not an integer`);
  const n = BigInt(s);
  if (n < 0n) throw invalidArgument(field, 'must not be negative');
  return n;
}

/**
 * Checks a node path: absolute, no `..` escape, inside `root`. The node plugin is privileged, so a path
 * outside the kubelet directory (`/etc`, `../../`) is never mounted on or removed.
 */
export function requirePathUnder(path: string | undefined, root: string, field: string): string {
  const p = requireString(path, field);
  if (!isAbsolute(p)) throw invalidArgument(field, `"${p}" must be an absolute path`);
  if (p.includes('\0')) throw invalidArgument(field, 'must not contain NUL');
  // Linux refuses a component over NAME_MAX with ENAMETOOLONG, which would surface as INTERNAL; it is the caller's error.
  if (p.split(sep).some((c) => Buffer.byteLength(c) > NAME_MAX_BYTES)) {
    throw invalidArgument(field, `has a path component longer than ${NAME_MAX_BYTES} bytes`);
  }
  const norm = normalize(p);
  const rel = relative(normalize(root), norm);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || p.split(sep).includes('..')) {
    throw invalidArgument(field, `"${p}" is not under ${root}`);
  }
  const clean = norm.replace(/\/+$/, '');
  requireNoSymlinkEscape(clean, normalize(root), field);
  return clean;
}

/**
 * A lexically clean path can still leave the root through a symbolic link planted under the kubelet dir
 * (`pods/<uid>/x -> /etc`): the node would then mkdir, mount on or remove things out there as root. No
 * component below the root may be a link. Components are lstat()ed from the root down, but never a
 * mount point or anything beneath one: stat() on a hung FUSE mount blocks, and this runs on the event
 * loop. (A link swapped in after this check is not caught; kubelet owns these directories, pods do not.)
 */
function requireNoSymlinkEscape(path: string, root: string, field: string): void {
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return; // no root yet: nothing under it exists either
  }
  const mountPoints = new Set(parseMountInfo(readFileSync(MOUNTINFO_PATH, 'utf8')).map((m) => m.mountPoint));
  let q = realRoot;
  for (const component of relative(root, path).split(sep)) {
    q = join(q, component);
    if (mountPoints.has(q)) return;
    let isLink: boolean;
    try {
      isLink = lstatSync(q).isSymbolicLink();
    } catch {
      return; // absent (or unreadable): nothing further down exists to follow
    }
    if (isLink) throw invalidArgument(field, `"${path}" passes through a symbolic link at ${q}`);
  }
}
