/**
 * CinderBlockBackend: the ControllerBackend of one OpenStack cloud, composed from the block-* operation
 * modules over that cloud's Cinder and Nova clients. The composition root builds one per cloud; the CSI
 * controller handlers choose among them by the `cloud` secret and never see Cinder or Nova themselves.
 */
import type { Logger } from '../log';
import type { CloudClients } from '../openstack/clients';
import type {
  ControllerBackend,
  CreateSnapshotSpec,
  CreateVolumeSpec,
  CreatedVolume,
  ModifyVolumeSpec,
  PageOf,
  PageRequest,
  Published,
  SnapshotInfo,
  VolumeInfo,
} from './block-types';
import type { BlockContext } from './block-context';
import type { PollOptions } from './volume-wait';
import { PendingCreates } from './pending-creates';
import * as volumes from './block-volumes';
import * as attach from './block-attach';
import * as snapshots from './block-snapshots';
import { modifyVolume } from './block-modify';
import { blockCapacity, type BlockCapacity, type CapacityQuery } from './block-capacity';
import type { CinderApi } from '../openstack/cinder';
import type { CinderQuotaApi } from '../openstack/cinder-limits';

export interface CinderBlockBackendDeps {
  clients: Pick<CloudClients, 'name' | 'cinder' | 'nova'>;
  log: Logger;
  /** Poll tunables of every status wait; defaults in volume-wait.ts. */
  wait?: PollOptions;
}

export class CinderBlockBackend implements ControllerBackend {
  /** The cloud.conf section this backend talks to ('' for `[Global]`). */
  readonly cloud: string;
  private readonly c: BlockContext;

  constructor(deps: CinderBlockBackendDeps) {
    this.cloud = deps.clients.name;
    this.c = {
      cinder: deps.clients.cinder,
      nova: deps.clients.nova,
      log: deps.log.child({ backend: 'cinder', cloud: deps.clients.name }),
      wait: deps.wait ?? {},
      creates: new PendingCreates(),
    };
  }

  getCapacity(q: CapacityQuery, signal: AbortSignal): Promise<BlockCapacity> {
    // The real client serves quota sets; a client without them (a test double) falls back to the limits.
    return blockCapacity(this.c.cinder as CinderApi & Partial<CinderQuotaApi>, q, this.c.log, signal);
  }

  createVolume(spec: CreateVolumeSpec, signal: AbortSignal): Promise<CreatedVolume> {
    return volumes.createVolume(this.c, spec, signal);
  }

  deleteVolume(id: string, signal: AbortSignal): Promise<void> {
    return volumes.deleteVolume(this.c, id, signal);
  }

  getVolume(id: string, signal: AbortSignal, opts: { checkNodes?: boolean } = {}): Promise<VolumeInfo | undefined> {
    return volumes.getVolume(this.c, id, signal, opts.checkNodes);
  }

  listVolumes(page: PageRequest, signal: AbortSignal): Promise<PageOf<VolumeInfo>> {
    return volumes.listVolumes(this.c, page, signal);
  }

  publishVolume(volumeId: string, nodeId: string, signal: AbortSignal, readonly = false): Promise<Published> {
    return attach.publishVolume(this.c, volumeId, nodeId, signal, readonly);
  }

  unpublishVolume(volumeId: string, nodeId: string, signal: AbortSignal): Promise<void> {
    return attach.unpublishVolume(this.c, volumeId, nodeId, signal);
  }

  expandVolume(id: string, sizeGiB: number, signal: AbortSignal): Promise<{ sizeGiB: number }> {
    return volumes.expandVolume(this.c, id, sizeGiB, signal);
  }

  modifyVolume(id: string, spec: ModifyVolumeSpec, signal: AbortSignal): Promise<void> {
    return modifyVolume(this.c, id, spec, signal);
  }

  createSnapshot(spec: CreateSnapshotSpec, signal: AbortSignal): Promise<SnapshotInfo> {
    return snapshots.createSnapshot(this.c, spec, signal);
  }

  deleteSnapshot(id: string, signal: AbortSignal): Promise<void> {
    return snapshots.deleteSnapshot(this.c, id, signal);
  }

  getSnapshot(id: string, signal: AbortSignal): Promise<SnapshotInfo | undefined> {
    return snapshots.getSnapshot(this.c, id, signal);
  }

  listSnapshots(q: PageRequest & { sourceVolumeId?: string }, signal: AbortSignal): Promise<PageOf<SnapshotInfo>> {
    return snapshots.listSnapshots(this.c, q, signal);
  }
}
