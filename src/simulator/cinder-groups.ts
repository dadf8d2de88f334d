/**
 * Cinder's generic volume groups (3.11 group types, 3.13 groups, 3.14 group snapshots), with the states and
 * refusals Cinder 21 shows (observed on openstack-loopback, pinned in test/integration/group-snapshots.openstack.test.ts):
 * a group goes creating → available, updating → available for add/remove_volumes, deleting → gone; a group
 * snapshot creating → available (its member snapshots with it) and deleting → gone. Group types are admin-only
 * to create (403 for the simulator's member user): tests add them with Simulator.addGroupType.
 */
import type { SimEnv } from './env';
import {
  ApiError,
  atLeast,
  badRequest,
  boolish,
  notFound,
  objectBody,
  optString,
  type Reply,
  type RequestContext,
} from './http-util';
import { checkQuota, paginate, quotaExceeded } from './cinder-views';
import {
  cinderTime,
  randomUUID,
  type GroupRecord,
  type GroupSnapshotRecord,
  type GroupType,
  type SimState,
  type SnapshotRecord,
} from './state';

/** Cinder's default `groups` quota (observed on openstack-loopback: limit 10). */
export const GROUP_QUOTA = 10;
const RESERVED_GROUP_TYPE = 'default_cgsnapshot_type';
const ADD_STATES = ['available', 'in-use'];
const REMOVE_STATES = ['available', 'in-use', 'error', 'error_deleting'];
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Group snapshots armed to fail (Simulator.failNextGroupSnapshot): a group id, or undefined for the next one of any group. */
const failNext = new WeakMap<SimState, Array<string | undefined>>();

/** The next group snapshot (of `groupId`, or of any group) ends in `error` with its members, as Cinder's generic path does when a member's snapshot fails. */
export function failNextGroupSnapshot(state: SimState, groupId?: string): void {
  const armed = failNext.get(state) ?? [];
  armed.push(groupId);
  failNext.set(state, armed);
}

function takeFailure(state: SimState, groupId: string): boolean {
  const armed = failNext.get(state) ?? [];
  const i = armed.findIndex((g) => g === undefined || g === groupId);
  if (i < 0) return false;
  armed.splice(i, 1);
  return true;
}

/** Below its microversion a group API is not there: Cinder's VersionNotFoundForAPIMethod is a 404. */
function requireVersion(ctx: RequestContext, v: string): void {
  if (!atLeast(ctx, v)) throw notFound('The resource could not be found.');
}

export function addGroupType(state: SimState, name: string, groupSpecs: Record<string, string> = {}): string {
  if (state.groupTypes.some((t) => t.name === name)) throw new Error(`group type ${name} already exists`);
  const t: GroupType = { id: randomUUID(), name, description: null, groupSpecs: { ...groupSpecs } };
  state.groupTypes.push(t);
  return t.id;
}

function groupTypeView(t: GroupType): unknown {
  return { id: t.id, name: t.name, description: t.description, is_public: true, group_specs: { ...t.groupSpecs } };
}

export function listGroupTypes(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.11');
  return { status: 200, body: { group_types: env.state.groupTypes.map(groupTypeView) } };
}

export function showGroupType(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.11');
  // No `default_group_type` is configured, as on openstack-loopback.
  if (ctx.params.id === 'default') throw notFound('Default group type can not be found.');
  const t = env.state.groupTypes.find((x) => x.id === ctx.params.id);
  if (!t) throw notFound(`Group type ${ctx.params.id} could not be found.`);
  return { status: 200, body: { group_type: groupTypeView(t) } };
}

/** The simulator's only user is a project member; Cinder's policy keeps group types to admins. */
export function createGroupType(_env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.11');
  throw new ApiError(403, "Policy doesn't allow group:group_types:create to be performed.");
}

function findGroupType(state: SimState, ref: string): GroupType {
  const byId = UUID_RE.test(ref) ? state.groupTypes.find((t) => t.id === ref) : undefined;
  const t = byId ?? state.groupTypes.find((x) => x.name === ref);
  if (!t)
    throw notFound(
      UUID_RE.test(ref) ? `Group type ${ref} could not be found.` : `Group type with name ${ref} could not be found.`,
    );
  return t;
}

function findGroup(state: SimState, id: string): GroupRecord {
  const g = state.groups.get(id);
  if (!g) throw notFound(`Group ${id} could not be found.`);
  return g;
}

function findGroupSnapshot(state: SimState, id: string): GroupSnapshotRecord {
  const g = state.groupSnapshots.get(id);
  if (!g) throw notFound(`GroupSnapshot ${id} could not be found.`);
  return g;
}

const volumesOf = (state: SimState, groupId: string) =>
  [...state.volumes.values()].filter((v) => v.groupId === groupId);

function groupView(ctx: RequestContext, state: SimState, g: GroupRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: g.id,
    status: g.status,
    availability_zone: g.az,
    created_at: cinderTime(g.createdAt),
    name: g.name,
    description: g.description,
    group_type: g.groupTypeId,
    volume_types: [...g.volumeTypeIds],
  };
  if (atLeast(ctx, '3.14')) {
    view.group_snapshot_id = null;
    view.source_group_id = null;
  }
  if (atLeast(ctx, '3.25') && boolish(ctx.query.get('list_volume')))
    view.volumes = volumesOf(state, g.id).map((v) => v.id);
  return view;
}

function groupSnapshotView(g: GroupSnapshotRecord): Record<string, unknown> {
  return {
    id: g.id,
    group_id: g.groupId,
    group_type_id: g.groupTypeId,
    status: g.status,
    created_at: cinderTime(g.createdAt),
    name: g.name,
    description: g.description,
  };
}

export function createGroup(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.13');
  const { state } = env;
  const body = objectBody(ctx, 'group');
  const typeRef = optString(body, 'group_type');
  const volumeTypes = body.volume_types;
  if (!typeRef || !Array.isArray(volumeTypes) || volumeTypes.length === 0) {
    throw badRequest(
      "Invalid input for field/attribute group. 'group_type' and 'volume_types' are required properties",
    );
  }
  const vtIds = volumeTypes.map((ref) => {
    const t = state.volumeTypes.find((x) => x.id === ref || x.name === ref);
    if (!t) throw notFound(`Volume type with name ${String(ref)} could not be found.`);
    return t.id;
  });
  const type = findGroupType(state, typeRef);
  if (type.name === RESERVED_GROUP_TYPE) {
    throw badRequest(
      `Group_type ${type.id} is reserved for migrating CGs to groups. Migrated group can only be operated by CG APIs.`,
    );
  }
  if (state.groups.size + 1 > GROUP_QUOTA)
    throw quotaExceeded(`Maximum number of groups allowed (${GROUP_QUOTA}) exceeded`);
  const g: GroupRecord = {
    id: randomUUID(),
    seq: state.nextSeq(),
    name: optString(body, 'name') ?? null,
    description: optString(body, 'description') ?? null,
    status: 'creating',
    groupTypeId: type.id,
    volumeTypeIds: [...new Set(vtIds)],
    az: optString(body, 'availability_zone') ?? state.availabilityZones[0],
    createdAt: Date.now(),
  };
  state.groups.set(g.id, g);
  state.after('snapshotCreate', () => {
    if (state.groups.get(g.id) === g && g.status === 'creating') g.status = 'available';
  });
  return { status: 202, body: { group: { id: g.id, name: g.name } } };
}

export function showGroup(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.13');
  return { status: 200, body: { group: groupView(ctx, env.state, findGroup(env.state, ctx.params.id)) } };
}

export function listGroups(env: SimEnv, ctx: RequestContext, detail: boolean): Reply {
  requireVersion(ctx, '3.13');
  const name = ctx.query.get('name');
  const items = [...env.state.groups.values()].filter((g) => name === null || g.name === name);
  const views = items
    .sort((a, b) => b.seq - a.seq)
    .map((g) => (detail ? groupView(ctx, env.state, g) : { id: g.id, name: g.name }));
  return { status: 200, body: { groups: views } };
}

/** PUT /groups/{id}: add_volumes / remove_volumes (comma-separated ids), validated as Cinder's group API does. */
export function updateGroup(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.13');
  const { state } = env;
  const g = findGroup(state, ctx.params.id);
  const body = objectBody(ctx, 'group');
  if (Object.keys(body).length === 0) {
    throw badRequest(
      'Invalid input for field/attribute group. Value: {}. {} is not valid under any of the given schemas',
    );
  }
  const split = (s: string | undefined) =>
    s
      ? s
          .replace(/^,+|,+$/g, '')
          .split(',')
          .filter(Boolean)
      : [];
  const add = split(optString(body, 'add_volumes'));
  const remove = split(optString(body, 'remove_volumes'));
  const both = add.filter((id) => remove.includes(id));
  if (both.length > 0)
    throw badRequest(`Invalid volume: UUIDs ${JSON.stringify(both)} are in both add and remove volume list.`);
  const members = volumesOf(state, g.id);
  for (const id of remove) {
    const v = members.find((m) => m.id === id);
    if (!v)
      throw badRequest(`Invalid volume: Cannot remove volume ${id} from group ${g.id} because it is not in the group.`);
    if (!REMOVE_STATES.includes(v.status)) {
      throw badRequest(
        `Invalid volume: Cannot remove volume ${id} from group ${g.id} because volume is in an invalid state: ${v.status}. Valid states are: ('${REMOVE_STATES.join("', '")}').`,
      );
    }
  }
  const toAdd = add.filter((id) => !members.some((m) => m.id === id));
  for (const id of toAdd) {
    const v = state.volumes.get(id);
    if (!v)
      throw badRequest(`Invalid volume: Cannot add volume ${id} to group ${g.id} because volume cannot be found.`);
    if (v.groupId)
      throw badRequest(
        `Invalid volume: Cannot add volume ${id} to group ${g.id} because it is already in group ${v.groupId}.`,
      );
    const typeId = state.volumeTypes.find((t) => t.name === v.volumeType)?.id;
    if (!typeId || !g.volumeTypeIds.includes(typeId)) {
      throw badRequest(
        `Invalid volume: Cannot add volume ${id} to group ${g.id} because volume type ${typeId ?? v.volumeType} is not supported by the group.`,
      );
    }
    if (!ADD_STATES.includes(v.status)) {
      throw badRequest(
        `Invalid volume: Cannot add volume ${id} to group ${g.id} because volume is in an invalid state: ${v.status}. Valid states are: ('${ADD_STATES.join("', '")}').`,
      );
    }
  }
  if (toAdd.length === 0 && remove.length === 0 && !('name' in body) && !('description' in body)) {
    throw badRequest(
      `Invalid Group: Cannot update group ${g.id} because no valid name, description, add_volumes, or remove_volumes were provided.`,
    );
  }
  if ('name' in body) g.name = optString(body, 'name') ?? null;
  if ('description' in body) g.description = optString(body, 'description') ?? null;
  if (toAdd.length === 0 && remove.length === 0) return { status: 202 };
  if (g.status !== 'available') throw badRequest('Invalid Group: Group status must be available.');
  g.status = 'updating';
  state.after('snapshotCreate', () => {
    if (state.groups.get(g.id) !== g || g.status !== 'updating') return;
    for (const id of toAdd) {
      const v = state.volumes.get(id);
      if (v) v.groupId = g.id;
    }
    for (const id of remove) {
      const v = state.volumes.get(id);
      if (v?.groupId === g.id) delete v.groupId;
    }
    g.status = 'available';
  });
  return { status: 202 };
}

/** POST /groups/{id}/action `delete`; other group actions are not simulated. */
export function groupAction(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.13');
  const { state } = env;
  const g = findGroup(state, ctx.params.id);
  const body = ctx.body as Record<string, unknown> | undefined;
  const del = body && typeof body === 'object' ? (body.delete as Record<string, unknown> | undefined) : undefined;
  if (!del || typeof del !== 'object') throw badRequest('Invalid input received: only the delete action is simulated.');
  const deleteVolumes = boolish(del['delete-volumes']);
  if (!deleteVolumes && g.status !== 'available' && g.status !== 'error') {
    throw badRequest(`Invalid Group: Group status must be available or error, but current status is: ${g.status}`);
  }
  if ([...state.groupSnapshots.values()].some((s) => s.groupId === g.id))
    throw badRequest('Invalid Group: Group has existing snapshots.');
  const volumes = volumesOf(state, g.id);
  if (volumes.length > 0 && !deleteVolumes) {
    throw badRequest(
      `Invalid Group: Group ${g.id} still contains volumes. The delete-volumes flag is required to delete it.`,
    );
  }
  for (const v of volumes) {
    if (v.attachments.length > 0)
      throw badRequest(`Invalid Group: Volume in group ${g.id} is attached. Need to detach first.`);
    if ([...state.snapshots.values()].some((s) => s.volumeId === v.id))
      throw badRequest('Invalid Group: Volume in group still has dependent snapshots.');
  }
  g.status = 'deleting';
  for (const v of volumes) state.setVolumeStatus(v, 'deleting');
  state.after('snapshotDelete', () => {
    if (state.groups.get(g.id) !== g) return;
    for (const v of volumes) {
      if (state.volumes.get(v.id) !== v) continue;
      state.setVolumeStatus(v, 'deleted');
      state.tombstones.set(v.id, v.statusHistory);
      state.volumes.delete(v.id);
      env.device
        ?.removeVolume(v.id)
        .catch((err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: backing file not removed'));
    }
    state.groups.delete(g.id);
  });
  return { status: 202 };
}

export function createGroupSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.14');
  const { state } = env;
  const body = objectBody(ctx, 'group_snapshot');
  const groupId = optString(body, 'group_id');
  if (!groupId) throw badRequest("Invalid input for field/attribute group_snapshot. 'group_id' is a required property");
  const g = findGroup(state, groupId);
  const volumes = volumesOf(state, g.id);
  if (volumes.length === 0 || g.status === 'creating' || g.status === 'updating') {
    throw badRequest(
      "Invalid Group: Source group cannot be empty or in 'creating' or 'updating' state. No group snapshot will be created.",
    );
  }
  for (const v of volumes) {
    if (!ADD_STATES.includes(v.status))
      throw badRequest(
        `Invalid volume: Volume ${v.id} status must be available or in-use, but current status is: ${v.status}.`,
      );
  }
  checkQuota(
    state,
    0,
    volumes.reduce((gb, v) => gb + v.size, 0),
    volumes.length,
  );
  const now = Date.now();
  const name = optString(body, 'name') ?? null;
  const description = optString(body, 'description') ?? null;
  const gs: GroupSnapshotRecord = {
    id: randomUUID(),
    seq: state.nextSeq(),
    name,
    description,
    status: 'creating',
    groupId: g.id,
    groupTypeId: g.groupTypeId,
    createdAt: now,
  };
  state.groupSnapshots.set(gs.id, gs);
  // Cinder names every member snapshot after its group snapshot.
  const members: SnapshotRecord[] = volumes.map((v) => ({
    id: randomUUID(),
    seq: state.nextSeq(),
    name,
    description,
    status: 'creating',
    size: v.size,
    volumeId: v.id,
    metadata: {},
    createdAt: now,
    updatedAt: now,
    statusHistory: [{ status: 'creating', at: now }],
    groupSnapshotId: gs.id,
  }));
  for (const s of members) {
    state.snapshots.set(s.id, s);
    env.device
      ?.snapshot(s.id, s.volumeId)
      .catch((err: unknown) => env.log.error({ err, snapshotId: s.id }, 'simulator: snapshot copy failed'));
  }
  const fail = takeFailure(state, g.id);
  state.after('snapshotCreate', () => {
    if (state.groupSnapshots.get(gs.id) !== gs || gs.status !== 'creating') return;
    for (const s of members)
      if (state.snapshots.get(s.id) === s && s.status === 'creating')
        state.setSnapshotStatus(s, fail ? 'error' : 'available');
    gs.status = fail ? 'error' : 'available';
  });
  return { status: 202, body: { group_snapshot: { id: gs.id, name: gs.name, group_type_id: gs.groupTypeId } } };
}

export function showGroupSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.14');
  return { status: 200, body: { group_snapshot: groupSnapshotView(findGroupSnapshot(env.state, ctx.params.id)) } };
}

/** Filters (name, status, group_id) and paging count only from 3.29; below, Cinder lists every group snapshot. */
export function listGroupSnapshots(env: SimEnv, ctx: RequestContext, detail: boolean): Reply {
  requireVersion(ctx, '3.14');
  const q = ctx.query;
  const filtered = atLeast(ctx, '3.29');
  const [name, status, groupId] = filtered ? [q.get('name'), q.get('status'), q.get('group_id')] : [null, null, null];
  const items = [...env.state.groupSnapshots.values()].filter(
    (g) =>
      (name === null || g.name === name) &&
      (status === null || g.status === status) &&
      (groupId === null || g.groupId === groupId),
  );
  const pageable = items.map((g) => ({ ...g, size: 0 }));
  const page = filtered
    ? paginate(ctx, pageable, detail ? 'group_snapshots/detail' : 'group_snapshots').page
    : pageable.sort((a, b) => b.seq - a.seq);
  const views = page.map((g) =>
    detail ? groupSnapshotView(g) : { id: g.id, name: g.name, group_type_id: g.groupTypeId },
  );
  return { status: 200, body: { group_snapshots: views } };
}

export function deleteGroupSnapshot(env: SimEnv, ctx: RequestContext): Reply {
  requireVersion(ctx, '3.14');
  const { state } = env;
  const gs = findGroupSnapshot(state, ctx.params.id);
  if (gs.status !== 'available' && gs.status !== 'error') {
    throw badRequest(
      'Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation.',
    );
  }
  gs.status = 'deleting';
  const members = [...state.snapshots.values()].filter((s) => s.groupSnapshotId === gs.id);
  for (const s of members) state.setSnapshotStatus(s, 'deleting');
  state.after('snapshotDelete', () => {
    if (state.groupSnapshots.get(gs.id) !== gs) return;
    for (const s of members) {
      if (state.snapshots.get(s.id) !== s) continue;
      state.snapshots.delete(s.id);
      env.device
        ?.removeSnapshot(s.id)
        .catch((err: unknown) => env.log.error({ err, snapshotId: s.id }, 'simulator: snapshot file not removed'));
    }
    state.groupSnapshots.delete(gs.id);
  });
  return { status: 202 };
}
