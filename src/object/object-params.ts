/**
 * StorageClass parameters of object volumes (`backend: object`): parsed once into a typed, frozen object,
 * with defaults from the shared contract and each bad value refused as INVALID_ARGUMENT naming
 * `parameters.<key>`. The node side reads the same values back from volume_context, not from here.
 */
import { CodedError, Status } from '../errors';
import { bucketNameProblem } from './names';
import { isObjectProvider, type ObjectProvider } from './volume-id';

/** The StorageClass key that selects a backend, and its object value. */
export const BACKEND_KEY = 'backend';
export const BACKEND_OBJECT = 'object';
export const BACKEND_BLOCK = 'block';
/** Defaults of the contract. */
export const DEFAULT_S3_REGION = 'us-east-1';
export const DEFAULT_PATH_STYLE = true;
/** FUSE mounters the node side implements. */
export const OBJECT_MOUNTERS = ['s3fs', 'rclone'] as const;
export type ObjectMounter = (typeof OBJECT_MOUNTERS)[number];

const SIDECAR_PREFIX = 'csi.storage.k8s.io/';
const OBJECT_KEYS = new Set([
  BACKEND_KEY,
  'provider',
  'bucket',
  'endpoint',
  'region',
  'pathStyle',
  'mounter',
  'mountOptions',
  'reclaimData',
  'uid',
  'gid',
  'umask',
]);
const ID_RE = /^\d{1,10}$/;
const UMASK_RE = /^0?[0-7]{3}$/;

/** Parsed object-volume parameters. `bucket` set = prefix mode. */
export interface ObjectParams {
  provider: ObjectProvider;
  bucket?: string;
  endpoint?: string;
  region: string;
  pathStyle: boolean;
  mounter: ObjectMounter;
  mountOptions?: string;
  reclaim: 'delete' | 'retain';
  uid?: string;
  gid?: string;
  umask?: string;
}

/** True when `parameters` select the object backend. INVALID_ARGUMENT for a `backend` other than block/object. */
export function isObjectBackend(params: Readonly<Record<string, string>>): boolean {
  const b = params[BACKEND_KEY];
  if (b === undefined || b === '' || b === BACKEND_BLOCK) return false;
  if (b === BACKEND_OBJECT) return true;
  throw bad(BACKEND_KEY, `"${b}" must be ${BACKEND_BLOCK} or ${BACKEND_OBJECT}`);
}

/** Parses `backend: object` parameters; INVALID_ARGUMENT naming the first bad key. */
export function parseObjectParameters(params: Readonly<Record<string, string>>): Readonly<ObjectParams> {
  for (const key of Object.keys(params)) {
    if (!OBJECT_KEYS.has(key) && !key.startsWith(SIDECAR_PREFIX)) {
      throw bad(
        key,
        `is not a known object-volume parameter (known: ${[...OBJECT_KEYS].join(', ')}, ${SIDECAR_PREFIX}*)`,
      );
    }
  }
  const provider = params.provider || 's3';
  if (!isObjectProvider(provider)) throw bad('provider', `"${provider}" must be s3 or swift`);
  const bucket = params.bucket || undefined;
  if (bucket !== undefined) {
    const problem = bucketNameProblem(bucket);
    if (problem) throw bad('bucket', `"${bucket}" ${problem}`);
  }
  const mounter = params.mounter || (provider === 'swift' ? 'rclone' : 's3fs');
  if (!(OBJECT_MOUNTERS as readonly string[]).includes(mounter))
    throw bad('mounter', `"${mounter}" must be one of ${OBJECT_MOUNTERS.join(', ')}`);
  if (provider === 'swift' && mounter !== 'rclone') throw bad('mounter', 'must be rclone for provider swift');
  if (provider === 'swift' && params.endpoint)
    throw bad('endpoint', 'is for provider s3; swift takes its endpoint from the Keystone catalog');
  const pathStyle = params.pathStyle ?? String(DEFAULT_PATH_STYLE);
  if (!/^(true|false)$/i.test(pathStyle)) throw bad('pathStyle', `"${pathStyle}" must be true or false`);
  const reclaim = params.reclaimData || 'delete';
  if (reclaim !== 'delete' && reclaim !== 'retain') throw bad('reclaimData', `"${reclaim}" must be delete or retain`);
  for (const k of ['uid', 'gid'] as const)
    if (params[k] && !ID_RE.test(params[k])) throw bad(k, `"${params[k]}" must be a decimal id`);
  if (params.umask && !UMASK_RE.test(params.umask))
    throw bad('umask', `"${params.umask}" must be three or four octal digits`);
  return Object.freeze({
    provider,
    bucket,
    endpoint: params.endpoint || undefined,
    region: params.region || DEFAULT_S3_REGION,
    pathStyle: pathStyle.toLowerCase() === 'true',
    mounter: mounter as ObjectMounter,
    mountOptions: params.mountOptions || undefined,
    reclaim,
    uid: params.uid || undefined,
    gid: params.gid || undefined,
    umask: params.umask || undefined,
  });
}

function bad(key: string, problem: string): CodedError {
  return new CodedError(Status.INVALID_ARGUMENT, `parameters.${key} ${problem}`);
}
