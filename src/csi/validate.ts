/**
 * Argument checks shared by the Controller and Node handlers. Each throws a CsiError whose message names the
 * field as the CSI spec spells it (`volume_capabilities[0].access_mode`), so a caller can fix its request.
 */
import { isAbsolute, normalize, relative, sep } from 'node:path';
import { invalidArgument, outOfRange } from './errors';
import type { AccessModeName, CapacityRange, VolumeCapability } from './types';

export const GIB = 1024 ** 3;
/** CreateVolume without a capacity_range gets this, like the reference driver. */
export const DEFAULT_VOLUME_BYTES = GIB;
/** Filesystems the node can make; '' means the default (ext4). */
export const SUPPORTED_FS_TYPES = ['', 'ext4', 'ext3', 'xfs', 'btrfs'] as const;

const SINGLE_NODE_MODES: readonly AccessModeName[] = [
  'SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER',
];
const MULTI_NODE_MODES: readonly AccessModeName[] = ['MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER'];

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
      throw invalidArgument(`${field}.access_mode`, `${mode} needs a raw block volume: a filesystem on several nodes at once corrupts it`);
    }
    if (policy && !policy.allowMultiNode(cap)) {
      throw invalidArgument(`${field}.access_mode`, `${mode} needs a volume type with multiattach enabled`);
    }
  } else if (!SINGLE_NODE_MODES.includes(mode)) {
    throw invalidArgument(`${field}.access_mode`, `"${mode}" is not a known access mode`);
  }
}

/** Checks a non-empty list of capabilities. */
export function validateCapabilities(caps: VolumeCapability[] | undefined, field: string, policy?: CapabilityPolicy): void {
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
  const bytes = required > 0n ? required : limit > 0n && limit < BigInt(DEFAULT_VOLUME_BYTES) ? limit : BigInt(DEFAULT_VOLUME_BYTES);
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
  const norm = normalize(p);
  const rel = relative(normalize(root), norm);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || p.split(sep).includes('..')) {
    throw invalidArgument(field, `"${p}" is not under ${root}`);
  }
  return norm.replace(/\/+$/, '');
}
