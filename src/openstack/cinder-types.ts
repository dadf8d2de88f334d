/**
 * Shapes of the Cinder (Block Storage v3) resources and requests the driver uses, with the API's own field
 * names. Only the fields we read are typed; Cinder sends more, and they are kept on the objects untouched.
 */

/** Volume statuses (block-storage API reference, "Volumes (volumes)" status table). */
export type CinderVolumeStatus =
  | 'creating'
  | 'available'
  | 'reserved'
  | 'attaching'
  | 'detaching'
  | 'in-use'
  | 'maintenance'
  | 'deleting'
  | 'awaiting-transfer'
  | 'error'
  | 'error_deleting'
  | 'backing-up'
  | 'restoring-backup'
  | 'error_backing-up'
  | 'error_restoring'
  | 'error_extending'
  | 'downloading'
  | 'uploading'
  | 'retyping'
  | 'extending';

export type CinderSnapshotStatus =
  | 'creating'
  | 'available'
  | 'backing-up'
  | 'deleting'
  | 'error'
  | 'deleted'
  | 'unmanaging'
  | 'restoring'
  | 'error_deleting';

export type CinderBackupStatus =
  'creating' | 'available' | 'deleting' | 'error' | 'restoring' | 'error_restoring' | 'error_deleting';

export interface CinderAttachment {
  id?: string;
  attachment_id?: string;
  server_id: string;
  volume_id?: string;
  device?: string;
  host_name?: string | null;
  attached_at?: string;
}

export interface CinderVolume {
  id: string;
  name: string | null;
  status: CinderVolumeStatus;
  /** GiB. */
  size: number;
  availability_zone?: string;
  volume_type?: string | null;
  snapshot_id?: string | null;
  source_volid?: string | null;
  backup_id?: string | null;
  multiattach?: boolean;
  bootable?: string;
  encrypted?: boolean;
  metadata: Record<string, string>;
  attachments: CinderAttachment[];
  created_at?: string;
  description?: string | null;
}

export interface CinderSnapshot {
  id: string;
  name: string | null;
  status: CinderSnapshotStatus;
  volume_id: string;
  /** GiB. */
  size: number;
  created_at: string;
  metadata?: Record<string, string>;
  description?: string | null;
}

export interface CinderBackup {
  id: string;
  name: string | null;
  status: CinderBackupStatus;
  volume_id?: string;
  snapshot_id?: string | null;
  /** GiB. */
  size?: number;
  availability_zone?: string | null;
  created_at?: string;
  metadata?: Record<string, string>;
  fail_reason?: string | null;
  is_incremental?: boolean;
}

/** A user message (GET /messages, 3.3+): Cinder's explanation of an asynchronous failure. */
export interface CinderMessage {
  id: string;
  user_message: string;
  resource_uuid?: string;
  resource_type?: string;
  event_id?: string;
  message_level?: string;
  created_at?: string;
}

/** GET /limits `limits.absolute`; -1 means unlimited. */
export interface CinderAbsoluteLimits {
  maxTotalVolumes: number;
  maxTotalVolumeGigabytes: number;
  maxTotalSnapshots: number;
  maxTotalBackups?: number;
  maxTotalBackupGigabytes?: number;
  totalVolumesUsed: number;
  totalGigabytesUsed: number;
  totalSnapshotsUsed: number;
  totalBackupsUsed?: number;
  totalBackupGigabytesUsed?: number;
}

export interface CreateVolumeRequest {
  name: string;
  /** GiB. */
  size: number;
  description?: string;
  volumeType?: string;
  availabilityZone?: string;
  snapshotId?: string;
  sourceVolumeId?: string;
  /** Sent with microversion 3.51 (create from backup needs ≥ 3.47). */
  backupId?: string;
  metadata?: Record<string, string>;
  /** `OS-SCH-HNT:scheduler_hints`, e.g. `{ same_host: [id] }`. */
  schedulerHints?: Record<string, unknown>;
}

export interface CreateSnapshotRequest {
  volumeId: string;
  name: string;
  description?: string;
  /** Snapshot an in-use volume (the reference always sends true). */
  force?: boolean;
  metadata?: Record<string, string>;
}

export interface CreateBackupRequest {
  volumeId: string;
  /** Back up this snapshot of `volumeId` instead of the live volume. */
  snapshotId?: string;
  name: string;
  description?: string;
  /** Backup of an in-use volume. */
  force?: boolean;
  incremental?: boolean;
  container?: string;
  availabilityZone?: string;
  metadata?: Record<string, string>;
}

/** Pagination: `limit` items from after `marker`. */
export interface PageRequest {
  limit?: number;
  marker?: string;
}

export interface Page<T> {
  items: T[];
  /** The marker for the next page; absent on the last page. */
  nextMarker?: string;
}

export interface ListVolumesRequest extends PageRequest {
  name?: string;
}

export interface ListSnapshotsRequest extends PageRequest {
  volumeId?: string;
  name?: string;
  status?: CinderSnapshotStatus;
}

export interface ListBackupsRequest extends PageRequest {
  volumeId?: string;
  name?: string;
  status?: CinderBackupStatus;
}
