/**
 * Cinder (Block Storage v3) client: volumes, snapshots, backups and absolute limits, with the microversions
 * the reference driver uses (3.34 list by name, 3.42 extend in-use, 3.51 create from backup / backup with
 * metadata). Waiting for statuses is the backend's job; this module makes one API call per method.
 */
import { VolumeReadBatcher } from './cinder-batch';
import { isOpenStackError, OpenStackError } from './errors';
import { type HttpClient, type HttpMethod } from './http';
import { type ServiceAuth, VOLUME_SERVICE_TYPES } from './keystone';
import { projectIdOfEndpoint, type CinderQuotaSetUsage } from './cinder-limits';
import {
  type CinderAbsoluteLimits,
  type CinderBackup,
  type CinderMessage,
  type CinderSnapshot,
  type CinderVolume,
  type CreateBackupRequest,
  type CreateSnapshotRequest,
  type CreateVolumeRequest,
  type ListBackupsRequest,
  type ListSnapshotsRequest,
  type ListVolumesRequest,
  type Page,
} from './cinder-types';

export * from './cinder-types';

/** Sent when no feature needs more; the reference sends none, which Cinder treats as 3.0. */
export const CINDER_BASE_MICROVERSION = '3.0';
export const CINDER_MICROVERSION_LIST_BY_NAME = '3.34';
export const CINDER_MICROVERSION_EXTEND_IN_USE = '3.42';
export const CINDER_MICROVERSION_BACKUP = '3.51';
/** User messages (GET /messages) exist from 3.3. */
export const CINDER_MICROVERSION_MESSAGES = '3.3';
/** Cinder's `migration_policy` of os-retype: `never` refuses a retype that must move the data to another backend. */
export type RetypeMigrationPolicy = 'never' | 'on-demand';
/** Page size of listVolumesByName's internal pagination. */
const LIST_BY_NAME_PAGE = 1000;

/** What the block backend needs from Cinder. Every method rejects with OpenStackError (see errors.ts). */
export interface CinderApi {
  /** POST /volumes; answers at once with status `creating`. */
  createVolume(req: CreateVolumeRequest, signal?: AbortSignal): Promise<CinderVolume>;
  /** GET /volumes/{id}; NOT_FOUND when absent. */
  getVolume(id: string, signal?: AbortSignal): Promise<CinderVolume>;
  /** True when the next getVolume(id) is answered by a paced list shared with other readers (cinder-batch.ts). */
  readPaced?(id: string): boolean;
  /**
   * For a paced reader: the volume from the first shared list in which `stop` holds (`stop` sees every list's
   * copy), or one plain read when the lists no longer show it. Rejects as getVolume.
   */
  watchVolume?(id: string, stop: (v: CinderVolume) => boolean, signal?: AbortSignal): Promise<CinderVolume>;
  /** GET /volumes/detail, one page. */
  listVolumes(req?: ListVolumesRequest, signal?: AbortSignal): Promise<Page<CinderVolume>>;
  /** Every volume whose name is exactly `name` (all pages); empty when none. */
  listVolumesByName(name: string, signal?: AbortSignal): Promise<CinderVolume[]>;
  /** DELETE /volumes/{id}; NOT_FOUND when already gone. */
  deleteVolume(id: string, signal?: AbortSignal): Promise<void>;
  /** `os-extend` to `newSizeGiB`; online (in-use) with 3.42. */
  extendVolume(id: string, newSizeGiB: number, signal?: AbortSignal): Promise<void>;
  /** `os-retype` to a volume type (name or id); answers at once, the volume `retyping` until Cinder is done. */
  retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: RetypeMigrationPolicy,
    signal?: AbortSignal,
  ): Promise<void>;
  /** POST /volumes/{id}/metadata: merges keys, returns the full metadata. */
  updateVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Record<string, string>>;
  createSnapshot(req: CreateSnapshotRequest, signal?: AbortSignal): Promise<CinderSnapshot>;
  getSnapshot(id: string, signal?: AbortSignal): Promise<CinderSnapshot>;
  listSnapshots(req?: ListSnapshotsRequest, signal?: AbortSignal): Promise<Page<CinderSnapshot>>;
  deleteSnapshot(id: string, signal?: AbortSignal): Promise<void>;
  createBackup(req: CreateBackupRequest, signal?: AbortSignal): Promise<CinderBackup>;
  getBackup(id: string, signal?: AbortSignal): Promise<CinderBackup>;
  listBackups(req?: ListBackupsRequest, signal?: AbortSignal): Promise<Page<CinderBackup>>;
  deleteBackup(id: string, signal?: AbortSignal): Promise<void>;
  getAbsoluteLimits(signal?: AbortSignal): Promise<CinderAbsoluteLimits>;
  /**
   * The newest user message Cinder keeps for this volume (GET /messages?resource_uuid=, 3.3): why it went
   * to `error`, e.g. "No valid backend was found". Undefined when there is none, or the cloud has no
   * messages API (404, or 406 for a microversion it does not speak, or no microversions sent at all).
   */
  volumeFaultMessage(id: string, signal?: AbortSignal): Promise<string | undefined>;
  /** `os-unreserve`: hands back a volume left `reserved`/`attaching` by an attach that died half-way. */
  unreserveVolume(id: string, signal?: AbortSignal): Promise<void>;
  /**
   * `os-detach` of one attachment: drops Cinder's record of an attachment Nova no longer has (its server was
   * deleted, or Nova lost the mapping), so the volume becomes available again. Never touches a hypervisor.
   */
  forgetAttachment(id: string, attachmentId: string | undefined, signal?: AbortSignal): Promise<void>;
}

export interface CinderDeps {
  keystone: ServiceAuth;
  http: HttpClient;
  /** `[BlockStorage] ignore-volume-microversion`: send no microversion header (old clouds). */
  ignoreVolumeMicroversion?: boolean;
  /** Default CINDER_BASE_MICROVERSION. */
  baseMicroversion?: string;
  /** Catalog types tried in order; default VOLUME_SERVICE_TYPES. */
  serviceTypes?: readonly string[];
}

interface Link {
  rel: string;
  href: string;
}

export class CinderClient implements CinderApi {
  private readonly keystone: ServiceAuth;
  private readonly http: HttpClient;
  private readonly ignoreMicroversion: boolean;
  private readonly baseMicroversion: string;
  private readonly serviceTypes: readonly string[];
  private readonly reads: VolumeReadBatcher<CinderVolume>;

  constructor(deps: CinderDeps) {
    this.keystone = deps.keystone;
    this.http = deps.http;
    this.ignoreMicroversion = deps.ignoreVolumeMicroversion ?? false;
    this.baseMicroversion = deps.baseMicroversion ?? CINDER_BASE_MICROVERSION;
    this.serviceTypes = deps.serviceTypes ?? VOLUME_SERVICE_TYPES;
    this.reads = new VolumeReadBatcher({
      get: (id, signal) => this.getOneVolume(id, signal),
      getByName: (name, signal) => this.filterVolumesByName(name, signal),
      list: async () => {
        const page = await this.listVolumes();
        return { items: page.items, complete: page.nextMarker === undefined };
      },
      absent: (id) => volumeAbsent(id),
    });
  }

  async createVolume(req: CreateVolumeRequest, signal?: AbortSignal): Promise<CinderVolume> {
    const volume = compact({
      name: req.name,
      size: req.size,
      description: req.description,
      volume_type: req.volumeType,
      availability_zone: req.availabilityZone,
      snapshot_id: req.snapshotId,
      source_volid: req.sourceVolumeId,
      backup_id: req.backupId,
      metadata: req.metadata,
    });
    const body: Record<string, unknown> = { volume };
    if (req.schedulerHints) body['OS-SCH-HNT:scheduler_hints'] = req.schedulerHints;
    const mv = req.backupId ? CINDER_MICROVERSION_BACKUP : undefined;
    return (
      await this.call<{ volume: CinderVolume }>('volume.create', 'POST', '/volumes', { body, signal, microversion: mv })
    ).volume;
  }

  /** GET /volumes/{id}, or (while dozens of volumes are read at once) a share of one list: see cinder-batch.ts. */
  getVolume(id: string, signal?: AbortSignal): Promise<CinderVolume> {
    return this.reads.read(id, signal);
  }

  /** Whether the next getVolume(id) waits for a paced, shared list, so a poller need not sleep first. */
  readPaced(id: string): boolean {
    return this.reads.paced(id);
  }

  /** The volume once `stop` holds for it in a shared list, or one plain read: see VolumeReadBatcher.watch. */
  watchVolume(id: string, stop: (v: CinderVolume) => boolean, signal?: AbortSignal): Promise<CinderVolume> {
    return this.reads.watch(id, stop, signal);
  }

  private async getOneVolume(id: string, signal?: AbortSignal): Promise<CinderVolume> {
    return (await this.call<{ volume: CinderVolume }>('volume.get', 'GET', `/volumes/${enc(id)}`, { signal })).volume;
  }

  async listVolumes(req: ListVolumesRequest = {}, signal?: AbortSignal): Promise<Page<CinderVolume>> {
    const params = { limit: req.limit, marker: req.marker, name: req.name };
    const mv = req.name !== undefined ? CINDER_MICROVERSION_LIST_BY_NAME : undefined;
    const data = await markerChecked(
      req.marker,
      this.call<{ volumes: CinderVolume[]; volumes_links?: Link[] }>('volume.list', 'GET', '/volumes/detail', {
        params,
        signal,
        microversion: mv,
      }),
    );
    return { items: data.volumes, nextMarker: nextMarker(data.volumes_links) };
  }

  /** Cinder's name filter, or (while dozens of volumes are read at once) a share of one list: see cinder-batch.ts. */
  listVolumesByName(name: string, signal?: AbortSignal): Promise<CinderVolume[]> {
    return this.reads.readByName(name, signal);
  }

  private async filterVolumesByName(name: string, signal?: AbortSignal): Promise<CinderVolume[]> {
    const out: CinderVolume[] = [];
    let marker: string | undefined;
    do {
      const page = await this.listVolumes({ name, limit: LIST_BY_NAME_PAGE, marker }, signal);
      // The name filter is exact in Cinder, but a cloud without 3.34 may ignore it; filter again.
      out.push(...page.items.filter((v) => v.name === name));
      marker = page.nextMarker;
    } while (marker);
    return out;
  }

  async deleteVolume(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('volume.delete', 'DELETE', `/volumes/${enc(id)}`, { signal });
  }

  async extendVolume(id: string, newSizeGiB: number, signal?: AbortSignal): Promise<void> {
    const body = { 'os-extend': { new_size: newSizeGiB } };
    await this.call('volume.extend', 'POST', `/volumes/${enc(id)}/action`, {
      body,
      signal,
      microversion: CINDER_MICROVERSION_EXTEND_IN_USE,
    });
  }

  async retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: RetypeMigrationPolicy,
    signal?: AbortSignal,
  ): Promise<void> {
    const body = { 'os-retype': { new_type: newType, migration_policy: migrationPolicy } };
    await this.call('volume.retype', 'POST', `/volumes/${enc(id)}/action`, { body, signal });
  }

  async updateVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Record<string, string>> {
    const data = await this.call<{ metadata: Record<string, string> }>(
      'volume.update-metadata',
      'POST',
      `/volumes/${enc(id)}/metadata`,
      { body: { metadata }, signal },
    );
    return data.metadata;
  }

  async createSnapshot(req: CreateSnapshotRequest, signal?: AbortSignal): Promise<CinderSnapshot> {
    const snapshot = compact({
      volume_id: req.volumeId,
      name: req.name,
      description: req.description,
      force: req.force,
      metadata: req.metadata,
    });
    return (
      await this.call<{ snapshot: CinderSnapshot }>('snapshot.create', 'POST', '/snapshots', {
        body: { snapshot },
        signal,
      })
    ).snapshot;
  }

  async getSnapshot(id: string, signal?: AbortSignal): Promise<CinderSnapshot> {
    return (await this.call<{ snapshot: CinderSnapshot }>('snapshot.get', 'GET', `/snapshots/${enc(id)}`, { signal }))
      .snapshot;
  }

  async listSnapshots(req: ListSnapshotsRequest = {}, signal?: AbortSignal): Promise<Page<CinderSnapshot>> {
    const params = {
      limit: req.limit,
      marker: req.marker,
      volume_id: req.volumeId,
      name: req.name,
      status: req.status,
    };
    const data = await markerChecked(
      req.marker,
      this.call<{ snapshots: CinderSnapshot[]; snapshots_links?: Link[] }>(
        'snapshot.list',
        'GET',
        '/snapshots/detail',
        { params, signal },
      ),
    );
    return { items: data.snapshots, nextMarker: nextMarker(data.snapshots_links) };
  }

  async deleteSnapshot(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('snapshot.delete', 'DELETE', `/snapshots/${enc(id)}`, { signal });
  }

  async createBackup(req: CreateBackupRequest, signal?: AbortSignal): Promise<CinderBackup> {
    const backup = compact({
      volume_id: req.volumeId,
      snapshot_id: req.snapshotId,
      name: req.name,
      description: req.description,
      force: req.force,
      incremental: req.incremental,
      container: req.container,
      // metadata needs 3.43 and availability_zone 3.51: an old cloud (ignoreVolumeMicroversion) rejects both.
      availability_zone: this.ignoreMicroversion ? undefined : req.availabilityZone,
      metadata: this.ignoreMicroversion ? undefined : req.metadata,
    });
    const data = await this.call<{ backup: CinderBackup }>('backup.create', 'POST', '/backups', {
      body: { backup },
      signal,
      microversion: CINDER_MICROVERSION_BACKUP,
    });
    return data.backup;
  }

  async getBackup(id: string, signal?: AbortSignal): Promise<CinderBackup> {
    return (
      await this.call<{ backup: CinderBackup }>('backup.get', 'GET', `/backups/${enc(id)}`, {
        signal,
        microversion: CINDER_MICROVERSION_BACKUP,
      })
    ).backup;
  }

  async listBackups(req: ListBackupsRequest = {}, signal?: AbortSignal): Promise<Page<CinderBackup>> {
    const params = {
      limit: req.limit,
      marker: req.marker,
      volume_id: req.volumeId,
      name: req.name,
      status: req.status,
    };
    const data = await markerChecked(
      req.marker,
      this.call<{ backups: CinderBackup[]; backups_links?: Link[] }>('backup.list', 'GET', '/backups/detail', {
        params,
        signal,
        microversion: CINDER_MICROVERSION_BACKUP,
      }),
    );
    return { items: data.backups, nextMarker: nextMarker(data.backups_links) };
  }

  async deleteBackup(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('backup.delete', 'DELETE', `/backups/${enc(id)}`, { signal });
  }

  async getAbsoluteLimits(signal?: AbortSignal): Promise<CinderAbsoluteLimits> {
    const data = await this.call<{ limits: { absolute: CinderAbsoluteLimits } }>('limits.get', 'GET', '/limits', {
      signal,
    });
    return data.limits.absolute;
  }

  /** See CinderQuotaApi (cinder-limits.ts). The project is the token's, else the one in the endpoint URL. */
  async getQuotaUsage(signal?: AbortSignal): Promise<CinderQuotaSetUsage> {
    const project =
      (await this.keystone.projectId?.(signal)) ??
      projectIdOfEndpoint(await this.keystone.endpoint(this.serviceTypes, signal));
    if (!project) throw new Error('cannot tell the project of this Cinder endpoint for its quota set');
    const data = await this.call<{ quota_set: CinderQuotaSetUsage }>(
      'quota-set.get',
      'GET',
      `/os-quota-sets/${enc(project)}`,
      { params: { usage: true }, signal },
    );
    return data.quota_set;
  }

  async volumeFaultMessage(id: string, signal?: AbortSignal): Promise<string | undefined> {
    // Without microversions Cinder speaks 3.0, which has no /messages: do not ask.
    if (this.ignoreMicroversion) return undefined;
    let data: { messages?: CinderMessage[] };
    try {
      data = await this.call<{ messages?: CinderMessage[] }>('message.list', 'GET', '/messages', {
        params: { resource_uuid: id },
        signal,
        microversion: CINDER_MICROVERSION_MESSAGES,
      });
    } catch (e) {
      if (isOpenStackError(e, 'not-found') || (isOpenStackError(e) && e.status === 406)) return undefined;
      throw e;
    }
    const mine = (data.messages ?? []).filter((m) => m.user_message && (!m.resource_uuid || m.resource_uuid === id));
    // Newest first; Cinder's default sort is created_at desc, but do not rely on it.
    mine.sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''));
    return mine[0]?.user_message;
  }

  async unreserveVolume(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('volume.unreserve', 'POST', `/volumes/${enc(id)}/action`, { body: { 'os-unreserve': {} }, signal });
  }

  async forgetAttachment(id: string, attachmentId: string | undefined, signal?: AbortSignal): Promise<void> {
    // Without an id Cinder detaches the only attachment (and refuses when there are several).
    const body = { 'os-detach': attachmentId ? { attachment_id: attachmentId } : {} };
    await this.call('volume.detach', 'POST', `/volumes/${enc(id)}/action`, { body, signal });
  }

  private async call<T = unknown>(
    operation: string,
    method: HttpMethod,
    path: string,
    o: {
      body?: unknown;
      params?: Record<string, string | number | boolean | undefined>;
      signal?: AbortSignal;
      microversion?: string;
    },
  ): Promise<T> {
    const base = await this.keystone.endpoint(this.serviceTypes, o.signal);
    const headers: Record<string, string> = {};
    if (!this.ignoreMicroversion)
      headers['OpenStack-API-Version'] = `volume ${o.microversion ?? this.baseMicroversion}`;
    const res = await this.http.request<T>({
      service: 'cinder',
      operation,
      method,
      url: base + path,
      params: o.params && compact(o.params),
      headers,
      body: o.body,
      signal: o.signal,
      auth: this.keystone,
    });
    return res.data;
  }
}

const enc = encodeURIComponent;

/**
 * A list call whose `marker` Cinder does not know. Cinder answers that with the item's 404 ("Volume <marker>
 * could not be found."; observed on openstack-loopback (Cinder 21/Nova 26)), but the collection exists: the
 * request is what is wrong, so it becomes kind 'bad-request' (INVALID_ARGUMENT) naming the marker.
 */
async function markerChecked<T>(marker: string | undefined, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (marker === undefined || !isOpenStackError(e, 'not-found')) throw e;
    const { service, operation, method, path, status, requestId } = e;
    const serviceMessage = `marker ${marker} is unknown: ${e.serviceMessage ?? 'not found'}`;
    throw new OpenStackError({
      service,
      operation,
      method,
      path,
      status,
      requestId,
      serviceMessage,
      kind: 'bad-request',
      cause: e,
    });
  }
}

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The `marker` of the `rel: next` link, which is how Cinder says there is another page. */
function nextMarker(links?: Link[]): string | undefined {
  const next = links?.find((l) => l.rel === 'next');
  if (!next) return undefined;
  try {
    return new URL(next.href, 'http://placeholder').searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}

/** The 404 a GET of volume `id` answers, for a volume a complete list proved deleted (cinder-batch.ts). */
function volumeAbsent(id: string): OpenStackError {
  return new OpenStackError({
    service: 'cinder',
    operation: 'volume.get',
    method: 'GET',
    path: `/volumes/${id}`,
    status: 404,
    kind: 'not-found',
    serviceMessage: `Volume ${id} could not be found (missing from a complete volume list).`,
  });
}
