/**
 * Cinder snapshots and backups behind CSI snapshots: create idempotently by name and wait until ready,
 * delete and wait until gone, get and list. A `backup` is made the reference driver's way: snapshot →
 * backup from that snapshot → delete the intermediate snapshot; its id is the CSI snapshot id.
 */
import { aborted, alreadyExists, internal, notFound } from '../errors';
import type { CinderBackup, CinderSnapshot } from '../openstack/cinder';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import type { CreateSnapshotSpec, PageOf, PageRequest, SnapshotInfo } from './block-types';
import { type BlockContext, bestEffort, isErrorStatus, parseCinderTime } from './block-context';
import { pollUntil } from './volume-wait';

/** Description of every snapshot and backup we create. */
export const SNAPSHOT_DESCRIPTION = 'Created by OpenStack Cinder CSI driver';
/** Page size when looking snapshots and backups up by name. */
const BY_NAME_LIMIT = 1000;

type Item = CinderSnapshot | CinderBackup;
const describe = (x: Item | undefined) => (x ? `status ${x.status}` : 'nothing (no answer yet)');

/** See ControllerBackend.createSnapshot. */
export async function createSnapshot(
  c: BlockContext,
  spec: CreateSnapshotSpec,
  signal: AbortSignal,
): Promise<SnapshotInfo> {
  if (spec.kind === 'backup') {
    const backups = (await c.cinder.listBackups({ name: spec.name, limit: BY_NAME_LIMIT }, signal)).items.filter(
      (b) => b.name === spec.name,
    );
    const existing = single(backups, spec, 'backups');
    if (existing) return backupInfo(await waitBackup(c, existing.id, signal), spec.sourceVolumeId);
  }
  const snap = await ensureSnapshot(c, spec, signal);
  if (spec.kind === 'snapshot') return snapshotInfo(snap);
  const created = await c.cinder.createBackup(
    {
      volumeId: spec.sourceVolumeId,
      snapshotId: snap.id,
      name: spec.name,
      description: SNAPSHOT_DESCRIPTION,
      force: spec.force,
      availabilityZone: spec.availabilityZone,
      metadata: spec.metadata,
    },
    signal,
  );
  c.log.info({ backupId: created.id, snapshotId: snap.id }, 'Cinder backup created');
  const backup = await waitBackup(c, created.id, signal, true);
  // The snapshot was only the consistent source of the backup; the backup now stands on its own.
  await bestEffort(c.log, `deleting intermediate snapshot ${snap.id}`, () => c.cinder.deleteSnapshot(snap.id, signal));
  return backupInfo(backup, spec.sourceVolumeId);
}

/** Finds the snapshot by name (same source, else ALREADY_EXISTS) or creates it; waits until available. */
async function ensureSnapshot(c: BlockContext, spec: CreateSnapshotSpec, signal: AbortSignal): Promise<CinderSnapshot> {
  const named = (await c.cinder.listSnapshots({ name: spec.name, limit: BY_NAME_LIMIT }, signal)).items.filter(
    (s) => s.name === spec.name,
  );
  let snap = single(named, spec, 'snapshots');
  const fresh = !snap;
  if (!snap) {
    try {
      snap = await c.cinder.createSnapshot(
        {
          volumeId: spec.sourceVolumeId,
          name: spec.name,
          description: SNAPSHOT_DESCRIPTION,
          force: spec.force,
          metadata: spec.metadata,
        },
        signal,
      );
    } catch (e) {
      if (isNotFound(e)) throw notFound(`source_volume_id: volume ${spec.sourceVolumeId} does not exist`);
      throw e;
    }
    c.log.info({ snapshotId: snap.id, volumeId: spec.sourceVolumeId }, 'Cinder snapshot created');
  }
  const id = snap.id;
  return pollUntil(
    (s) => c.cinder.getSnapshot(id, s),
    (x) => x.status === 'available',
    describe,
    {
      ...c.wait,
      signal,
      startWithPause: fresh,
      what: `snapshot ${id} to become available`,
      failOn: (x) =>
        isErrorStatus(x.status) ? internal(`Cinder could not create snapshot ${id} (status ${x.status})`) : undefined,
    },
  );
}

/** At most one same-name item, of the same volume; ALREADY_EXISTS when it belongs to another. */
function single<T extends Item>(items: T[], spec: CreateSnapshotSpec, what: string): T | undefined {
  if (items.length > 1) throw internal(`${items.length} Cinder ${what} are named "${spec.name}"; expected at most one`);
  const x = items[0];
  if (x && x.volume_id !== spec.sourceVolumeId) {
    throw alreadyExists(
      `snapshot "${spec.name}" exists (${x.id}) for volume ${x.volume_id}, not ${spec.sourceVolumeId}`,
    );
  }
  return x;
}

function waitBackup(c: BlockContext, id: string, signal: AbortSignal, startWithPause = false): Promise<CinderBackup> {
  return pollUntil(
    (s) => c.cinder.getBackup(id, s),
    (x) => x.status === 'available',
    describe,
    {
      ...c.wait,
      signal,
      startWithPause,
      what: `backup ${id} to become available`,
      failOn: (x) =>
        isErrorStatus(x.status)
          ? internal(`Cinder could not create backup ${id}: ${x.fail_reason ?? x.status}`)
          : undefined,
    },
  );
}

function snapshotInfo(s: CinderSnapshot): SnapshotInfo {
  return {
    id: s.id,
    sourceVolumeId: s.volume_id,
    sizeGiB: s.size,
    createdAt: parseCinderTime(s.created_at),
    readyToUse: s.status === 'available',
  };
}

function backupInfo(b: CinderBackup, volumeId?: string): SnapshotInfo {
  return {
    id: b.id,
    sourceVolumeId: b.volume_id ?? volumeId ?? '',
    sizeGiB: b.size ?? 0,
    createdAt: parseCinderTime(b.created_at),
    readyToUse: b.status === 'available',
  };
}

/** See ControllerBackend.deleteSnapshot: a backup id deletes the backup; waits until it is gone. */
export async function deleteSnapshot(c: BlockContext, id: string, signal: AbortSignal): Promise<void> {
  const backup = await orUndefined(c.cinder.getBackup(id, signal));
  const get = (s?: AbortSignal): Promise<Item | undefined> =>
    orUndefined<Item>(backup ? c.cinder.getBackup(id, s) : c.cinder.getSnapshot(id, s));
  const current = backup ?? (await get(signal));
  if (!current) return;
  if (current.status !== 'deleting') {
    try {
      await (backup ? c.cinder.deleteBackup(id, signal) : c.cinder.deleteSnapshot(id, signal));
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
  // Waiting matters: Cinder refuses to delete a volume that still has snapshots.
  await pollUntil<Item | undefined>(get, (x) => x === undefined, describe, {
    ...c.wait,
    signal,
    startWithPause: true,
    what: `${backup ? 'backup' : 'snapshot'} ${id} to be deleted`,
    failOn: (x) =>
      x && x.status === 'error_deleting'
        ? internal(`Cinder failed to delete ${id} (status error_deleting)`)
        : undefined,
  });
}

/** See ControllerBackend.getSnapshot. */
export async function getSnapshot(c: BlockContext, id: string, signal: AbortSignal): Promise<SnapshotInfo | undefined> {
  const s = await orUndefined(c.cinder.getSnapshot(id, signal));
  if (s) return snapshotInfo(s);
  const b = await orUndefined(c.cinder.getBackup(id, signal));
  return b ? backupInfo(b) : undefined;
}

/** See ControllerBackend.listSnapshots. Only `available` snapshots; backups are not listed (as the reference). */
export async function listSnapshots(
  c: BlockContext,
  q: PageRequest & { sourceVolumeId?: string },
  signal: AbortSignal,
): Promise<PageOf<SnapshotInfo>> {
  const items: SnapshotInfo[] = [];
  let marker = q.marker || undefined;
  try {
    do {
      const page = await c.cinder.listSnapshots(
        { volumeId: q.sourceVolumeId, status: 'available', limit: q.limit || undefined, marker },
        signal,
      );
      items.push(...page.items.map(snapshotInfo));
      marker = page.nextMarker;
    } while (!q.limit && marker);
  } catch (e) {
    if (q.marker && isOpenStackError(e, 'bad-request'))
      throw aborted(`starting_token: Cinder does not know marker ${q.marker}`);
    throw e;
  }
  return { items, nextMarker: q.limit ? marker : undefined };
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
