/**
 * ObjectStore over the native Swift API, authenticated by the cloud's Keystone token (cloud.conf) with the
 * storage URL from the catalog (type `object-store`). Bucket mode keeps ownership and capacity in container
 * metadata (plus Swift's container quota); prefix mode keeps capacity in an object, as the S3 store does.
 */
import { CodedError, Status } from '../errors';
import type { HttpClient, HttpMethod, HttpResponse } from '../openstack/http';
import type { KeystoneClient } from '../openstack/keystone';
import { isOpenStackError } from '../openstack/errors';
import { CAPACITY_OBJECT, DELETE_PAGE_SIZE, RECLAIM_META, type ObjectStore, type VolumeRecord } from './object-store';

/** Catalog types of Swift (keystone service type registry). */
export const OBJECT_STORE_SERVICE_TYPES = ['object-store'] as const;
/** Container metadata naming the volume that created the container. */
export const OWNER_HEADER = 'X-Container-Meta-Cinder-Csi-Owned';
/** Container metadata holding the capacity in bytes (bucket mode). */
export const CAPACITY_HEADER = 'X-Container-Meta-Cinder-Csi-Capacity';
/** Swift's container_quotas middleware enforces this one; without the middleware it is inert metadata. */
export const QUOTA_HEADER = 'X-Container-Meta-Quota-Bytes';
/** Single-object DELETEs in flight at once while emptying a prefix (Swift has no portable bulk delete). */
const DELETE_CONCURRENCY = 8;

/** What the Swift store needs from the cloud's clients. */
export interface SwiftStoreDeps {
  keystone: Pick<KeystoneClient, 'token' | 'invalidate' | 'endpoint'>;
  http: Pick<HttpClient, 'request'>;
  /** Objects per list page; default DELETE_PAGE_SIZE (tests lower it to prove paging). */
  pageSize?: number;
}

/** A Swift container store for one cloud. Nothing is contacted until a call. */
export class SwiftObjectStore implements ObjectStore {
  private readonly pageSize: number;

  constructor(private readonly deps: SwiftStoreDeps) {
    this.pageSize = deps.pageSize ?? DELETE_PAGE_SIZE;
  }

  async bucketExists(bucket: string, signal: AbortSignal): Promise<boolean> {
    return (await this.head(bucket, signal)) !== undefined;
  }

  async createBucket(bucket: string, owner: string, signal: AbortSignal): Promise<void> {
    // Swift's PUT of an existing container succeeds (202), so existence is checked first.
    if (await this.bucketExists(bucket, signal))
      throw new CodedError(Status.ALREADY_EXISTS, `swift container "${bucket}" already exists`);
    await this.request('container.create', 'PUT', bucket, '', signal, { [OWNER_HEADER]: owner });
  }

  async bucketOwner(bucket: string, signal: AbortSignal): Promise<string | undefined> {
    return (await this.head(bucket, signal))?.[OWNER_HEADER.toLowerCase()];
  }

  async deleteBucket(bucket: string, signal: AbortSignal): Promise<void> {
    await this.ignoreNotFound(this.request('container.delete', 'DELETE', bucket, '', signal));
  }

  async deletePrefix(bucket: string, prefix: string, signal: AbortSignal): Promise<{ deleted: number; pages: number }> {
    let deleted = 0;
    let pages = 0;
    let marker = '';
    for (;;) {
      const query = { format: 'json', prefix, limit: this.pageSize, ...(marker ? { marker } : {}) };
      const res = await this.ignoreNotFound(
        this.request<Array<{ name: string }> | string>('objects.list', 'GET', bucket, '', signal, undefined, query),
      );
      if (!res) return { deleted, pages };
      pages++;
      const names = Array.isArray(res.data) ? res.data.map((o) => o.name) : [];
      if (names.length === 0) return { deleted, pages };
      marker = names[names.length - 1];
      for (let i = 0; i < names.length; i += DELETE_CONCURRENCY) {
        const batch = names.slice(i, i + DELETE_CONCURRENCY);
        await Promise.all(
          batch.map((n) => this.ignoreNotFound(this.request('object.delete', 'DELETE', bucket, n, signal))),
        );
      }
      deleted += names.length;
      if (names.length < this.pageSize) return { deleted, pages };
    }
  }

  async getRecord(bucket: string, prefix: string, signal: AbortSignal): Promise<VolumeRecord | undefined> {
    let text: string | undefined;
    let reclaim: string | undefined;
    if (prefix === '') {
      const h = await this.head(bucket, signal);
      [text, reclaim] = [h?.[CAPACITY_HEADER.toLowerCase()], h?.[`x-container-meta-${RECLAIM_META.toLowerCase()}`]];
    } else {
      const res = await this.ignoreNotFound(
        this.request<unknown>('record.get', 'GET', bucket, prefix + CAPACITY_OBJECT, signal),
      );
      // The HTTP layer parses JSON bodies, so the decimal text may arrive as a number.
      [text, reclaim] = [
        res === undefined ? undefined : String(res.data).trim(),
        res?.headers[`x-object-meta-${RECLAIM_META.toLowerCase()}`],
      ];
    }
    if (text === undefined || !/^\d+$/.test(text)) return undefined;
    return { capacityBytes: BigInt(text), reclaim: reclaim === 'retain' ? 'retain' : 'delete' };
  }

  async putRecord(bucket: string, prefix: string, record: VolumeRecord, signal: AbortSignal): Promise<void> {
    const value = record.capacityBytes.toString();
    if (prefix === '') {
      const headers = {
        [CAPACITY_HEADER]: value,
        [QUOTA_HEADER]: value,
        [`X-Container-Meta-${RECLAIM_META}`]: record.reclaim,
      };
      await this.request('record.set', 'POST', bucket, '', signal, headers);
    } else {
      const headers = { [`X-Object-Meta-${RECLAIM_META}`]: record.reclaim };
      await this.request('record.put', 'PUT', bucket, prefix + CAPACITY_OBJECT, signal, headers, undefined, value);
    }
  }

  /** The container's headers (lowercase names), or undefined when it is absent. */
  private async head(bucket: string, signal: AbortSignal): Promise<Record<string, string | undefined> | undefined> {
    return (await this.ignoreNotFound(this.request('container.head', 'HEAD', bucket, '', signal)))?.headers;
  }

  private async request<T = unknown>(
    operation: string,
    method: HttpMethod,
    bucket: string,
    object: string,
    signal: AbortSignal,
    headers?: Record<string, string>,
    params?: Record<string, string | number>,
    body?: string,
  ): Promise<HttpResponse<T>> {
    const base = await this.deps.keystone.endpoint(OBJECT_STORE_SERVICE_TYPES, signal);
    const path = [bucket, ...(object ? object.split('/') : [])].map(encodeURIComponent).join('/');
    return this.deps.http.request<T>({
      service: 'swift',
      operation,
      method,
      url: `${base}/${path}`,
      headers,
      params,
      body,
      signal,
      auth: this.deps.keystone,
    });
  }

  private async ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
    try {
      return await p;
    } catch (e) {
      if (isOpenStackError(e, 'not-found')) return undefined;
      throw e;
    }
  }
}
