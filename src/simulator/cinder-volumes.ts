/**
 * Cinder volumes: create (empty, from snapshot, clone, from backup), show, list and detail with filters and
 * paging, update, delete, and volume metadata. Status changes go through SimState timers; actions
 * (extend, reserve, detach…) are in cinder-actions.ts.
 */
import type { SimEnv } from './env';
import {
  ApiError,
  atLeast,
  badRequest,
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
  volumeNotFound,
  volumeSummary,
  volumeView,
} from './cinder-views';
import { randomUUID, type VolumeRecord } from './state';

/** The statuses Cinder deletes from without `force` (volume/api.py delete). */
const DELETABLE = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];
const DELETE_REFUSED =
  'Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing ' +
  'and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated ' +
  'from snapshots after volume transfer.';
const DEFAULT_CREATE_FAULT = 'schedule allocate volume:Could not find any available weighted backend.';

export function findVolume(env: SimEnv, id: string): VolumeRecord {
  const v = env.state.volumes.get(id);
  if (!v) throw volumeNotFound(id);
  return v;
}

function parseSize(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) {
    throw badRequest(`Invalid input received: Volume size '${String(raw)}' must be an integer and greater than 0`);
  }
  return n;
}

/** Source of a new volume: a snapshot, another volume or (3.47+) a backup; gives defaults for size, type and AZ. */
function sourceOf(env: SimEnv, ctx: RequestContext, body: Record<string, unknown>) {
  const { state } = env;
  const snapshotId = optString(body, 'snapshot_id');
  const sourceVolid = optString(body, 'source_volid');
  const backupId = atLeast(ctx, '3.47') ? optString(body, 'backup_id') : undefined;
  if (snapshotId) {
    const s = state.snapshots.get(snapshotId);
    if (!s) throw notFound(`Snapshot ${snapshotId} could not be found.`);
    if (s.status !== 'available')
      throw badRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values");
    const parent = state.volumes.get(s.volumeId);
    return { snapshotId, size: s.size, kind: 'snapshot', type: parent?.volumeType, az: parent?.az };
  }
  if (sourceVolid) {
    const src = findVolume(env, sourceVolid);
    if (src.status !== 'available' && src.status !== 'in-use') {
      throw badRequest(
        `Invalid volume: Unable to create cloned volume. Source volume status must be available or in-use, but is ${src.status}.`,
      );
    }
    return { sourceVolid, size: src.size, kind: 'source volume', type: src.volumeType, az: src.az };
  }
  if (backupId) {
    const b = state.backups.get(backupId);
    if (!b) throw notFound(`Backup ${backupId} could not be found.`);
    if (b.status !== 'available')
      throw badRequest(`Invalid backup: Backup status must be available but the current status is ${b.status}.`);
    return { backupId, size: b.size, kind: 'backup', type: undefined, az: b.az };
  }
  return undefined;
}

export function createVolume(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const body = objectBody(ctx, 'volume');
  const src = sourceOf(env, ctx, body);
  const size = parseSize(body.size) ?? src?.size;
  if (size === undefined)
    throw badRequest("Invalid input for field/attribute size. Value: None. None is not of type 'integer', 'string'");
  if (src && size < src.size) {
    throw badRequest(
      `Invalid input received: Volume size '${size}'GB cannot be smaller than the ${src.kind} size ${src.size}GB. They must be >= original ${src.kind} size.`,
    );
  }
  const typeRef = optString(body, 'volume_type') ?? src?.type ?? '__DEFAULT__';
  const type = state.volumeTypes.find((t) => t.name === typeRef || t.id === typeRef);
  if (!type) throw notFound(`Volume type with name ${typeRef} could not be found.`);
  const az = optString(body, 'availability_zone') ?? src?.az ?? state.availabilityZones[0];
  if (!state.availabilityZones.includes(az)) throw badRequest(`Availability zone '${az}' is invalid.`); // Cinder 21's text, no "Invalid input received" prefix
  const hints = body['OS-SCH-HNT:scheduler_hints'];
  if (hints !== undefined && (typeof hints !== 'object' || hints === null || Array.isArray(hints))) {
    throw badRequest('Invalid input for field/attribute OS-SCH-HNT:scheduler_hints: must be an object.');
  }
  const metadata = optStringMap(body, 'metadata');
  checkQuota(state, 1, size);
  checkTypeQuota(state, type.name, size, size);

  const now = Date.now();
  const v: VolumeRecord = {
    id: randomUUID(),
    seq: state.nextSeq(),
    name: optString(body, 'name') ?? null,
    description: optString(body, 'description') ?? null,
    status: 'creating',
    size,
    az,
    volumeType: type.name,
    multiattach: type.extraSpecs.multiattach === '<is> True',
    bootable: false,
    attachments: [],
    metadata,
    snapshotId: src?.snapshotId ?? null,
    sourceVolid: src?.sourceVolid ?? null,
    backupId: src?.backupId ?? null,
    createdAt: now,
    updatedAt: now,
    statusHistory: [{ status: 'creating', at: now }],
  };
  state.volumes.set(v.id, v);
  env.device
    ?.createVolume(v.id, size, { snapshotId: v.snapshotId ?? undefined, volumeId: v.sourceVolid ?? undefined })
    .catch((err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: backing file not created'));

  const failIdx = state.failCreates.findIndex((f) => f.name === undefined || f.name === v.name);
  const failure = failIdx >= 0 ? state.failCreates.splice(failIdx, 1)[0] : undefined;
  state.after('volumeCreate', () => {
    if (state.volumes.get(v.id) !== v || v.status !== 'creating') return;
    if (failure) {
      state.messages.push({
        id: randomUUID(),
        resourceUuid: v.id,
        eventId: 'VOLUME_000002',
        userMessage: failure.message || DEFAULT_CREATE_FAULT,
        createdAt: Date.now(),
      });
      state.setVolumeStatus(v, 'error');
    } else {
      state.setVolumeStatus(v, 'available');
    }
  });
  return { status: 202, body: { volume: volumeView(ctx, state, v, true) } };
}

export function showVolume(env: SimEnv, ctx: RequestContext): Reply {
  return { status: 200, body: { volume: volumeView(ctx, env.state, findVolume(env, ctx.params.id)) } };
}

export function listVolumes(env: SimEnv, ctx: RequestContext, detail: boolean): Reply {
  const q = ctx.query;
  rejectUnknownFilters(ctx, 'volume');
  const name = q.get('name');
  const status = q.get('status');
  const az = q.get('availability_zone');
  const meta = metadataFilter(q.get('metadata'));
  const items = [...env.state.volumes.values()].filter(
    (v) =>
      (name === null || v.name === name) &&
      (status === null || v.status === status) &&
      (az === null || v.az === az) &&
      matchesMetadata(v.metadata, meta),
  );
  const { page, links } = paginate(ctx, items, detail ? 'volumes/detail' : 'volumes');
  const body: Record<string, unknown> = {
    volumes: page.map((v) => (detail ? volumeView(ctx, env.state, v) : volumeSummary(ctx, v))),
  };
  if (links) body.volumes_links = links;
  if (atLeast(ctx, '3.45') && ['true', '1'].includes(q.get('with_count') ?? '')) body.count = items.length;
  return { status: 200, body };
}

export function updateVolume(env: SimEnv, ctx: RequestContext): Reply {
  const v = findVolume(env, ctx.params.id);
  const body = objectBody(ctx, 'volume');
  if ('name' in body) v.name = optString(body, 'name') ?? null;
  if ('description' in body) v.description = optString(body, 'description') ?? null;
  if ('metadata' in body) v.metadata = optStringMap(body, 'metadata');
  v.updatedAt = Date.now();
  return { status: 200, body: { volume: volumeView(ctx, env.state, v) } };
}

export function deleteVolume(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const v = findVolume(env, ctx.params.id);
  const hasSnapshots = [...state.snapshots.values()].some((s) => s.volumeId === v.id);
  if (!DELETABLE.includes(v.status) || v.attachments.length > 0 || hasSnapshots || v.groupId)
    throw badRequest(DELETE_REFUSED);
  state.setVolumeStatus(v, 'deleting');
  const fail = state.failDelete.delete(v.id);
  state.after('volumeDelete', () => {
    if (state.volumes.get(v.id) !== v || v.status !== 'deleting') return;
    if (fail) return state.setVolumeStatus(v, 'error_deleting');
    state.setVolumeStatus(v, 'deleted');
    state.tombstones.set(v.id, v.statusHistory);
    state.volumes.delete(v.id);
    env.device
      ?.removeVolume(v.id)
      .catch((err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: backing file not removed'));
  });
  return { status: 202 };
}

export function volumeMetadata(env: SimEnv, ctx: RequestContext): Reply {
  const v = findVolume(env, ctx.params.id);
  if (ctx.method !== 'GET') {
    const b = ctx.body as Record<string, unknown> | undefined;
    if (!b || typeof b !== 'object' || !('metadata' in b)) throw badRequest('Malformed request body');
    const incoming = optStringMap(b, 'metadata');
    v.metadata = ctx.method === 'PUT' ? incoming : { ...v.metadata, ...incoming };
    v.updatedAt = Date.now();
  }
  return { status: 200, body: { metadata: { ...v.metadata } } };
}

export function assertProject(ctx: RequestContext): void {
  // Cinder's wsgi layer refuses a URL whose project is not the token's.
  if (ctx.params.project !== ctx.token?.projectId) throw new ApiError(400, 'Malformed request url');
}
