/**
 * Cinder snapshots: create (an in-use volume needs `force` below microversion 3.66, as in real Cinder),
 * show, list/detail with volume_id, name, status and metadata filters and paging, delete. Each goes
 * creating → available and deleting → gone on SimState timers.
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
import { checkTypeQuota } from './cinder-quotas';
import {
  checkQuota,
  matchesMetadata,
  metadataFilter,
  paginate,
  rejectUnknownFilters,
  snapshotView,
} from './cinder-views';
import { findVolume } from './cinder-volumes';
import { randomUUID, type SnapshotRecord } from './state';

function findSnapshot(env: SimEnv, id: string): SnapshotRecord {
  const s = env.state.snapshots.get(id);
  if (!s) throw notFound(`Snapshot ${id} could not be found.`);
  return s;
}

export function createSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const body = objectBody(ctx, 'snapshot');
  const volumeId = optString(body, 'volume_id');
  if (!volumeId)
    throw badRequest("Invalid input for field/attribute snapshot. Value: {}. 'volume_id' is a required property");
  const v = findVolume(env, volumeId);
  // 3.66 made `force` implicit: snapshots of in-use volumes are always allowed from then on.
  const force = atLeast(ctx, '3.66') || boolish(body.force);
  if (force ? v.status !== 'available' && v.status !== 'in-use' : v.status !== 'available') {
    const allowed = force ? 'available or in-use' : 'available';
    throw badRequest(`Invalid volume: Volume ${v.id} status must be ${allowed}, but current status is: ${v.status}.`);
  }
  checkQuota(state, 0, v.size, 1);
  checkTypeQuota(state, v.volumeType, v.size);
  const now = Date.now();
  const s: SnapshotRecord = {
    id: randomUUID(),
    seq: state.nextSeq(),
    name: optString(body, 'name') ?? null,
    description: optString(body, 'description') ?? null,
    status: 'creating',
    size: v.size,
    volumeId: v.id,
    metadata: optStringMap(body, 'metadata'),
    createdAt: now,
    updatedAt: now,
    statusHistory: [{ status: 'creating', at: now }],
  };
  state.snapshots.set(s.id, s);
  env.device
    ?.snapshot(s.id, v.id)
    .catch((err: unknown) => env.log.error({ err, snapshotId: s.id }, 'simulator: snapshot copy failed'));
  state.after('snapshotCreate', () => {
    if (state.snapshots.get(s.id) === s && s.status === 'creating') state.setSnapshotStatus(s, 'available');
  });
  return { status: 202, body: { snapshot: snapshotView(ctx, state, s, true) } };
}

export function showSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  return { status: 200, body: { snapshot: snapshotView(ctx, env.state, findSnapshot(env, ctx.params.id)) } };
}

export function listSnapshots(env: SimEnv, ctx: RequestContext, detail: boolean): Reply {
  rejectUnknownFilters(ctx, 'snapshot');
  const q = ctx.query;
  const [volumeId, name, status] = [q.get('volume_id'), q.get('name'), q.get('status')];
  const meta = metadataFilter(q.get('metadata'));
  const items = [...env.state.snapshots.values()].filter(
    (s) =>
      (volumeId === null || s.volumeId === volumeId) &&
      (name === null || s.name === name) &&
      (status === null || s.status === status) &&
      matchesMetadata(s.metadata, meta),
  );
  const { page, links } = paginate(ctx, items, detail ? 'snapshots/detail' : 'snapshots');
  const body: Record<string, unknown> = { snapshots: page.map((s) => snapshotView(ctx, env.state, s)) };
  if (links) body.snapshots_links = links;
  return { status: 200, body };
}

export function deleteSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const s = findSnapshot(env, ctx.params.id);
  if ((s.status !== 'available' && s.status !== 'error') || s.groupSnapshotId) {
    throw badRequest('Invalid snapshot: Snapshot status must be available or error and must not be part of a group.');
  }
  state.setSnapshotStatus(s, 'deleting');
  state.after('snapshotDelete', () => {
    if (state.snapshots.get(s.id) !== s || s.status !== 'deleting') return;
    state.snapshots.delete(s.id);
    env.device
      ?.removeSnapshot(s.id)
      .catch((err: unknown) => env.log.error({ err, snapshotId: s.id }, 'simulator: snapshot file not removed'));
  });
  return { status: 202 };
}
