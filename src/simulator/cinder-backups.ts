/**
 * Cinder backups: create from a volume (an in-use one needs `force`) or from one of its snapshots, show,
 * list/detail, delete. While a backup is made its source is `backing-up` and returns to its previous
 * status afterwards, as in real Cinder.
 */
import type { SimEnv } from './env';
import {
  atLeast,
  badRequest,
  boolish,
  notFound,
  objectBody,
  optString,
  optStringMap,
  type Reply,
  type RequestContext,
} from './http-util';
import { backupSummary, backupView, paginate, rejectUnknownFilters } from './cinder-views';
import { findVolume } from './cinder-volumes';
import { randomUUID, type BackupRecord } from './state';

function findBackup(env: SimEnv, id: string): BackupRecord {
  const b = env.state.backups.get(id);
  if (!b) throw notFound(`Backup ${id} could not be found.`);
  return b;
}

export function createBackup(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const body = objectBody(ctx, 'backup');
  const volumeId = optString(body, 'volume_id');
  if (!volumeId)
    throw badRequest("Invalid input for field/attribute backup. Value: {}. 'volume_id' is a required property");
  const v = findVolume(env, volumeId);
  const snapshotId = optString(body, 'snapshot_id');
  const snap = snapshotId ? state.snapshots.get(snapshotId) : undefined;
  if (snapshotId) {
    if (!snap) throw notFound(`Snapshot ${snapshotId} could not be found.`);
    if (snap.volumeId !== v.id)
      throw badRequest(`Invalid snapshot: Snapshot ${snapshotId} is not a snapshot of volume ${v.id}.`);
    if (snap.status !== 'available')
      throw badRequest(
        `Invalid snapshot: Snapshot to be backed up must be available, but the current status is "${snap.status}".`,
      );
  } else {
    if (v.status !== 'available' && v.status !== 'in-use') {
      throw badRequest(
        `Invalid volume: Volume to be backed up must be available or in-use, but the current status is "${v.status}".`,
      );
    }
    if (v.status === 'in-use' && !boolish(body.force))
      throw badRequest('Invalid volume: Backing up an in-use volume must use the force flag.');
  }
  const now = Date.now();
  const b: BackupRecord = {
    id: randomUUID(),
    seq: state.nextSeq(),
    name: optString(body, 'name') ?? null,
    description: optString(body, 'description') ?? null,
    status: 'creating',
    size: v.size,
    volumeId: v.id,
    snapshotId: snapshotId ?? null,
    az: v.az,
    container: optString(body, 'container') ?? null,
    incremental: boolish(body.incremental),
    metadata: atLeast(ctx, '3.43') ? optStringMap(body, 'metadata') : {},
    createdAt: now,
    updatedAt: now,
    statusHistory: [{ status: 'creating', at: now }],
  };
  state.backups.set(b.id, b);
  const restore = snap ? snap.status : v.status;
  if (snap) state.setSnapshotStatus(snap, 'backing-up');
  else state.setVolumeStatus(v, 'backing-up');
  state.after('backupCreate', () => {
    if (snap && snap.status === 'backing-up') state.setSnapshotStatus(snap, restore as typeof snap.status);
    if (!snap && v.status === 'backing-up') state.setVolumeStatus(v, restore as typeof v.status);
    if (state.backups.get(b.id) === b && b.status === 'creating') state.setBackupStatus(b, 'available');
  });
  return { status: 202, body: { backup: backupSummary(ctx, b) } };
}

export function showBackup(env: SimEnv, ctx: RequestContext): Reply {
  return { status: 200, body: { backup: backupView(ctx, findBackup(env, ctx.params.id)) } };
}

export function listBackups(env: SimEnv, ctx: RequestContext, detail: boolean): Reply {
  rejectUnknownFilters(ctx, 'backup');
  const q = ctx.query;
  const [volumeId, name, status] = [q.get('volume_id'), q.get('name'), q.get('status')];
  const items = [...env.state.backups.values()].filter(
    (b) =>
      (volumeId === null || b.volumeId === volumeId) &&
      (name === null || b.name === name) &&
      (status === null || b.status === status),
  );
  const { page, links } = paginate(ctx, items, detail ? 'backups/detail' : 'backups');
  const body: Record<string, unknown> = {
    backups: page.map((b) => (detail ? backupView(ctx, b) : backupSummary(ctx, b))),
  };
  if (links) body.backups_links = links;
  return { status: 200, body };
}

export function deleteBackup(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const b = findBackup(env, ctx.params.id);
  if (b.status !== 'available' && b.status !== 'error')
    throw badRequest('Invalid backup: Backup status must be available or error');
  state.setBackupStatus(b, 'deleting');
  state.after('backupDelete', () => {
    if (state.backups.get(b.id) === b && b.status === 'deleting') state.backups.delete(b.id);
  });
  return { status: 202 };
}
