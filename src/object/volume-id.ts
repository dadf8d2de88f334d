/**
 * Object-volume handles: `obj1:<provider>:<bucket>:<prefix>`, shared by the controller and node sides.
 * This module only encodes and parses; it validates shape, not whether the bucket exists.
 * Bucket names never contain ':' (S3 and our generated Swift names forbid it), so the split is unambiguous.
 */

/** Object-storage providers an object volume can live on. */
export type ObjectProvider = 's3' | 'swift';

/** Providers accepted in `parameters.provider` and in volume ids. */
export const OBJECT_PROVIDERS: readonly ObjectProvider[] = ['s3', 'swift'];

/** Version tag at the start of every object volume id. */
export const OBJECT_VOLUME_ID_PREFIX = 'obj1:';

/** The location an object volume id names. `prefix` is '' in bucket mode, `<pv-name>/` in prefix mode. */
export interface ObjectVolumeRef {
  provider: ObjectProvider;
  bucket: string;
  prefix: string;
}

/** True when `value` names a supported provider. */
export function isObjectProvider(value: string): value is ObjectProvider {
  return (OBJECT_PROVIDERS as readonly string[]).includes(value);
}

/**
 * Builds `obj1:<provider>:<bucket>:<prefix>`.
 * Throws a plain Error when the bucket is empty or contains ':' (a programming error: generated names never do).
 */
export function encodeObjectVolumeId(ref: ObjectVolumeRef): string {
  if (ref.bucket === '' || ref.bucket.includes(':')) {
    throw new Error(`object bucket name ${JSON.stringify(ref.bucket)} is empty or contains ':'`);
  }
  return `${OBJECT_VOLUME_ID_PREFIX}${ref.provider}:${ref.bucket}:${ref.prefix}`;
}

/**
 * Parses an object volume id. Returns undefined for anything that is not a well-formed `obj1:` id
 * (Cinder UUIDs, unknown providers, empty bucket, a non-empty prefix that does not end in '/').
 */
export function parseObjectVolumeId(id: string): ObjectVolumeRef | undefined {
  if (!id.startsWith(OBJECT_VOLUME_ID_PREFIX)) return undefined;
  const rest = id.slice(OBJECT_VOLUME_ID_PREFIX.length);
  const first = rest.indexOf(':');
  if (first < 0) return undefined;
  const provider = rest.slice(0, first);
  const second = rest.indexOf(':', first + 1);
  if (second < 0) return undefined;
  const bucket = rest.slice(first + 1, second);
  // The prefix is everything after the second ':'; prefixes may legitimately contain ':' themselves.
  const prefix = rest.slice(second + 1);
  if (!isObjectProvider(provider) || bucket === '') return undefined;
  if (prefix !== '' && !prefix.endsWith('/')) return undefined;
  return { provider, bucket, prefix };
}

/** True for ids that {@link parseObjectVolumeId} accepts. */
export function isObjectVolumeId(id: string): boolean {
  return parseObjectVolumeId(id) !== undefined;
}
