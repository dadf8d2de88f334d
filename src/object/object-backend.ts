/**
 * ControllerBackend for object volumes (`backend: object`): a bucket per volume ("bucket mode") or a prefix
 * in a given bucket ("prefix mode"), with a capacity record and an ownership mark. Built per request by
 * the routing with the store the request's secrets reach; FUSE mounting is the node side's.
 */
import type { Logger } from '../log';
import { CodedError, Status } from '../errors';
import type {
  ControllerBackend,
  CreateSnapshotSpec,
  CreateVolumeSpec,
  CreatedVolume,
  PageOf,
  PageRequest,
  Published,
  SnapshotInfo,
  VolumeInfo,
} from '../block/block-types';
import type { ObjectStore, VolumeRecord } from './object-store';
import type { ObjectParams } from './object-params';
import { bucketNameFor, prefixFor } from './names';
import { encodeObjectVolumeId, parseObjectVolumeId, type ObjectProvider, type ObjectVolumeRef } from './volume-id';
import { objectVolumeContext } from './object-context';

const GIB = 1024n ** 3n;

/** What one request's object backend works with. */
export interface ObjectBackendDeps {
  /** Builds the store on first use, so Publish/Unpublish (which carry no S3 secrets) never need one. */
  openStore: () => ObjectStore;
  provider: ObjectProvider;
  /** CreateVolume only: the StorageClass parameters. */
  params?: Readonly<ObjectParams>;
  /** The S3 endpoint the store uses, for volume_context. */
  endpoint?: string;
  log: Logger;
}

/**
 * Object volumes behind the ControllerBackend seam. Publish is a no-op (nothing to attach); snapshots and
 * clones are refused with INVALID_ARGUMENT; listVolumes lists nothing (ListVolumes reports block volumes only).
 */
export class ObjectControllerBackend implements ControllerBackend {
  private opened?: ObjectStore;

  constructor(private readonly deps: ObjectBackendDeps) {}

  private get store(): ObjectStore {
    this.opened ??= this.deps.openStore();
    return this.opened;
  }

  /**
   * Creates (or finds, by name) the volume's bucket or prefix and its record. ALREADY_EXISTS when the record
   * holds another capacity, or the bucket exists without this driver's mark for this name; FAILED_PRECONDITION
   * when the prefix-mode bucket is absent; INVALID_ARGUMENT for a content source.
   */
  async createVolume(spec: CreateVolumeSpec, signal: AbortSignal): Promise<CreatedVolume> {
    const p = this.deps.params;
    if (!p) throw new CodedError(Status.INTERNAL, 'object backend built without StorageClass parameters');
    if (spec.source)
      throw new CodedError(
        Status.INVALID_ARGUMENT,
        'volume_content_source is not supported for object volumes (no snapshots or clones)',
      );
    const { store } = this;
    const ref: ObjectVolumeRef = p.bucket
      ? { provider: p.provider, bucket: p.bucket, prefix: prefixFor(spec.name) }
      : { provider: p.provider, bucket: bucketNameFor(spec.name), prefix: '' };
    if (p.bucket) {
      if (!(await store.bucketExists(ref.bucket, signal))) {
        throw new CodedError(
          Status.FAILED_PRECONDITION,
          `parameters.bucket "${ref.bucket}" does not exist; prefix mode needs an existing bucket`,
        );
      }
    } else {
      await this.ensureOwnBucket(ref.bucket, spec.name, signal);
    }
    const wanted = BigInt(spec.sizeGiB) * GIB;
    let record = await store.getRecord(ref.bucket, ref.prefix, signal);
    if (record && record.capacityBytes !== wanted) {
      throw new CodedError(
        Status.ALREADY_EXISTS,
        `volume "${spec.name}" exists with capacity ${record.capacityBytes} bytes, not ${wanted}`,
      );
    }
    if (!record) {
      record = { capacityBytes: wanted, reclaim: p.reclaim };
      await store.putRecord(ref.bucket, ref.prefix, record, signal);
    }
    const volume = this.info(encodeObjectVolumeId(ref), spec.name, record);
    return { volume, context: objectVolumeContext(ref, p, this.deps.endpoint, record.capacityBytes) };
  }

  /**
   * Removes the prefix's objects, or the bucket this driver created with everything in it. Absent, retained
   * (`reclaimData: retain`) or never provisioned by this driver (no record) → success with data untouched.
   */
  async deleteVolume(id: string, signal: AbortSignal): Promise<void> {
    const ref = this.ref(id);
    const { store } = this;
    const { log } = this.deps;
    const record = await store.getRecord(ref.bucket, ref.prefix, signal);
    if (record?.reclaim === 'retain') {
      log.info({ volumeId: id }, 'object volume has reclaimData retain: data kept');
      return;
    }
    if (ref.prefix !== '') {
      if (!record) {
        log.info({ volumeId: id }, 'no record under the prefix: not provisioned by this driver, nothing deleted');
        return;
      }
      const done = await store.deletePrefix(ref.bucket, ref.prefix, signal);
      log.info({ volumeId: id, ...done }, 'object volume prefix deleted');
      return;
    }
    // Bucket mode: only a bucket marked as created by us for the name it is derived from (a crash between
    // creating the bucket and writing the record still leaves the mark, so that bucket is removed too).
    const owner = await store.bucketOwner(ref.bucket, signal);
    if (owner === undefined || bucketNameFor(owner) !== ref.bucket) {
      log.warn({ volumeId: id }, 'bucket not created by this driver: nothing deleted');
      return;
    }
    const done = await store.deletePrefix(ref.bucket, '', signal);
    await store.deleteBucket(ref.bucket, signal);
    log.info({ volumeId: id, ...done }, 'object volume bucket deleted');
  }

  /** The volume from its record; undefined when there is no record (absent, or not provisioned by us). */
  async getVolume(id: string, signal: AbortSignal): Promise<VolumeInfo | undefined> {
    const ref = this.ref(id);
    const record = await this.store.getRecord(ref.bucket, ref.prefix, signal);
    return record ? this.info(id, ref.prefix ? ref.prefix.slice(0, -1) : ref.bucket, record) : undefined;
  }

  async listVolumes(_page: PageRequest, _signal: AbortSignal): Promise<PageOf<VolumeInfo>> {
    return { items: [] };
  }

  /** Nothing to attach: a FUSE mount on the node reaches the bucket itself. The id must parse. */
  async publishVolume(volumeId: string, _nodeId: string, _signal: AbortSignal): Promise<Published> {
    this.ref(volumeId);
    return {};
  }

  async unpublishVolume(volumeId: string, _nodeId: string, _signal: AbortSignal): Promise<void> {
    this.ref(volumeId);
  }

  /** Raises the recorded capacity (and Swift's quota). NOT_FOUND without a record. */
  async expandVolume(id: string, sizeGiB: number, signal: AbortSignal): Promise<{ sizeGiB: number }> {
    const ref = this.ref(id);
    const record = await this.store.getRecord(ref.bucket, ref.prefix, signal);
    if (!record) throw new CodedError(Status.NOT_FOUND, `object volume ${id} has no capacity record`);
    const wanted = BigInt(sizeGiB) * GIB;
    if (record.capacityBytes >= wanted) return { sizeGiB: gibOf(record.capacityBytes) };
    await this.store.putRecord(ref.bucket, ref.prefix, { ...record, capacityBytes: wanted }, signal);
    return { sizeGiB };
  }

  async createSnapshot(spec: CreateSnapshotSpec, _signal: AbortSignal): Promise<SnapshotInfo> {
    throw new CodedError(
      Status.INVALID_ARGUMENT,
      `source_volume_id ${spec.sourceVolumeId}: snapshots are not supported for object volumes`,
    );
  }

  async deleteSnapshot(_id: string, _signal: AbortSignal): Promise<void> {
    // Object volumes never have snapshots; an unknown snapshot is deleted by definition (CSI idempotency).
  }

  async getSnapshot(_id: string, _signal: AbortSignal): Promise<SnapshotInfo | undefined> {
    return undefined;
  }

  async listSnapshots(
    _q: PageRequest & { sourceVolumeId?: string },
    _signal: AbortSignal,
  ): Promise<PageOf<SnapshotInfo>> {
    return { items: [] };
  }

  private ref(id: string): ObjectVolumeRef {
    const ref = parseObjectVolumeId(id);
    if (!ref) throw new CodedError(Status.NOT_FOUND, `volume ${id} is not an object volume id`);
    if (ref.provider !== this.deps.provider)
      throw new CodedError(Status.INTERNAL, `volume ${id} routed to the ${this.deps.provider} store`);
    return ref;
  }

  /** Creates the bucket-mode bucket unless it is already ours; ALREADY_EXISTS for someone else's bucket. */
  private async ensureOwnBucket(bucket: string, name: string, signal: AbortSignal): Promise<void> {
    const { store } = this;
    if (await store.bucketExists(bucket, signal)) {
      const owner = await store.bucketOwner(bucket, signal);
      if (owner !== name)
        throw new CodedError(
          Status.ALREADY_EXISTS,
          `bucket "${bucket}" exists and was not created by this driver for volume "${name}"`,
        );
      return;
    }
    await store.createBucket(bucket, name, signal);
  }

  private info(id: string, name: string, record: VolumeRecord): VolumeInfo {
    return {
      id,
      name,
      sizeGiB: gibOf(record.capacityBytes),
      status: 'available',
      multiattach: true,
      publishedNodeIds: [],
    };
  }
}

/** Whole GiB holding `bytes` (rounded up). */
function gibOf(bytes: bigint): number {
  return Number((bytes + GIB - 1n) / GIB);
}
