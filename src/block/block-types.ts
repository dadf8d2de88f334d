/**
 * The seam between the CSI controller handlers and a storage backend: what a handler may ask (create, delete,
 * publish, expand, snapshot...) in backend-neutral terms, and what it gets back. The Cinder implementation is
 * CinderBlockBackend (block-backend.ts); an object-storage backend will implement the same interface.
 */

import type { BlockCapacity, CapacityQuery } from './block-capacity';

/** Where a new volume's data comes from. `snapshot` ids that are Cinder backups are restored from the backup. */
export type VolumeSource = { kind: 'snapshot'; id: string } | { kind: 'volume'; id: string };

export interface CreateVolumeSpec {
  /** The CO's name for the volume; the idempotency key. */
  name: string;
  /** Whole GiB. */
  sizeGiB: number;
  /** False when the CO gave no capacity_range: a larger source then sets the size instead of being refused. */
  sizeExplicit: boolean;
  /** Largest acceptable size in GiB (limit_bytes), when the CO set one. */
  limitGiB?: number;
  volumeType?: string;
  availabilityZone?: string;
  metadata: Record<string, string>;
  source?: VolumeSource;
  /** Volume names or ids to place the volume with / away from (Cinder same_host / different_host hints). */
  affinity?: string[];
  antiAffinity?: string[];
  /** The multi-node access mode asked for, if any: the volume must then be multiattach-capable. */
  multiNodeMode?: string;
}

/** What ControllerModifyVolume changes; an absent field stays as it is. */
export interface ModifyVolumeSpec {
  /** The volume type (tier) to move the volume to. */
  volumeType?: string;
  /** Whether the backend may move the data to other storage when the new type needs it. */
  allowMigration: boolean;
}

/** A volume as the handlers see it. */
export interface VolumeInfo {
  id: string;
  name: string;
  sizeGiB: number;
  /** Availability zone the backend placed it in. */
  zone?: string;
  status: string;
  /** Whether several nodes may attach it at once. */
  multiattach: boolean;
  /** Node (server) ids it is attached to. */
  publishedNodeIds: string[];
  source?: VolumeSource;
  /** Set when the volume is unhealthy: why. */
  abnormal?: string;
}

export interface CreatedVolume {
  volume: VolumeInfo;
  /** Keys for volume_context (resizeRequired, resolved scheduler hints). */
  context: Record<string, string>;
}

export interface Published {
  /** The device path the hypervisor reported; the node does not trust it (reference issue #779). */
  devicePath?: string;
}

export interface SnapshotInfo {
  id: string;
  sourceVolumeId: string;
  sizeGiB: number;
  /** Epoch milliseconds. */
  createdAt: number;
  readyToUse: boolean;
}

export interface CreateSnapshotSpec {
  name: string;
  sourceVolumeId: string;
  /** `snapshot` (default) or `backup` (a Cinder backup made from a temporary snapshot). */
  kind: 'snapshot' | 'backup';
  /** Snapshot an in-use volume. */
  force: boolean;
  /** Backup availability zone. */
  availabilityZone?: string;
  metadata: Record<string, string>;
}

export interface PageRequest {
  /** 0 or absent: everything. */
  limit?: number;
  marker?: string;
}

export interface PageOf<T> {
  items: T[];
  nextMarker?: string;
}

/**
 * What a controller backend does. Errors are CodedErrors whose code is already the one the RPC answers
 * with; each method's doc says what happens when the thing is absent or already done. Every method stops
 * and answers DEADLINE_EXCEEDED when `signal` fires.
 */
export interface ControllerBackend {
  /** Room left for new volumes (GetCapacity); absent for a backend with no quota to read (object). */
  getCapacity?(q: CapacityQuery, signal: AbortSignal): Promise<BlockCapacity>;
  /** Creates or finds (by name) a volume and waits until it is usable. ALREADY_EXISTS when the name is taken
   *  with another size or source; RESOURCE_EXHAUSTED on quota; NOT_FOUND when the source is absent. */
  createVolume(spec: CreateVolumeSpec, signal: AbortSignal): Promise<CreatedVolume>;
  /** Deletes and waits for it to be gone. Absent → success. Attached → FAILED_PRECONDITION. */
  deleteVolume(id: string, signal: AbortSignal): Promise<void>;
  /** The volume, or undefined when absent. `checkNodes` also asks whether attached nodes still exist. */
  getVolume(id: string, signal: AbortSignal, opts?: { checkNodes?: boolean }): Promise<VolumeInfo | undefined>;
  /** One page of volumes. A marker the backend does not know → ABORTED. */
  listVolumes(page: PageRequest, signal: AbortSignal): Promise<PageOf<VolumeInfo>>;
  /** Attaches to a node and waits. Already attached there → success at once. Volume or node absent → NOT_FOUND;
   *  attached elsewhere (not multiattach) or in error → FAILED_PRECONDITION; node full → RESOURCE_EXHAUSTED;
   *  already published there with the other `readonly` → ALREADY_EXISTS. */
  publishVolume(volumeId: string, nodeId: string, signal: AbortSignal, readonly?: boolean): Promise<Published>;
  /** Detaches from a node ('' = every node) and waits. Volume or node absent, or not attached → success. */
  unpublishVolume(volumeId: string, nodeId: string, signal: AbortSignal): Promise<void>;
  /** Grows to at least `sizeGiB` and waits; returns the size now. Absent → NOT_FOUND. Already large enough → success. */
  expandVolume(id: string, sizeGiB: number, signal: AbortSignal): Promise<{ sizeGiB: number }>;
  /** Applies mutable parameters and waits until they hold. Absent → NOT_FOUND; already so → success at once. A backend
   *  without it (object volumes) has no mutable parameters: the handler refuses any with INVALID_ARGUMENT. */
  modifyVolume?(id: string, spec: ModifyVolumeSpec, signal: AbortSignal): Promise<void>;
  /** Creates or finds (by name) a snapshot and waits until it is ready. Same name, other source → ALREADY_EXISTS. */
  createSnapshot(spec: CreateSnapshotSpec, signal: AbortSignal): Promise<SnapshotInfo>;
  /** Deletes a snapshot or backup. Absent → success. */
  deleteSnapshot(id: string, signal: AbortSignal): Promise<void>;
  /** The snapshot (or backup), or undefined when absent. */
  getSnapshot(id: string, signal: AbortSignal): Promise<SnapshotInfo | undefined>;
  /** One page of ready snapshots, optionally of one volume. A marker the backend does not know → ABORTED. */
  listSnapshots(q: PageRequest & { sourceVolumeId?: string }, signal: AbortSignal): Promise<PageOf<SnapshotInfo>>;
}
