/**
 * ObjectStore over the S3 API (AWS, MinIO, Ceph RGW, Swift's s3api, s3rver) through the minio client,
 * which does the SigV4 signing. Ownership and capacity are small objects (OWNER_OBJECT, CAPACITY_OBJECT)
 * because bucket tagging is not offered by every S3 implementation we target.
 */
import { type Readable } from 'node:stream';
import type * as Minio from 'minio';
import { CodedError, Status } from '../errors';
import {
  CAPACITY_OBJECT,
  DELETE_PAGE_SIZE,
  OWNER_OBJECT,
  RECLAIM_META,
  type ObjectStore,
  type VolumeRecord,
} from './object-store';
import { s3Failure, withSignal } from './store-errors';

type ListPage = Awaited<ReturnType<Minio.Client['listObjectsQuery']>>;

/** Largest record we read back (owner name or capacity); anything bigger is not ours. */
const RECORD_MAX_BYTES = 4096;

/** How to reach one S3 endpoint with one key pair. */
export interface S3StoreOptions {
  /** `http(s)://host[:port]`; a path is not allowed. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** Signing region, e.g. `us-east-1`. */
  region: string;
  /** Path-style addressing (`host/bucket/key`), needed by most non-AWS servers. */
  pathStyle: boolean;
  /** Objects per list/delete page (tests lower it to prove paging); default DELETE_PAGE_SIZE. */
  pageSize?: number;
}

/**
 * Parses `endpoint` for the S3 client. INVALID_ARGUMENT naming `field` when it is not an http(s) URL
 * without path, query or credentials.
 */
export function parseS3Endpoint(endpoint: string, field: string): { host: string; port: number; useSSL: boolean } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new CodedError(Status.INVALID_ARGUMENT, `${field} "${endpoint}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CodedError(Status.INVALID_ARGUMENT, `${field} must be an http or https URL`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username || url.password) {
    throw new CodedError(Status.INVALID_ARGUMENT, `${field} must be scheme://host[:port] only`);
  }
  const useSSL = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port: url.port ? Number(url.port) : useSSL ? 443 : 80, useSSL };
}

/**
 * minio loads with the first S3 store, not with the controller: a Cinder-only controller would otherwise carry
 * its ~10 MB of modules (xml2js, lodash...) for nothing (bench/scale.ts peak RSS). require() is cached after.
 */
function minio(): typeof Minio {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('minio') as typeof Minio;
}

/** An S3 bucket store. Construction validates the endpoint only; nothing is contacted until a call. */
export class S3ObjectStore implements ObjectStore {
  private readonly client: Minio.Client;
  private readonly pageSize: number;

  constructor(private readonly o: S3StoreOptions) {
    const ep = parseS3Endpoint(o.endpoint, 'endpoint');
    this.client = new (minio().Client)({
      endPoint: ep.host,
      port: ep.port,
      useSSL: ep.useSSL,
      accessKey: o.accessKey,
      secretKey: o.secretKey,
      region: o.region,
      pathStyle: o.pathStyle,
      // The CO retries the whole RPC; the client's own retries would only log to the console behind our back.
      retryOptions: { disableRetry: true },
    });
    this.pageSize = o.pageSize ?? DELETE_PAGE_SIZE;
  }

  async bucketExists(bucket: string, signal: AbortSignal): Promise<boolean> {
    return this.call('bucket.exists', bucket, signal, () => this.client.bucketExists(bucket));
  }

  async createBucket(bucket: string, owner: string, signal: AbortSignal): Promise<void> {
    await this.call('bucket.create', bucket, signal, () => this.client.makeBucket(bucket, this.o.region));
    await this.call('owner.put', bucket, signal, () => this.client.putObject(bucket, OWNER_OBJECT, Buffer.from(owner)));
  }

  async bucketOwner(bucket: string, signal: AbortSignal): Promise<string | undefined> {
    return this.readRecord(bucket, OWNER_OBJECT, signal);
  }

  async deleteBucket(bucket: string, signal: AbortSignal): Promise<void> {
    try {
      // The ownership mark goes last (deletePrefix keeps it), so a retry after a crash still knows the bucket is ours.
      await this.call('owner.delete', bucket, signal, () => this.client.removeObject(bucket, OWNER_OBJECT));
      await this.call('bucket.delete', bucket, signal, () => this.client.removeBucket(bucket));
    } catch (e) {
      if (!(e instanceof CodedError && e.code === Status.NOT_FOUND)) throw e;
    }
  }

  async deletePrefix(bucket: string, prefix: string, signal: AbortSignal): Promise<{ deleted: number; pages: number }> {
    let deleted = 0;
    let pages = 0;
    let marker = '';
    for (;;) {
      let page: ListPage;
      try {
        // ListObjects v1 with a marker: every S3 implementation has it (s3rver's v2 continuation tokens need
        // DES, which OpenSSL 3 no longer offers), and a marker is all we need.
        page = await this.call('objects.list', bucket, signal, () =>
          this.client.listObjectsQuery(bucket, prefix, marker, { Delimiter: '', MaxKeys: this.pageSize }),
        );
      } catch (e) {
        if (e instanceof CodedError && e.code === Status.NOT_FOUND) return { deleted, pages };
        throw e;
      }
      pages++;
      const listed = page.objects.map((o) => o.name).filter((n): n is string => !!n);
      if (listed.length === 0) return { deleted, pages };
      marker = listed[listed.length - 1];
      const names = listed.filter((n) => n !== OWNER_OBJECT);
      if (names.length > 0) {
        const results = await this.call('objects.delete', bucket, signal, () =>
          this.client.removeObjects(bucket, names),
        );
        const failed = results.find((r) => r?.Error);
        if (failed?.Error) {
          throw new CodedError(
            Status.INTERNAL,
            `s3 objects.delete of bucket "${bucket}": ${failed.Error.Code ?? 'error'} on "${failed.Error.Key ?? '?'}"`,
          );
        }
        deleted += names.length;
      }
      if (!page.isTruncated) return { deleted, pages };
    }
  }

  async getRecord(bucket: string, prefix: string, signal: AbortSignal): Promise<VolumeRecord | undefined> {
    const key = prefix + CAPACITY_OBJECT;
    const text = (await this.readRecord(bucket, key, signal))?.trim();
    if (text === undefined || !/^\d+$/.test(text)) return undefined;
    const stat = await this.call('record.stat', bucket, signal, () => this.client.statObject(bucket, key));
    const meta = stat.metaData as Record<string, string | undefined>;
    const reclaim = meta[RECLAIM_META.toLowerCase()] ?? meta[`x-amz-meta-${RECLAIM_META.toLowerCase()}`];
    return { capacityBytes: BigInt(text), reclaim: reclaim === 'retain' ? 'retain' : 'delete' };
  }

  async putRecord(bucket: string, prefix: string, record: VolumeRecord, signal: AbortSignal): Promise<void> {
    const body = Buffer.from(record.capacityBytes.toString());
    const meta = { [`X-Amz-Meta-${RECLAIM_META}`]: record.reclaim };
    await this.call('record.put', bucket, signal, () =>
      this.client.putObject(bucket, prefix + CAPACITY_OBJECT, body, body.length, meta),
    );
  }

  /** A small object's text, or undefined when the object or bucket is absent. */
  private async readRecord(bucket: string, key: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      return await this.call('record.get', bucket, signal, async () =>
        readSmall(await this.client.getObject(bucket, key)),
      );
    } catch (e) {
      if (e instanceof CodedError && e.code === Status.NOT_FOUND) return undefined;
      throw e;
    }
  }

  private async call<T>(operation: string, bucket: string, signal: AbortSignal, op: () => Promise<T>): Promise<T> {
    try {
      return await withSignal(signal, `s3 ${operation} of bucket "${bucket}"`, op);
    } catch (e) {
      throw s3Failure(e, { provider: 's3', operation, bucket, secret: this.o.secretKey });
    }
  }
}

async function readSmall(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > RECORD_MAX_BYTES) {
      stream.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
