/**
 * How each allowed FUSE program is started: the option allow-lists, the argv (never a secret on it),
 * the environment and the content of the per-volume 0600 credential file. Pure functions: spawning and
 * file handling are the supervisor's. Flags as measured on s3fs 1.90 and rclone 1.60 (fuse-on-this-machine.md).
 */
import { CodedError, Status } from '../errors';
import type { FuseCredentials, MountSpec } from './protocol';

const INT = /^\d{1,9}$/;
const SIZE = /^\d{1,12}[KMGT]?i?$/;
const DURATION = /^\d{1,9}(ms|s|m|h)?$/;
const SIZE_OR_OFF = /^(off|\d{1,12}[KMGT]?i?)$/;
type Rule = RegExp | 'flag';

/**
 * s3fs `-o` options a StorageClass may pass: tuning only, never paths, URLs or credentials. `multipart_size` at or
 * above a file's size makes s3fs 1.90 upload it in one PUT (`multipart_threshold` does not decide that in 1.90;
 * checked in its log); the speed trade-offs are in docs/benchmarks.md.
 */
export const S3FS_OPTIONS: Readonly<Record<string, Rule>> = {
  max_stat_cache_size: INT,
  stat_cache_expire: INT,
  enable_noobj_cache: 'flag',
  parallel_count: INT,
  multipart_size: INT,
  multireq_max: INT,
  max_dirty_data: INT,
  retries: INT,
  connect_timeout: INT,
  readwrite_timeout: INT,
  complement_stat: 'flag',
  compat_dir: 'flag',
  notsup_compat_dir: 'flag',
  nocopyapi: 'flag',
  norenameapi: 'flag',
  listobjectsv2: 'flag',
  dbglevel: /^(crit|err|warn|info|debug)$/,
  nomultipart: 'flag',
  nomixupload: 'flag',
};

/**
 * rclone mount flags (without `--`) a StorageClass may pass. `s3-upload-cutoff` above a file's size uploads it in
 * one PUT instead of 5 MiB multipart parts (docs/benchmarks.md); `vfs-cache-mode=off` streams writes but refuses
 * random writes and read-write opens.
 */
export const RCLONE_OPTIONS: Readonly<Record<string, Rule>> = {
  'vfs-cache-mode': /^(off|minimal|writes|full)$/,
  'vfs-cache-max-size': SIZE,
  'vfs-cache-max-age': DURATION,
  'vfs-write-back': DURATION,
  'vfs-read-chunk-size': SIZE_OR_OFF,
  'buffer-size': SIZE,
  'dir-cache-time': DURATION,
  'attr-timeout': DURATION,
  'no-modtime': 'flag',
  retries: INT,
  'low-level-retries': INT,
  contimeout: DURATION,
  timeout: DURATION,
  's3-upload-concurrency': INT,
  's3-chunk-size': SIZE,
  's3-no-check-bucket': 'flag',
  's3-upload-cutoff': SIZE,
  's3-disable-checksum': 'flag',
  'vfs-read-chunk-size-limit': SIZE_OR_OFF,
  'vfs-read-ahead': SIZE,
  'max-read-ahead': SIZE,
  'write-back-cache': 'flag',
  'no-checksum': 'flag',
  'use-mmap': 'flag',
  'async-read': /^(true|false)$/,
};

/**
 * s3fs options the driver sets unless the StorageClass sets the same key. s3fs 1.90's own `multipart_size=10`
 * uploads every file over 10 MiB at close as 10 MiB parts, 5 at a time, which reached the server at 0.49-0.77 of
 * one PUT (docs/benchmarks.md). 512 MiB makes any file under 512 MiB one PUT (streamed from s3fs's temp file, so
 * no memory) and larger ones 512 MiB parts. s3fs also reads ahead, and checks at start that its temp dir has free,
 * `multipart_size × parallel_count`: `parallel_count=2` keeps that at 1 GiB (5 would make it 2.5 GiB).
 */
export const S3FS_DEFAULT_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['multipart_size', '512'],
  ['parallel_count', '2'],
];

/**
 * rclone S3 options the driver sets unless the StorageClass sets the flag (not for Swift, whose backend already
 * uploads up to 5 GiB in one object). rclone 1.60's own cutoff, 200 MiB, is above the test file, but its 5 MiB parts
 * (4 at a time, after an MD5 pass) reached the server at 0.4 of one PUT: any file under 512 MiB now goes in one PUT
 * streamed from the VFS cache file, the same bound as s3fs's. They go in the config file, not on argv: a backend flag
 * renames the remote (`vol{hash}`) and with it the cache dir, and a daemon of the next driver version would not find
 * the uploads an older one left pending there (measured with rclone 1.60; a flag still overrides the file).
 */
export const RCLONE_DEFAULT_S3_CONFIG: ReadonlyArray<readonly [flag: string, configKey: string, value: string]> = [
  ['s3-upload-cutoff', 'upload_cutoff', '512M'],
];

/** rclone caches writes locally so O_RDWR and random writes work (as k8s-csi-s3 forces). */
export const RCLONE_DEFAULT_CACHE_MODE = 'writes';
/**
 * Upload a written file as soon as it is closed (rclone's default waits 5 s). Measured with
 * `npm run bench:object`: 256 MiB reached the server at ~50 MiB/s instead of ~26 (docs/benchmarks.md);
 * a shorter window should also narrow rclone 1.60's rename-then-delete object leak (fuse-on-this-machine.md §2; not re-measured).
 */
export const RCLONE_DEFAULT_WRITE_BACK = '0s';
/** The remote name in our generated rclone config file. */
export const RCLONE_REMOTE = 'vol';

/** Per-volume files the daemon is started with, owned by the supervisor's state dir. */
export interface DaemonFiles {
  /** The 0600 credential file: s3fs passwd_file, or the rclone config. */
  credentialFile: string;
  /** rclone's VFS cache dir; kept across restarts so pending uploads survive a daemon crash. */
  cacheDir: string;
}

/** A ready-to-spawn daemon: command, argv and environment additions / removals. */
export interface DaemonCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * Splits and checks `key[=value]` options against the mounter's allow-list.
 * Throws CodedError INVALID_ARGUMENT naming the option that is not allowed or has a bad value.
 */
export function checkOptions(spec: Pick<MountSpec, 'mounter' | 'options'>): Array<[string, string | undefined]> {
  const rules = spec.mounter === 's3fs' ? S3FS_OPTIONS : RCLONE_OPTIONS;
  return spec.options.map((o) => {
    const eq = o.indexOf('=');
    const key = (eq < 0 ? o : o.slice(0, eq)).replace(/^--?/, '');
    const value = eq < 0 ? undefined : o.slice(eq + 1);
    const rule = Object.prototype.hasOwnProperty.call(rules, key) ? rules[key] : undefined;
    if (!rule)
      throw new CodedError(Status.INVALID_ARGUMENT, `mount option "${key}" is not allowed for ${spec.mounter}`);
    if (rule === 'flag' ? value !== undefined : value === undefined || !rule.test(value)) {
      throw new CodedError(Status.INVALID_ARGUMENT, `mount option "${key}" has a bad value for ${spec.mounter}`);
    }
    return [key, value];
  });
}

/** Whether the mount's options set `key` (with or without a value, with or without leading dashes). */
function hasOption(spec: Pick<MountSpec, 'options'>, key: string): boolean {
  return spec.options.some((o) => o.replace(/^--?/, '').split('=')[0] === key);
}

/** The credential file's content for this mount (s3fs passwd line, or an rclone config section with its S3 defaults). */
export function credentialFileContent(spec: MountSpec, creds: FuseCredentials): string {
  if (spec.mounter === 's3fs') {
    if (creds.kind !== 's3') throw new CodedError(Status.INVALID_ARGUMENT, 's3fs needs S3 credentials');
    // The bucket-qualified form: access keys with ':' (Swift s3api's "account:user") stay unambiguous.
    return `${spec.bucket}:${creds.accessKeyId}:${creds.secretAccessKey}\n`;
  }
  const lines = [`[${RCLONE_REMOTE}]`];
  const put = (k: string, v: string | undefined) => v !== undefined && v !== '' && lines.push(`${k} = ${v}`);
  if (creds.kind === 's3') {
    put('type', 's3');
    put('provider', 'Other');
    put('access_key_id', creds.accessKeyId);
    put('secret_access_key', creds.secretAccessKey);
    put('endpoint', spec.endpoint);
    put('region', spec.region);
    put('force_path_style', String(spec.pathStyle));
    for (const [flag, key, value] of RCLONE_DEFAULT_S3_CONFIG) if (!hasOption(spec, flag)) put(key, value);
  } else {
    put('type', 'swift');
    put('auth', creds.authUrl);
    put('auth_version', '3');
    put('region', creds.region);
    put('user', creds.username);
    put('key', creds.password);
    put('domain', creds.userDomainName);
    put('tenant', creds.projectName);
    put('tenant_id', creds.projectId);
    put('tenant_domain', creds.projectDomainName);
    put('application_credential_id', creds.applicationCredentialId);
    put('application_credential_secret', creds.applicationCredentialSecret);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The daemon's command line, run in the foreground (the supervisor spawns it detached). Credentials reach
 * it only through `files.credentialFile`. Throws INVALID_ARGUMENT for an option outside the allow-list.
 */
export function daemonCommand(spec: MountSpec, files: DaemonFiles): DaemonCommand {
  const opts = checkOptions(spec);
  return spec.mounter === 's3fs' ? s3fsCommand(spec, files, opts) : rcloneCommand(spec, files, opts);
}

function s3fsCommand(spec: MountSpec, files: DaemonFiles, opts: Array<[string, string | undefined]>): DaemonCommand {
  const o = [`passwd_file=${files.credentialFile}`, `url=${spec.endpoint}`, `endpoint=${spec.region}`, 'allow_other'];
  if (spec.pathStyle) o.push('use_path_request_style');
  if (spec.uid !== undefined) o.push(`uid=${spec.uid}`);
  if (spec.gid !== undefined) o.push(`gid=${spec.gid}`);
  // s3fs applies umask to 0777 and enforces it itself (no default_permissions needed; measured).
  if (spec.umask !== undefined) o.push(`umask=${spec.umask}`, `mp_umask=${spec.umask}`);
  if (spec.readOnly) o.push('ro');
  for (const [k, v] of S3FS_DEFAULT_OPTIONS) if (!opts.some(([key]) => key === k)) o.push(`${k}=${v}`);
  for (const [k, v] of opts) o.push(v === undefined ? k : `${k}=${v}`);
  const source = spec.prefix ? `${spec.bucket}:/${spec.prefix.replace(/\/+$/, '')}` : spec.bucket;
  return { command: 's3fs', args: [source, spec.target, '-f', ...o.flatMap((x) => ['-o', x])], env: {} };
}

function rcloneCommand(spec: MountSpec, files: DaemonFiles, opts: Array<[string, string | undefined]>): DaemonCommand {
  const args = [
    '--config',
    files.credentialFile,
    'mount',
    `${RCLONE_REMOTE}:${spec.bucket}/${spec.prefix}`,
    spec.target,
  ];
  // rclone's modes are cosmetic unless the kernel checks them (measured: other uids could write).
  args.push('--allow-other', '--default-permissions', '--cache-dir', files.cacheDir);
  if (spec.uid !== undefined) args.push('--uid', String(spec.uid));
  if (spec.gid !== undefined) args.push('--gid', String(spec.gid));
  if (spec.umask !== undefined) args.push('--umask', spec.umask);
  if (spec.readOnly) args.push('--read-only');
  if (!opts.some(([k]) => k === 'vfs-cache-mode')) args.push('--vfs-cache-mode', RCLONE_DEFAULT_CACHE_MODE);
  if (!opts.some(([k]) => k === 'vfs-write-back')) args.push('--vfs-write-back', RCLONE_DEFAULT_WRITE_BACK);
  for (const [k, v] of opts) args.push(v === undefined ? `--${k}` : `--${k}=${v}`);
  // A host-wide AWS_CA_BUNDLE makes rclone 1.60's S3 backend fail every call (LoadCustomCABundleError).
  return { command: 'rclone', args, env: { AWS_CA_BUNDLE: undefined, RCLONE_CONFIG: undefined } };
}
