/**
 * CSI volume group snapshots over Cinder generic volume groups. One Cinder group per group snapshot, named
 * like it: the source volumes are added to the group, Cinder snapshots the group, and the volumes are taken
 * out of it again, so they are left as they were (a volume can be in one group only, and Cinder refuses to
 * delete a volume that is in a group). The empty group stays while its group snapshot lives (Cinder refuses
 * to delete a group that has group snapshots) and is deleted with it.
 *
 * The CSI group snapshot id is `<group snapshot id>:<group id>`, so a Delete interrupted between the two
 * deletes still finds the group; each member is a plain Cinder snapshot, usable as CreateVolume's source.
 */
import {
  CodedError,
  Status,
  messageOf,
  aborted,
  alreadyExists,
  failedPrecondition,
  internal,
  invalidArgument,
  notFound,
} from '../errors';
import type { Logger } from '../log';
import type {
  CinderGroup,
  CinderGroupSnapshot,
  CinderGroupsApi,
  CinderGroupedVolume,
  CinderMemberSnapshot,
} from '../openstack/cinder-groups';
import { isNotFound } from '../openstack/errors';
import { bestEffort, isErrorStatus, parseCinderTime } from './block-context';
import { pollUntil, type PollOptions } from './volume-wait';

/** Description of every group and group snapshot we create: it marks them as the driver's. */
export const GROUP_DESCRIPTION = 'Created by OpenStack Cinder CSI driver for a volume group snapshot';
/** Separates the Cinder group snapshot id from its group's id in a CSI group snapshot id. */
const ID_SEPARATOR = ':';

export interface GroupSnapshotContext {
  cinder: CinderGroupsApi;
  log: Logger;
  wait: PollOptions;
}

export interface CreateGroupSnapshotSpec {
  /** The CO's name: the idempotency key, and the name of the Cinder group and group snapshot. */
  name: string;
  volumeIds: string[];
  /** Group type name or id; absent: the cloud's default group type. */
  groupType?: string;
}

export interface MemberSnapshotInfo {
  id: string;
  sourceVolumeId: string;
  sizeGiB: number;
  createdAt: number;
  readyToUse: boolean;
}

export interface GroupSnapshotInfo {
  /** The CSI group snapshot id. */
  id: string;
  members: MemberSnapshotInfo[];
  createdAt: number;
  readyToUse: boolean;
}

/** The parts of a CSI group snapshot id; `groupId` is absent for a bare Cinder group snapshot id (pre-provisioned). */
export function parseGroupSnapshotId(id: string): { groupSnapshotId: string; groupId?: string } {
  const i = id.indexOf(ID_SEPARATOR);
  return i < 0 ? { groupSnapshotId: id } : { groupSnapshotId: id.slice(0, i), groupId: id.slice(i + 1) };
}

export function groupSnapshotIdOf(groupSnapshotId: string, groupId: string): string {
  return `${groupSnapshotId}${ID_SEPARATOR}${groupId}`;
}

const describeItem = (x: { status: string } | undefined) => (x ? `status ${x.status}` : 'nothing (no answer yet)');

/**
 * Creates the group snapshot of `volumeIds` named `name`, or finds the one an earlier call made (same volumes:
 * its answer; other volumes: ALREADY_EXISTS), and waits until Cinder has cut every member snapshot.
 */
export async function createGroupSnapshot(
  c: GroupSnapshotContext,
  spec: CreateGroupSnapshotSpec,
  signal: AbortSignal,
): Promise<GroupSnapshotInfo> {
  const existing = single(await c.cinder.listGroupSnapshotsByName(spec.name, signal), 'group snapshots', spec.name);
  if (existing) {
    const members = await membersOf(c, existing, signal);
    const have = members.map((m) => m.volume_id);
    if (!sameSet(have, spec.volumeIds)) {
      throw alreadyExists(
        `group snapshot "${spec.name}" exists (${existing.id}) of volumes ${sorted(have).join(', ')}, not ${sorted(spec.volumeIds).join(', ')}`,
      );
    }
    return finish(c, existing.id, existing.group_id, signal);
  }
  const volumes = await sourceVolumes(c, spec.volumeIds, signal);
  // A group left by an interrupted earlier call of this name is reused, with whatever it already holds.
  const found = single(await c.cinder.listGroupsByName(spec.name, signal), 'groups', spec.name);
  for (const v of volumes) {
    if (v.group_id && v.group_id !== found?.id) {
      throw failedPrecondition(
        `source_volume_ids: volume ${v.id} is already in Cinder group ${v.group_id}; a volume can be in one group only`,
      );
    }
    if (!v.volume_type)
      throw failedPrecondition(
        `source_volume_ids: volume ${v.id} has no volume type; Cinder groups hold only typed volumes`,
      );
  }
  const groupId = found?.id ?? (await createGroup(c, spec, volumes, signal));
  let gsId: string;
  try {
    await waitGroup(c, groupId, signal, !found);
    await setGroupVolumes(c, groupId, spec.volumeIds, signal);
    gsId = (await c.cinder.createGroupSnapshot({ groupId, name: spec.name, description: GROUP_DESCRIPTION }, signal))
      .id;
  } catch (e) {
    // A refusal (no backend for the group, volumes Cinder will not group) ends this name's attempt: nothing may
    // stay grouped. A timeout or an outage does not: the CO's retry carries on with the same group.
    if (isRefusal(e)) await bestEffort(c.log, `removing group ${groupId}`, () => removeGroup(c, groupId, signal));
    throw e;
  }
  c.log.info({ groupSnapshotId: gsId, groupId, volumes: spec.volumeIds }, 'Cinder group snapshot created');
  return finish(c, gsId, groupId, signal, true);
}

/** Waits for the group snapshot, takes the volumes back out of the group, and answers. */
async function finish(
  c: GroupSnapshotContext,
  gsId: string,
  groupId: string,
  signal: AbortSignal,
  fresh = false,
): Promise<GroupSnapshotInfo> {
  let failed = false;
  let gs: CinderGroupSnapshot;
  try {
    gs = await pollUntil(
      (s) => c.cinder.getGroupSnapshot(gsId, s),
      (x) => x.status === 'available',
      describeItem,
      {
        ...c.wait,
        signal,
        startWithPause: fresh,
        what: `group snapshot ${gsId} to become available`,
        failOn: (x) => {
          if (!isErrorStatus(x.status)) return undefined;
          failed = true;
          return internal(`Cinder could not create group snapshot ${gsId} (status ${x.status})`);
        },
      },
    );
  } catch (e) {
    if (failed) {
      // CSI: a failed group snapshot the CO has no id for must not leak snapshots, nor leave the volumes grouped.
      await bestEffort(c.log, `removing failed group snapshot ${gsId}`, () => removeGroupSnapshot(c, gsId, signal));
      await bestEffort(c.log, `removing group ${groupId}`, () => removeGroup(c, groupId, signal));
    }
    throw e;
  }
  await setGroupVolumes(c, groupId, [], signal);
  return infoOf(gs, groupId, await membersOf(c, gs, signal));
}

/** Deletes the group snapshot (its member snapshots with it) and then its group. Already gone: done. */
export async function deleteGroupSnapshot(
  c: GroupSnapshotContext,
  id: string,
  snapshotIds: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  const { groupSnapshotId, groupId } = parseGroupSnapshotId(id);
  const gs = await orUndefined(c.cinder.getGroupSnapshot(groupSnapshotId, signal));
  if (gs && (groupId === undefined || gs.group_id === groupId)) {
    checkSnapshotIds(await membersOf(c, gs, signal, snapshotIds), snapshotIds);
    await removeGroupSnapshot(c, gs.id, signal, gs);
  }
  // Only a group named in the id is ours to delete: a pre-provisioned group snapshot's group is the user's.
  if (groupId !== undefined && (!gs || gs.group_id === groupId)) await removeGroup(c, groupId, signal);
}

/** The group snapshot as it is now; NOT_FOUND when it does not exist. */
export async function getGroupSnapshot(
  c: GroupSnapshotContext,
  id: string,
  snapshotIds: readonly string[],
  signal: AbortSignal,
): Promise<GroupSnapshotInfo> {
  const { groupSnapshotId, groupId } = parseGroupSnapshotId(id);
  const gs = await orUndefined(c.cinder.getGroupSnapshot(groupSnapshotId, signal));
  if (!gs || (groupId !== undefined && gs.group_id !== groupId)) throw notFound(`group snapshot ${id} does not exist`);
  const members = await membersOf(c, gs, signal, snapshotIds);
  checkSnapshotIds(members, snapshotIds);
  return infoOf(gs, groupId ?? gs.group_id, members, groupId === undefined ? gs.id : undefined);
}

/** CSI: snapshot_ids that do not name exactly the group's members are INVALID_ARGUMENT; none given is not checked. */
function checkSnapshotIds(members: CinderMemberSnapshot[], snapshotIds: readonly string[]): void {
  if (snapshotIds.length === 0) return;
  const have = members.map((m) => m.id);
  if (!sameSet(have, snapshotIds)) {
    throw invalidArgument(
      'snapshot_ids',
      `do not match the group snapshot's snapshots (${sorted(have).join(', ') || 'none'})`,
    );
  }
}

/** Each source volume, once: NOT_FOUND for one Cinder does not know. */
async function sourceVolumes(
  c: GroupSnapshotContext,
  ids: string[],
  signal: AbortSignal,
): Promise<CinderGroupedVolume[]> {
  const out: CinderGroupedVolume[] = [];
  for (const id of ids) {
    try {
      out.push(await c.cinder.getVolume(id, signal));
    } catch (e) {
      if (isNotFound(e)) throw notFound(`source_volume_ids: volume ${id} does not exist`);
      throw e;
    }
  }
  return out;
}

/** A new group for the group snapshot `spec.name`, of the group type and the volumes' types. */
async function createGroup(
  c: GroupSnapshotContext,
  spec: CreateGroupSnapshotSpec,
  volumes: CinderGroupedVolume[],
  signal: AbortSignal,
): Promise<string> {
  const groupType = spec.groupType ?? (await defaultGroupType(c, signal));
  // Cinder adds to a group only volumes of a type the group lists.
  const volumeTypes = [...new Set(volumes.map((v) => v.volume_type as string))];
  let id: string;
  try {
    id = (
      await c.cinder.createGroup({ name: spec.name, description: GROUP_DESCRIPTION, groupType, volumeTypes }, signal)
    ).id;
  } catch (e) {
    if (isNotFound(e))
      throw invalidArgument('parameters.groupType', `names a group type Cinder does not know (${messageOf(e)})`);
    throw e;
  }
  c.log.info({ groupId: id, groupType, volumeTypes }, 'Cinder group created');
  return id;
}

async function defaultGroupType(c: GroupSnapshotContext, signal: AbortSignal): Promise<string> {
  try {
    return (await c.cinder.defaultGroupType(signal)).id;
  } catch (e) {
    if (isNotFound(e))
      throw invalidArgument('parameters.groupType', 'is required: the cloud has no default group type');
    throw e;
  }
}

function waitGroup(
  c: GroupSnapshotContext,
  id: string,
  signal: AbortSignal,
  startWithPause: boolean,
): Promise<CinderGroup> {
  return pollUntil(
    (s) => c.cinder.getGroup(id, s),
    (g) => g.status === 'available',
    describeItem,
    {
      ...c.wait,
      signal,
      startWithPause,
      what: `group ${id} to become available`,
      // A group in error found no backend for its group type and volume types: these volumes cannot be grouped.
      failOn: (g) =>
        isErrorStatus(g.status)
          ? failedPrecondition(
              `Cinder group ${id} went to status ${g.status}: no backend can hold a group of this group type and these volume types`,
            )
          : undefined,
    },
  );
}

/** Makes the group hold exactly `want` (add the missing, remove the rest) and waits until Cinder has done it. */
async function setGroupVolumes(
  c: GroupSnapshotContext,
  groupId: string,
  want: string[],
  signal: AbortSignal,
): Promise<void> {
  let have: string[];
  try {
    have = (await c.cinder.getGroup(groupId, signal)).volumes ?? [];
  } catch (e) {
    if (want.length === 0 && isNotFound(e)) return;
    throw e;
  }
  const add = want.filter((v) => !have.includes(v));
  const remove = have.filter((v) => !want.includes(v));
  if (add.length === 0 && remove.length === 0) return;
  try {
    await c.cinder.updateGroupVolumes(groupId, { add, remove }, signal);
  } catch (e) {
    // Cinder takes the update only from `available`: another update of this group runs (a second controller replica).
    if (isRefusal(e) && (await orUndefined(c.cinder.getGroup(groupId, signal)))?.status === 'updating') {
      throw aborted(`Cinder group ${groupId} is being updated by another request; retry later`);
    }
    throw e;
  }
  c.log.info({ groupId, add, remove }, 'Cinder group volumes updated');
  const group = await waitGroup(c, groupId, signal, true);
  const now = group.volumes ?? [];
  if (!sameSet(now, want))
    throw internal(
      `Cinder group ${groupId} holds ${sorted(now).join(', ') || 'no volumes'} after the update, not ${sorted(want).join(', ') || 'none'}`,
    );
}

/** Deletes a group snapshot and waits until it is gone. */
async function removeGroupSnapshot(
  c: GroupSnapshotContext,
  id: string,
  signal: AbortSignal,
  current?: CinderGroupSnapshot,
): Promise<void> {
  if (current?.status !== 'deleting') {
    try {
      await c.cinder.deleteGroupSnapshot(id, signal);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
  await pollUntil<CinderGroupSnapshot | undefined>(
    (s) => orUndefined(c.cinder.getGroupSnapshot(id, s)),
    (x) => x === undefined || x.status === 'deleted',
    describeItem,
    {
      ...c.wait,
      signal,
      startWithPause: true,
      what: `group snapshot ${id} to be deleted`,
      failOn: (x) =>
        x && isErrorStatus(x.status)
          ? internal(`Cinder failed to delete group snapshot ${id} (status ${x.status})`)
          : undefined,
    },
  );
}

/** Empties and deletes a group of ours and waits until it is gone. */
async function removeGroup(c: GroupSnapshotContext, id: string, signal: AbortSignal): Promise<void> {
  const group = await orUndefined(c.cinder.getGroup(id, signal));
  if (!group) return;
  if (group.status !== 'deleting') {
    if ((group.volumes ?? []).length > 0) await setGroupVolumes(c, id, [], signal);
    try {
      await c.cinder.deleteGroup(id, signal);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
  await pollUntil<CinderGroup | undefined>(
    (s) => orUndefined(c.cinder.getGroup(id, s)),
    (x) => x === undefined || x.status === 'deleted',
    describeItem,
    {
      ...c.wait,
      signal,
      startWithPause: true,
      what: `group ${id} to be deleted`,
      failOn: (x) =>
        x && isErrorStatus(x.status) ? internal(`Cinder failed to delete group ${id} (status ${x.status})`) : undefined,
    },
  );
}

/**
 * The member snapshots: Cinder names each after its group snapshot and records the group snapshot's id on it. A
 * group snapshot without a name (made outside the driver) is found through the ids the CO knows (`snapshot_ids`).
 */
async function membersOf(
  c: GroupSnapshotContext,
  gs: CinderGroupSnapshot,
  signal: AbortSignal,
  knownIds: readonly string[] = [],
): Promise<CinderMemberSnapshot[]> {
  const mine = (s: CinderMemberSnapshot | undefined): s is CinderMemberSnapshot => s?.group_snapshot_id === gs.id;
  if (gs.name) return (await c.cinder.listSnapshotsByName(gs.name, signal)).filter(mine);
  const found: Array<CinderMemberSnapshot | undefined> = [];
  for (const id of new Set(knownIds)) found.push(await orUndefined(c.cinder.getSnapshot(id, signal)));
  return found.filter(mine);
}

function infoOf(
  gs: CinderGroupSnapshot,
  groupId: string,
  members: CinderMemberSnapshot[],
  bareId?: string,
): GroupSnapshotInfo {
  const snapshots = members
    .map((m) => ({
      id: m.id,
      sourceVolumeId: m.volume_id,
      sizeGiB: m.size,
      createdAt: parseCinderTime(m.created_at),
      readyToUse: m.status === 'available',
    }))
    .sort((a, b) => a.sourceVolumeId.localeCompare(b.sourceVolumeId));
  return {
    id: bareId ?? groupSnapshotIdOf(gs.id, groupId),
    members: snapshots,
    createdAt: parseCinderTime(gs.created_at),
    readyToUse: gs.status === 'available' && snapshots.length > 0 && snapshots.every((s) => s.readyToUse),
  };
}

function single<T extends { id: string }>(items: T[], what: string, name: string): T | undefined {
  if (items.length > 1) throw internal(`${items.length} Cinder ${what} are named "${name}"; expected at most one`);
  return items[0];
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

const sorted = (xs: readonly string[]) => [...xs].sort();

/** The cloud said no (as opposed to a timeout, a cancel or an outage). */
function isRefusal(e: unknown): boolean {
  return (
    e instanceof CodedError &&
    [
      Status.FAILED_PRECONDITION,
      Status.INVALID_ARGUMENT,
      Status.NOT_FOUND,
      Status.RESOURCE_EXHAUSTED,
      Status.PERMISSION_DENIED,
    ].includes(e.code)
  );
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
