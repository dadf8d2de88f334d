/**
 * The FUSE supervisor's wire protocol: one JSON object per line on a 0600 unix socket, one answer per
 * request. This module owns the message types and their validation (allowed mounters, targets under the
 * kubelet dir, allow-listed options); building daemon argv is mounter-args.ts', running them supervisor.ts'.
 */
import { isAbsolute, normalize, relative, sep } from 'node:path';
import { CodedError, Status } from '../errors';

/** FUSE programs the supervisor may start; anything else is refused. */
export const ALLOWED_MOUNTERS = ['s3fs', 'rclone'] as const;
export type MounterName = (typeof ALLOWED_MOUNTERS)[number];

/** Largest request line accepted; a mount spec with credentials is a few KiB. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** Access keys for S3, or Keystone credentials (cloud.conf key names, camelCased) for Swift. */
export type FuseCredentials =
  | { kind: 's3'; accessKeyId: string; secretAccessKey: string }
  | {
      kind: 'swift';
      authUrl: string;
      region?: string;
      username?: string;
      password?: string;
      userDomainName?: string;
      projectName?: string;
      projectDomainName?: string;
      projectId?: string;
      applicationCredentialId?: string;
      applicationCredentialSecret?: string;
    };

/** What to mount where. `prefix` is '' (whole bucket) or ends in '/'. */
export interface MountSpec {
  volumeId: string;
  target: string;
  mounter: MounterName;
  provider: 's3' | 'swift';
  bucket: string;
  prefix: string;
  endpoint: string;
  region: string;
  pathStyle: boolean;
  /** `key` or `key=value`, each checked against the mounter's allow-list. */
  options: string[];
  uid?: number;
  gid?: number;
  /** Octal digits, e.g. "0007". */
  umask?: string;
  readOnly: boolean;
}

export type MountState = 'alive' | 'dead' | 'restarting';

/** One mount as `list` reports it; never carries credentials. */
export interface MountStatus {
  volumeId: string;
  target: string;
  mounter: MounterName;
  state: MountState;
  restarts: number;
  /** Of the restarts, those because the daemon hung (statfs unanswered) rather than died. */
  hangs?: number;
  lastError?: string;
  pid?: number;
}

export type SupervisorRequest =
  | { op: 'mount'; spec: MountSpec; credentials: FuseCredentials }
  | { op: 'unmount'; target: string }
  | { op: 'credentials'; target: string; credentials: FuseCredentials }
  | { op: 'list' };

export type SupervisorResponse = { ok: true; mounts?: MountStatus[] } | { ok: false; code: Status; message: string };

const bad = (field: string, problem: string) => new CodedError(Status.INVALID_ARGUMENT, `${field} ${problem}`);

/** Throws INVALID_ARGUMENT unless `path` is absolute, free of `..` and strictly inside `root`. */
export function requireUnder(path: unknown, root: string, field: string): string {
  if (typeof path !== 'string' || path === '') throw bad(field, 'is required');
  if (!isAbsolute(path) || path.includes('\0') || path.split(sep).includes('..'))
    throw bad(field, `"${path}" is not a clean absolute path`);
  const rel = relative(normalize(root), normalize(path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw bad(field, `"${path}" is not under ${root}`);
  return normalize(path).replace(/\/+$/, '');
}

function str(v: unknown, field: string, required = true): string {
  if (v === undefined || v === null || v === '') {
    if (required) throw bad(field, 'is required');
    return '';
  }
  if (typeof v !== 'string' || v.includes('\0') || v.includes('\n')) throw bad(field, 'must be a single-line string');
  return v;
}

function id(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff)
    throw bad(field, 'must be a non-negative integer');
  return v;
}

/**
 * Checks a decoded mount request field by field and returns a clean spec (unknown fields dropped).
 * Throws CodedError INVALID_ARGUMENT naming the first bad field. Options are checked by mounter-args.
 */
export function validateMountSpec(raw: unknown, kubeletDir: string): MountSpec {
  const r = (raw ?? {}) as Record<string, unknown>;
  const mounter = str(r.mounter, 'mounter');
  if (!(ALLOWED_MOUNTERS as readonly string[]).includes(mounter))
    throw bad('mounter', `"${mounter}" is not one of ${ALLOWED_MOUNTERS.join(', ')}`);
  const provider = str(r.provider, 'provider', false) || 's3';
  if (provider !== 's3' && provider !== 'swift') throw bad('provider', `"${provider}" is not s3 or swift`);
  if (provider === 'swift' && mounter !== 'rclone') throw bad('mounter', 'must be rclone for swift');
  const bucket = str(r.bucket, 'bucket');
  if (bucket.includes(':') || bucket.includes('/')) throw bad('bucket', 'must not contain ":" or "/"');
  const prefix = str(r.prefix, 'prefix', false);
  if (prefix !== '' && (!prefix.endsWith('/') || prefix.startsWith('/') || prefix.split('/').includes('..'))) {
    throw bad('prefix', `"${prefix}" must be relative, without "..", and end in "/"`);
  }
  const endpoint = str(r.endpoint, 'endpoint', provider === 's3');
  // No userinfo: the endpoint is kept in records and argv, where a credential must never be.
  if (endpoint && !/^https?:\/\/[^\s,@]+$/.test(endpoint))
    throw bad('endpoint', 'must be an http(s) URL without user info');
  const umask = r.umask === undefined || r.umask === null || r.umask === '' ? undefined : str(r.umask, 'umask');
  if (umask !== undefined && !/^0?[0-7]{1,3}$/.test(umask)) throw bad('umask', 'must be octal digits like 0022');
  if (r.options !== undefined && !Array.isArray(r.options)) throw bad('options', 'must be a list');
  const options = ((r.options as unknown[] | undefined) ?? []).map((o, i) => str(o, `options[${i}]`));
  return {
    volumeId: str(r.volumeId, 'volumeId'),
    target: requireUnder(r.target, kubeletDir, 'target'),
    mounter: mounter as MounterName,
    provider,
    bucket,
    prefix,
    endpoint,
    region: str(r.region, 'region', false) || 'us-east-1',
    pathStyle: r.pathStyle !== false,
    options,
    uid: id(r.uid, 'uid'),
    gid: id(r.gid, 'gid'),
    umask,
    readOnly: r.readOnly === true,
  };
}

/** Checks decoded credentials: S3 keys, or Keystone password / application-credential sets. */
export function validateCredentials(raw: unknown, provider: 's3' | 'swift'): FuseCredentials {
  const r = (raw ?? {}) as Record<string, unknown>;
  if (provider === 's3') {
    return {
      kind: 's3',
      accessKeyId: str(r.accessKeyId, 'credentials.accessKeyId'),
      secretAccessKey: str(r.secretAccessKey, 'credentials.secretAccessKey'),
    };
  }
  const opt = (k: string) => str(r[k], `credentials.${k}`, false) || undefined;
  const c: FuseCredentials = {
    kind: 'swift',
    authUrl: str(r.authUrl, 'credentials.authUrl'),
    region: opt('region'),
    username: opt('username'),
    password: opt('password'),
    userDomainName: opt('userDomainName'),
    projectName: opt('projectName'),
    projectDomainName: opt('projectDomainName'),
    projectId: opt('projectId'),
    applicationCredentialId: opt('applicationCredentialId'),
    applicationCredentialSecret: opt('applicationCredentialSecret'),
  };
  const hasPassword = c.username && c.password;
  const hasAppCred = c.applicationCredentialId && c.applicationCredentialSecret;
  if (!hasPassword && !hasAppCred)
    throw bad('credentials', 'need username+password or application-credential-id+secret');
  return c;
}
