/**
 * What the node reads to mount an object volume: the volume_context keys of the object-volume contract,
 * the node-stage secrets and the capability's fsGroup, turned into the FUSE supervisor's MountSpec and
 * credentials. Nothing here touches the system; the supervisor validates again on its side.
 */
import { invalidArgument } from '../errors';
import type { VolumeCapability } from './types';
import type { FuseCredentials, MountSpec, MounterName } from '../fuse/protocol';
import type { ObjectVolumeRef } from '../object/volume-id';

/** Region when neither the StorageClass nor the secret names one (the contract's default). */
export const DEFAULT_OBJECT_REGION = 'us-east-1';
/** With an fsGroup and no umask the group gets full access and others none, as MP does (770/660). */
export const FSGROUP_DEFAULT_UMASK = '0007';
/**
 * s3fs checks access itself against the caller's primary gid and /etc/group, never its supplementary groups,
 * which is how kubelet gives a pod's processes the fsGroup: with 0007 a pod whose runAsGroup is not the fsGroup
 * is refused (measured, test/fuse/permissions.root.test.ts). So on s3fs an fsGroup sets the group and leaves
 * the mode open; who can reach the mount is decided by who has it bound (the pods of this volume).
 */
export const S3FS_FSGROUP_DEFAULT_UMASK = '0000';

type StringMap = Record<string, string> | undefined | null;

function intField(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,10}$/.test(value)) throw invalidArgument(field, `"${value}" is not a non-negative integer`);
  return Number(value);
}

/**
 * The supervisor mount request for staging `ref` at `target`. Throws INVALID_ARGUMENT naming the
 * volume_context key, secret key or capability field that is missing or malformed.
 */
export function objectMountSpec(
  volumeId: string,
  ref: ObjectVolumeRef,
  target: string,
  context: StringMap,
  secrets: StringMap,
  cap: VolumeCapability,
  readOnly: boolean,
): MountSpec {
  const c = context ?? {};
  const provider = c.provider || ref.provider;
  if (provider !== ref.provider)
    throw invalidArgument('volume_context.provider', `"${provider}" does not match volume_id`);
  const mounter = (c.mounter || (provider === 'swift' ? 'rclone' : 's3fs')) as MounterName;
  if (mounter !== 's3fs' && mounter !== 'rclone')
    throw invalidArgument('volume_context.mounter', `"${mounter}" is not s3fs or rclone`);
  if (provider === 'swift' && mounter !== 'rclone')
    throw invalidArgument('volume_context.mounter', 'must be rclone for swift');
  const endpoint = c.endpoint || secrets?.endpoint || '';
  if (provider === 's3' && !endpoint)
    throw invalidArgument('volume_context.endpoint', 'is required for s3 (or secret endpoint)');
  const fsGroup = intField(cap.mount?.volume_mount_group, 'volume_capability.mount.volume_mount_group');
  const umask =
    c.umask ||
    (fsGroup === undefined ? undefined : mounter === 's3fs' ? S3FS_FSGROUP_DEFAULT_UMASK : FSGROUP_DEFAULT_UMASK);
  if (umask !== undefined && !/^0?[0-7]{1,3}$/.test(umask))
    throw invalidArgument('volume_context.umask', `"${umask}" is not octal`);
  return {
    volumeId,
    target,
    mounter,
    provider,
    bucket: c.bucket || ref.bucket,
    prefix: c.prefix ?? ref.prefix,
    endpoint,
    region: c.region || DEFAULT_OBJECT_REGION,
    pathStyle: c.pathStyle !== 'false',
    options: (c.mountOptions ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    uid: intField(c.uid, 'volume_context.uid'),
    // fsGroup (VOLUME_MOUNT_GROUP) wins over the StorageClass gid: the pod asked for it.
    gid: fsGroup ?? intField(c.gid, 'volume_context.gid'),
    umask,
    readOnly,
  };
}

/**
 * Credentials from the node-stage secret: `accessKeyID`/`secretAccessKey` for S3, Keystone keys with
 * cloud.conf names for Swift. Throws INVALID_ARGUMENT naming the missing secret key (never its value).
 */
export function objectCredentials(provider: 's3' | 'swift', secrets: StringMap): FuseCredentials {
  const s = secrets ?? {};
  if (provider === 's3') {
    if (!s.accessKeyID) throw invalidArgument('secrets.accessKeyID', 'is required');
    if (!s.secretAccessKey) throw invalidArgument('secrets.secretAccessKey', 'is required');
    return { kind: 's3', accessKeyId: s.accessKeyID, secretAccessKey: s.secretAccessKey };
  }
  if (!s['auth-url']) throw invalidArgument('secrets.auth-url', 'is required for swift');
  const hasAppCred = Boolean(s['application-credential-id'] && s['application-credential-secret']);
  if (!hasAppCred && !(s.username && s.password)) {
    throw invalidArgument(
      'secrets',
      'need username+password or application-credential-id+application-credential-secret for swift',
    );
  }
  return {
    kind: 'swift',
    authUrl: s['auth-url'],
    region: s.region || undefined,
    username: s.username || undefined,
    password: s.password || undefined,
    userDomainName: s['user-domain-name'] || undefined,
    projectName: s['project-name'] || undefined,
    projectDomainName: s['project-domain-name'] || undefined,
    projectId: s['project-id'] || undefined,
    applicationCredentialId: s['application-credential-id'] || undefined,
    applicationCredentialSecret: s['application-credential-secret'] || undefined,
  };
}
