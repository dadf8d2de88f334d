/**
 * Cinder's generic volume groups and group snapshots (Block Storage v3, microversions 3.13-3.29): the calls a
 * CSI group snapshot is made of. A client of its own beside CinderClient, over the same token and HTTP layer,
 * because every call here needs a microversion the rest of the driver never sends. One API call per method;
 * waiting for statuses is the backend's job (src/block/block-group-snapshots.ts).
 */
import type { HttpClient, HttpMethod } from './http';
import { type ServiceAuth, VOLUME_SERVICE_TYPES } from './keystone';

/** Groups: create, show, update (add/remove volumes), delete action, `group_id` in the volume view. */
export const CINDER_MICROVERSION_GROUPS = '3.13';
/** Group snapshots, and `group_snapshot_id` in the snapshot view. */
export const CINDER_MICROVERSION_GROUP_SNAPSHOTS = '3.14';
/** A group's view lists its volumes (`list_volume=True`). */
export const CINDER_MICROVERSION_GROUP_VOLUME_LIST = '3.25';
/** Group snapshot lists honour filters (`name`) only from here; below, every group snapshot is listed. */
export const CINDER_MICROVERSION_GROUP_SNAPSHOT_FILTERS = '3.29';

export type CinderGroupStatus =
  'creating' | 'available' | 'updating' | 'deleting' | 'deleted' | 'error' | 'error_deleting' | 'in-use';
export type CinderGroupSnapshotStatus = 'creating' | 'available' | 'deleting' | 'deleted' | 'error' | 'error_deleting';

export interface CinderGroupType {
  id: string;
  name: string;
  group_specs?: Record<string, string>;
}

export interface CinderGroup {
  id: string;
  name: string | null;
  status: CinderGroupStatus;
  description?: string | null;
  /** The group type's id (the create request may name it). */
  group_type?: string;
  /** Volume type ids. */
  volume_types?: string[];
  availability_zone?: string;
  created_at?: string;
  /** Ids of the volumes in the group (shown with `list_volume=True` from 3.25). */
  volumes?: string[];
}

export interface CinderGroupSnapshot {
  id: string;
  name: string | null;
  status: CinderGroupSnapshotStatus;
  group_id: string;
  group_type_id?: string;
  description?: string | null;
  created_at?: string;
}

/** A snapshot as 3.14 shows it: a member of a group snapshot names it. */
export interface CinderMemberSnapshot {
  id: string;
  name: string | null;
  status: string;
  volume_id: string;
  size: number;
  created_at: string;
  group_snapshot_id?: string | null;
}

/** A volume as 3.13 shows it: the generic group it is in, if any. */
export interface CinderGroupedVolume {
  id: string;
  name: string | null;
  status: string;
  size: number;
  volume_type?: string | null;
  availability_zone?: string;
  group_id?: string | null;
}

export interface CreateGroupRequest {
  name: string;
  description?: string;
  /** Name or id. */
  groupType: string;
  /** Names or ids; every volume added later must be of one of them. */
  volumeTypes: string[];
  availabilityZone?: string;
}

/** What the group snapshot backend needs from Cinder. Every method rejects with OpenStackError. */
export interface CinderGroupsApi {
  /** GET /group_types/default: NOT_FOUND when the cloud configures no `default_group_type`. */
  defaultGroupType(signal?: AbortSignal): Promise<CinderGroupType>;
  /** POST /groups; answers with the id at once (status `creating`). */
  createGroup(req: CreateGroupRequest, signal?: AbortSignal): Promise<{ id: string }>;
  /** GET /groups/{id} with the ids of its volumes. */
  getGroup(id: string, signal?: AbortSignal): Promise<CinderGroup>;
  /** Every group of the project whose name is exactly `name`. */
  listGroupsByName(name: string, signal?: AbortSignal): Promise<CinderGroup[]>;
  /** PUT /groups/{id} with `add_volumes` / `remove_volumes`; the group goes `updating` → `available`. */
  updateGroupVolumes(id: string, change: { add?: string[]; remove?: string[] }, signal?: AbortSignal): Promise<void>;
  /** POST /groups/{id}/action `delete` without deleting volumes: Cinder refuses a group with volumes or group snapshots. */
  deleteGroup(id: string, signal?: AbortSignal): Promise<void>;
  /** POST /group_snapshots; answers at once (status `creating`); Cinder snapshots every volume of the group. */
  createGroupSnapshot(
    req: { groupId: string; name: string; description?: string },
    signal?: AbortSignal,
  ): Promise<{ id: string }>;
  getGroupSnapshot(id: string, signal?: AbortSignal): Promise<CinderGroupSnapshot>;
  /** Every group snapshot of the project whose name is exactly `name`. */
  listGroupSnapshotsByName(name: string, signal?: AbortSignal): Promise<CinderGroupSnapshot[]>;
  deleteGroupSnapshot(id: string, signal?: AbortSignal): Promise<void>;
  /** Snapshots named `name` with their `group_snapshot_id` (Cinder names each member after its group snapshot). */
  listSnapshotsByName(name: string, signal?: AbortSignal): Promise<CinderMemberSnapshot[]>;
  getSnapshot(id: string, signal?: AbortSignal): Promise<CinderMemberSnapshot>;
  getVolume(id: string, signal?: AbortSignal): Promise<CinderGroupedVolume>;
}

export interface CinderGroupsDeps {
  keystone: ServiceAuth;
  http: HttpClient;
  serviceTypes?: readonly string[];
}

/** Page size of the by-name lists: a name matches one or two resources, never a page. */
const BY_NAME_LIMIT = 1000;

export class CinderGroupsClient implements CinderGroupsApi {
  private readonly serviceTypes: readonly string[];

  constructor(private readonly deps: CinderGroupsDeps) {
    this.serviceTypes = deps.serviceTypes ?? VOLUME_SERVICE_TYPES;
  }

  async defaultGroupType(signal?: AbortSignal): Promise<CinderGroupType> {
    return (
      await this.call<{ group_type: CinderGroupType }>(
        'group-type.default',
        'GET',
        '/group_types/default',
        CINDER_MICROVERSION_GROUPS,
        { signal },
      )
    ).group_type;
  }

  async createGroup(req: CreateGroupRequest, signal?: AbortSignal): Promise<{ id: string }> {
    const group = compact({
      name: req.name,
      description: req.description,
      group_type: req.groupType,
      volume_types: req.volumeTypes,
      availability_zone: req.availabilityZone,
    });
    return (
      await this.call<{ group: { id: string } }>('group.create', 'POST', '/groups', CINDER_MICROVERSION_GROUPS, {
        body: { group },
        signal,
      })
    ).group;
  }

  async getGroup(id: string, signal?: AbortSignal): Promise<CinderGroup> {
    const data = await this.call<{ group: CinderGroup }>(
      'group.get',
      'GET',
      `/groups/${enc(id)}`,
      CINDER_MICROVERSION_GROUP_VOLUME_LIST,
      {
        params: { list_volume: 'True' },
        signal,
      },
    );
    return data.group;
  }

  async listGroupsByName(name: string, signal?: AbortSignal): Promise<CinderGroup[]> {
    const data = await this.call<{ groups: CinderGroup[] }>(
      'group.list',
      'GET',
      '/groups/detail',
      CINDER_MICROVERSION_GROUPS,
      {
        params: { name, limit: BY_NAME_LIMIT },
        signal,
      },
    );
    // A cloud that ignores the filter lists every group: filter again.
    return data.groups.filter((g) => g.name === name);
  }

  async updateGroupVolumes(
    id: string,
    change: { add?: string[]; remove?: string[] },
    signal?: AbortSignal,
  ): Promise<void> {
    const group = compact({
      add_volumes: change.add?.length ? change.add.join(',') : undefined,
      remove_volumes: change.remove?.length ? change.remove.join(',') : undefined,
    });
    await this.call('group.update', 'PUT', `/groups/${enc(id)}`, CINDER_MICROVERSION_GROUPS, {
      body: { group },
      signal,
    });
  }

  async deleteGroup(id: string, signal?: AbortSignal): Promise<void> {
    const body = { delete: { 'delete-volumes': false } };
    await this.call('group.delete', 'POST', `/groups/${enc(id)}/action`, CINDER_MICROVERSION_GROUPS, { body, signal });
  }

  async createGroupSnapshot(
    req: { groupId: string; name: string; description?: string },
    signal?: AbortSignal,
  ): Promise<{ id: string }> {
    const group_snapshot = compact({ group_id: req.groupId, name: req.name, description: req.description });
    const data = await this.call<{ group_snapshot: { id: string } }>(
      'group-snapshot.create',
      'POST',
      '/group_snapshots',
      CINDER_MICROVERSION_GROUP_SNAPSHOTS,
      {
        body: { group_snapshot },
        signal,
      },
    );
    return data.group_snapshot;
  }

  async getGroupSnapshot(id: string, signal?: AbortSignal): Promise<CinderGroupSnapshot> {
    const path = `/group_snapshots/${enc(id)}`;
    return (
      await this.call<{ group_snapshot: CinderGroupSnapshot }>(
        'group-snapshot.get',
        'GET',
        path,
        CINDER_MICROVERSION_GROUP_SNAPSHOTS,
        { signal },
      )
    ).group_snapshot;
  }

  async listGroupSnapshotsByName(name: string, signal?: AbortSignal): Promise<CinderGroupSnapshot[]> {
    const data = await this.call<{ group_snapshots: CinderGroupSnapshot[] }>(
      'group-snapshot.list',
      'GET',
      '/group_snapshots/detail',
      CINDER_MICROVERSION_GROUP_SNAPSHOT_FILTERS,
      {
        params: { name, limit: BY_NAME_LIMIT },
        signal,
      },
    );
    return data.group_snapshots.filter((g) => g.name === name);
  }

  async deleteGroupSnapshot(id: string, signal?: AbortSignal): Promise<void> {
    await this.call(
      'group-snapshot.delete',
      'DELETE',
      `/group_snapshots/${enc(id)}`,
      CINDER_MICROVERSION_GROUP_SNAPSHOTS,
      { signal },
    );
  }

  async listSnapshotsByName(name: string, signal?: AbortSignal): Promise<CinderMemberSnapshot[]> {
    const data = await this.call<{ snapshots: CinderMemberSnapshot[] }>(
      'snapshot.list',
      'GET',
      '/snapshots/detail',
      CINDER_MICROVERSION_GROUP_SNAPSHOTS,
      {
        params: { name, limit: BY_NAME_LIMIT },
        signal,
      },
    );
    return data.snapshots.filter((s) => s.name === name);
  }

  async getSnapshot(id: string, signal?: AbortSignal): Promise<CinderMemberSnapshot> {
    return (
      await this.call<{ snapshot: CinderMemberSnapshot }>(
        'snapshot.get',
        'GET',
        `/snapshots/${enc(id)}`,
        CINDER_MICROVERSION_GROUP_SNAPSHOTS,
        { signal },
      )
    ).snapshot;
  }

  async getVolume(id: string, signal?: AbortSignal): Promise<CinderGroupedVolume> {
    return (
      await this.call<{ volume: CinderGroupedVolume }>(
        'volume.get',
        'GET',
        `/volumes/${enc(id)}`,
        CINDER_MICROVERSION_GROUPS,
        { signal },
      )
    ).volume;
  }

  private async call<T = unknown>(
    operation: string,
    method: HttpMethod,
    path: string,
    microversion: string,
    o: { body?: unknown; params?: Record<string, string | number | undefined>; signal?: AbortSignal },
  ): Promise<T> {
    const base = await this.deps.keystone.endpoint(this.serviceTypes, o.signal);
    const res = await this.deps.http.request<T>({
      service: 'cinder',
      operation,
      method,
      url: base + path,
      params: o.params && compact(o.params),
      headers: { 'OpenStack-API-Version': `volume ${microversion}` },
      body: o.body,
      signal: o.signal,
      auth: this.deps.keystone,
    });
    return res.data;
  }
}

const enc = encodeURIComponent;

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
