/**
 * Nova (Compute v2.1) client for what ControllerPublish/Unpublish need: the server and its volume
 * attachments. Multiattach volumes are attached with microversion 2.60, as in the reference; everything
 * else uses the base API. Nova's own error message is kept in the OpenStackError.
 */
import { raceAbort } from './abort';
import { type HttpClient, type HttpMethod } from './http';
import { COMPUTE_SERVICE_TYPES, type ServiceAuth } from './keystone';

/** Attaching a multiattach volume to a second server needs 2.60 (Nova API reference, os-volume_attachments). */
export const NOVA_MICROVERSION_MULTIATTACH = '2.60';

export interface NovaServer {
  id: string;
  name: string;
  /** ACTIVE, SHUTOFF, ERROR… */
  status: string;
  'OS-EXT-AZ:availability_zone'?: string;
  'os-extended-volumes:volumes_attached'?: { id: string }[];
  metadata?: Record<string, string>;
}

export interface NovaVolumeAttachment {
  id: string;
  serverId: string;
  volumeId: string;
  /** e.g. /dev/vdb; not trusted by the node (reference issue #779), kept for publish_context. */
  device?: string | null;
}

/** What the block backend needs from Nova. Every method rejects with OpenStackError (see errors.ts). */
export interface NovaApi {
  /** GET /servers/{id}; NOT_FOUND when the server is gone. */
  getServer(id: string, signal?: AbortSignal): Promise<NovaServer>;
  /** GET /servers/{id}/os-volume_attachments; NOT_FOUND when the server is gone. */
  listVolumeAttachments(serverId: string, signal?: AbortSignal): Promise<NovaVolumeAttachment[]>;
  /**
   * POST /servers/{id}/os-volume_attachments with `volumeId` only. Nova answers before the attachment
   * completes; callers poll the Cinder volume. 400 (volume not available) → FAILED_PRECONDITION/INVALID_ARGUMENT
   * per errors.ts, 409 (server locked or in a task) → FAILED_PRECONDITION.
   */
  attachVolume(
    serverId: string,
    volumeId: string,
    opts?: { multiattach?: boolean },
    signal?: AbortSignal,
  ): Promise<NovaVolumeAttachment>;
  /** DELETE /servers/{id}/os-volume_attachments/{volumeId}; NOT_FOUND when not attached there. */
  detachVolume(serverId: string, volumeId: string, signal?: AbortSignal): Promise<void>;
}

export interface NovaDeps {
  keystone: ServiceAuth;
  http: HttpClient;
  /** Catalog types tried in order; default COMPUTE_SERVICE_TYPES. */
  serviceTypes?: readonly string[];
}

export class NovaClient implements NovaApi {
  private readonly keystone: ServiceAuth;
  private readonly http: HttpClient;
  private readonly serviceTypes: readonly string[];
  /** GETs of a server in flight, shared by the calls that ask meanwhile (dozens of attaches to one node). */
  private readonly serverReads = new Map<string, Promise<NovaServer>>();

  constructor(deps: NovaDeps) {
    this.keystone = deps.keystone;
    this.http = deps.http;
    this.serviceTypes = deps.serviceTypes ?? COMPUTE_SERVICE_TYPES;
  }

  /**
   * GET /servers/{id}. Callers asking while a GET of the same server is in flight share its answer (it was sent
   * at most one round trip before them, and a server's existence is all they read); each still stops waiting
   * when its own signal fires, without cancelling the GET the others wait for.
   */
  getServer(id: string, signal?: AbortSignal): Promise<NovaServer> {
    let shared = this.serverReads.get(id);
    if (!shared) {
      shared = this.call<{ server: NovaServer }>('server.get', 'GET', `/servers/${enc(id)}`, {}).then((r) => r.server);
      const read = shared;
      this.serverReads.set(id, read);
      // Handled here too: every caller may have stopped waiting before it settles.
      read.catch(() => undefined).finally(() => this.serverReads.get(id) === read && this.serverReads.delete(id));
    }
    return raceAbort(shared, signal);
  }

  async listVolumeAttachments(serverId: string, signal?: AbortSignal): Promise<NovaVolumeAttachment[]> {
    const data = await this.call<{ volumeAttachments: NovaVolumeAttachment[] }>(
      'attachment.list',
      'GET',
      `/servers/${enc(serverId)}/os-volume_attachments`,
      { signal },
    );
    return data.volumeAttachments;
  }

  async attachVolume(
    serverId: string,
    volumeId: string,
    opts: { multiattach?: boolean } = {},
    signal?: AbortSignal,
  ): Promise<NovaVolumeAttachment> {
    const data = await this.call<{ volumeAttachment: NovaVolumeAttachment }>(
      'attachment.create',
      'POST',
      `/servers/${enc(serverId)}/os-volume_attachments`,
      {
        body: { volumeAttachment: { volumeId } },
        signal,
        microversion: opts.multiattach ? NOVA_MICROVERSION_MULTIATTACH : undefined,
      },
    );
    return data.volumeAttachment;
  }

  async detachVolume(serverId: string, volumeId: string, signal?: AbortSignal): Promise<void> {
    await this.call('attachment.delete', 'DELETE', `/servers/${enc(serverId)}/os-volume_attachments/${enc(volumeId)}`, {
      signal,
    });
  }

  private async call<T = unknown>(
    operation: string,
    method: HttpMethod,
    path: string,
    o: { body?: unknown; signal?: AbortSignal; microversion?: string },
  ): Promise<T> {
    const base = await this.keystone.endpoint(this.serviceTypes, o.signal);
    const headers: Record<string, string> = {};
    if (o.microversion) {
      // Nova reads the legacy header and the generic one; older deployments only the legacy one.
      headers['X-OpenStack-Nova-API-Version'] = o.microversion;
      headers['OpenStack-API-Version'] = `compute ${o.microversion}`;
    }
    const res = await this.http.request<T>({
      service: 'nova',
      operation,
      method,
      url: base + path,
      headers,
      body: o.body,
      signal: o.signal,
      auth: this.keystone,
    });
    return res.data;
  }
}

const enc = encodeURIComponent;
