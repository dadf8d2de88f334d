/**
 * The one small interface the object backend needs from a provider (S3 or Swift): buckets with an
 * ownership mark, paged deletion under a prefix, and the capacity record. Implementations map their
 * provider's failures to CodedErrors (see each method) and never put a credential in a message.
 */

/** Key, under a volume's prefix, of the object holding its capacity in bytes (decimal text). */
export const CAPACITY_OBJECT = '.cinder-csi/capacity';
/** Key, at a bucket's root, of the object naming the volume that created the bucket (S3 has no portable
 *  bucket metadata: s3rver and Swift's s3api lack bucket tagging). */
export const OWNER_OBJECT = '.cinder-csi/owner';
/** Objects listed (and deleted) per page by deletePrefix; S3's own maximum per ListObjectsV2/DeleteObjects. */
export const DELETE_PAGE_SIZE = 1000;

/** Metadata name (S3 `x-amz-meta-`, Swift `X-…-Meta-`) of the reclaim policy kept with the record. */
export const RECLAIM_META = 'Cinder-Csi-Reclaim';

/**
 * What the controller keeps with a volume: its capacity (ControllerExpandVolume raises it) and what
 * DeleteVolume must do, since DeleteVolume gets only the volume id and no StorageClass parameters.
 * A volume without a record was not provisioned by this driver, so DeleteVolume leaves its data alone.
 */
export interface VolumeRecord {
  capacityBytes: bigint;
  reclaim: 'delete' | 'retain';
}

/**
 * A provider's buckets (Swift: containers) as the controller uses them. Every method stops with
 * DEADLINE_EXCEEDED once `signal` fires (between requests at least). Errors: a refused or failing
 * endpoint → UNAVAILABLE; rejected credentials → UNAUTHENTICATED / PERMISSION_DENIED; a name the
 * provider refuses → INVALID_ARGUMENT.
 */
export interface ObjectStore {
  /** True when the bucket exists (and the credentials can see it). */
  bucketExists(bucket: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Creates the bucket and marks it as created for `owner` (the volume name). ALREADY_EXISTS when the
   * bucket exists already (callers check ownership with bucketOwner first).
   */
  createBucket(bucket: string, owner: string, signal: AbortSignal): Promise<void>;
  /** The volume name that created the bucket through this driver, or undefined (absent bucket or no mark). */
  bucketOwner(bucket: string, signal: AbortSignal): Promise<string | undefined>;
  /** Deletes a bucket emptied by deletePrefix (the ownership mark with it). Absent → success. */
  deleteBucket(bucket: string, signal: AbortSignal): Promise<void>;
  /**
   * Deletes every object whose key starts with `prefix` ('' = the whole bucket), a page at a time, except
   * the ownership mark (deleteBucket removes it last). Absent bucket → 0 deleted. Returns how many objects
   * were deleted and how many list pages it took.
   */
  deletePrefix(bucket: string, prefix: string, signal: AbortSignal): Promise<{ deleted: number; pages: number }>;
  /** The record of the volume at bucket/prefix, or undefined when none was written (or the bucket is absent). */
  getRecord(bucket: string, prefix: string, signal: AbortSignal): Promise<VolumeRecord | undefined>;
  /** Writes (or overwrites) the record. NOT_FOUND when the bucket is absent. */
  putRecord(bucket: string, prefix: string, record: VolumeRecord, signal: AbortSignal): Promise<void>;
}
