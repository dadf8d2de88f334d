/**
 * Cinder v3's routing table (`/volume/v3/{project_id}/...`, and version discovery at `/volume/`), plus the
 * small read-only resources: absolute limits, volume types and user messages. Resources with state
 * machines are in cinder-volumes/-actions/-snapshots/-backups.ts.
 */
import type { SimEnv } from './env';
import { atLeast, notFound, type Reply, type RequestContext, type Route } from './http-util';
import { actionName, volumeAction } from './cinder-actions';
import { createTypeForbidden, memberExtraSpecs } from './cinder-retype';
import { createBackup, deleteBackup, listBackups, showBackup } from './cinder-backups';
import { createSnapshot, deleteSnapshot, listSnapshots, showSnapshot } from './cinder-snapshots';
import {
  assertProject,
  createVolume,
  deleteVolume,
  listVolumes,
  showVolume,
  updateVolume,
  volumeMetadata,
} from './cinder-volumes';
import { cinderTime, type VolumeType } from './state';
import * as groups from './cinder-groups';
import { showQuotaSet } from './cinder-quotas';

/** The microversions of Cinder 21 (Zed), the release of the machine's real OpenStack. */
export const CINDER_MIN_VERSION: [number, number] = [3, 0];
export const CINDER_MAX_VERSION: [number, number] = [3, 70];
/** Backup quotas are not simulated; the limits report Cinder's defaults. */
const BACKUP_LIMITS = { maxTotalBackups: 10, maxTotalBackupGigabytes: 1000 };

function versionsBody(env: SimEnv): unknown {
  return {
    versions: [
      {
        id: 'v3.0',
        status: 'CURRENT',
        version: CINDER_MAX_VERSION.join('.'),
        min_version: CINDER_MIN_VERSION.join('.'),
        updated: '2022-08-31T00:00:00Z',
        links: [
          { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
          { rel: 'self', href: `${env.baseUrl}/volume/v3/` },
        ],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
      },
    ],
  };
}

function limits(env: SimEnv): Reply {
  const { state } = env;
  const absolute = {
    maxTotalVolumes: state.quota.volumes,
    maxTotalSnapshots: state.quota.snapshots,
    maxTotalVolumeGigabytes: state.quota.gigabytes,
    ...BACKUP_LIMITS,
    totalVolumesUsed: state.volumes.size,
    totalSnapshotsUsed: state.snapshots.size,
    totalGigabytesUsed: state.usedGigabytes(),
    totalBackupsUsed: state.backups.size,
    totalBackupGigabytesUsed: [...state.backups.values()].reduce((gb, b) => gb + b.size, 0),
  };
  return { status: 200, body: { limits: { rate: [], absolute } } };
}

/**
 * A volume type as a project member sees it: no `qos_specs_id`, and the access flag only in the list
 * (observed on openstack-loopback (Cinder 21/Nova 26)).
 */
function typeView(t: VolumeType, inList: boolean): unknown {
  const view: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    is_public: true,
    description: t.description,
    extra_specs: memberExtraSpecs(t),
  };
  if (inList) view['os-volume-type-access:is_public'] = true;
  return view;
}

function showType(env: SimEnv, ctx: RequestContext): Reply {
  const t = env.state.volumeTypes.find(
    (x) => x.id === ctx.params.id || (ctx.params.id === 'default' && x.name === '__DEFAULT__'),
  );
  if (!t) throw notFound(`Volume type ${ctx.params.id} could not be found.`);
  return { status: 200, body: { volume_type: typeView(t, false) } };
}

/** User messages (3.3+): how a real cloud tells a user why a volume ended in `error`. */
function listMessages(env: SimEnv, ctx: RequestContext): Reply {
  if (!atLeast(ctx, '3.3')) throw notFound('The resource could not be found.');
  const uuid = ctx.query.get('resource_uuid');
  const messages = env.state.messages
    .filter((m) => uuid === null || m.resourceUuid === uuid)
    .map((m) => ({
      id: m.id,
      event_id: m.eventId,
      user_message: m.userMessage,
      message_level: 'ERROR',
      resource_type: 'VOLUME',
      resource_uuid: m.resourceUuid,
      created_at: cinderTime(m.createdAt),
      guaranteed_until: cinderTime(m.createdAt + 30 * 24 * 3600 * 1000),
      request_id: `req-${m.id}`,
      links: [{ href: `${ctx.endpoint}/messages/${m.id}`, rel: 'self' }],
    }));
  return { status: 200, body: { messages } };
}

const P = '^/v3/(?<project>[^/]+)';
/** Volume actions with an operation name of their own (counters, fault injection). */
const ACTION_OPS: Record<string, string> = { 'os-extend': 'cinder.volume.extend', 'os-retype': 'cinder.volume.retype' };

function route(method: string, path: string, op: Route['op'], handle: Route['handle']): Route {
  return { method, pattern: new RegExp(`${P}${path}/?$`), op, auth: true, handle };
}

export function cinderRoutes(env: SimEnv): Route[] {
  const scoped = (fn: (ctx: RequestContext) => Reply) => (ctx: RequestContext) => {
    assertProject(ctx);
    return fn(ctx);
  };
  const id = '/(?<id>[^/]+)';
  return [
    {
      method: 'GET',
      pattern: /^\/?$/,
      op: 'cinder.versions',
      auth: false,
      handle: () => ({ status: 300, body: versionsBody(env) }),
    },
    // Observed on openstack-loopback (Cinder 21): only `/` is public; `/v3/` answers 401 without a token.
    {
      method: 'GET',
      pattern: /^\/v3\/?$/,
      op: 'cinder.versions',
      auth: true,
      handle: () => ({ status: 200, body: versionsBody(env) }),
    },
    route(
      'POST',
      '/volumes',
      'cinder.volume.create',
      scoped((c) => createVolume(env, c)),
    ),
    route(
      'GET',
      '/volumes',
      'cinder.volume.list',
      scoped((c) => listVolumes(env, c, false)),
    ),
    route(
      'GET',
      '/volumes/detail',
      'cinder.volume.list',
      scoped((c) => listVolumes(env, c, true)),
    ),
    route(
      'GET',
      `/volumes${id}`,
      'cinder.volume.get',
      scoped((c) => showVolume(env, c)),
    ),
    route(
      'PUT',
      `/volumes${id}`,
      'cinder.volume.update',
      scoped((c) => updateVolume(env, c)),
    ),
    route(
      'DELETE',
      `/volumes${id}`,
      'cinder.volume.delete',
      scoped((c) => deleteVolume(env, c)),
    ),
    route(
      'POST',
      `/volumes${id}/action`,
      (c) => ACTION_OPS[actionName(c.body) ?? ''] ?? 'cinder.volume.action',
      scoped((c) => volumeAction(env, c)),
    ),
    route(
      'GET',
      `/volumes${id}/metadata`,
      'cinder.volume.get-metadata',
      scoped((c) => volumeMetadata(env, c)),
    ),
    route(
      'POST',
      `/volumes${id}/metadata`,
      'cinder.volume.update-metadata',
      scoped((c) => volumeMetadata(env, c)),
    ),
    route(
      'PUT',
      `/volumes${id}/metadata`,
      'cinder.volume.update-metadata',
      scoped((c) => volumeMetadata(env, c)),
    ),
    route(
      'POST',
      '/snapshots',
      'cinder.snapshot.create',
      scoped((c) => createSnapshot(env, c)),
    ),
    route(
      'GET',
      '/snapshots',
      'cinder.snapshot.list',
      scoped((c) => listSnapshots(env, c, false)),
    ),
    route(
      'GET',
      '/snapshots/detail',
      'cinder.snapshot.list',
      scoped((c) => listSnapshots(env, c, true)),
    ),
    route(
      'GET',
      `/snapshots${id}`,
      'cinder.snapshot.get',
      scoped((c) => showSnapshot(env, c)),
    ),
    route(
      'DELETE',
      `/snapshots${id}`,
      'cinder.snapshot.delete',
      scoped((c) => deleteSnapshot(env, c)),
    ),
    route(
      'POST',
      '/backups',
      'cinder.backup.create',
      scoped((c) => createBackup(env, c)),
    ),
    route(
      'GET',
      '/backups',
      'cinder.backup.list',
      scoped((c) => listBackups(env, c, false)),
    ),
    route(
      'GET',
      '/backups/detail',
      'cinder.backup.list',
      scoped((c) => listBackups(env, c, true)),
    ),
    route(
      'GET',
      `/backups${id}`,
      'cinder.backup.get',
      scoped((c) => showBackup(env, c)),
    ),
    route(
      'DELETE',
      `/backups${id}`,
      'cinder.backup.delete',
      scoped((c) => deleteBackup(env, c)),
    ),
    route(
      'GET',
      '/group_types',
      'cinder.group-type.list',
      scoped((c) => groups.listGroupTypes(env, c)),
    ),
    route(
      'POST',
      '/group_types',
      'cinder.group-type.create',
      scoped((c) => groups.createGroupType(env, c)),
    ),
    route(
      'GET',
      `/group_types${id}`,
      'cinder.group-type.get',
      scoped((c) => groups.showGroupType(env, c)),
    ),
    route(
      'POST',
      '/groups',
      'cinder.group.create',
      scoped((c) => groups.createGroup(env, c)),
    ),
    route(
      'GET',
      '/groups',
      'cinder.group.list',
      scoped((c) => groups.listGroups(env, c, false)),
    ),
    route(
      'GET',
      '/groups/detail',
      'cinder.group.list',
      scoped((c) => groups.listGroups(env, c, true)),
    ),
    route(
      'GET',
      `/groups${id}`,
      'cinder.group.get',
      scoped((c) => groups.showGroup(env, c)),
    ),
    route(
      'PUT',
      `/groups${id}`,
      'cinder.group.update',
      scoped((c) => groups.updateGroup(env, c)),
    ),
    route(
      'POST',
      `/groups${id}/action`,
      'cinder.group.action',
      scoped((c) => groups.groupAction(env, c)),
    ),
    route(
      'POST',
      '/group_snapshots',
      'cinder.group-snapshot.create',
      scoped((c) => groups.createGroupSnapshot(env, c)),
    ),
    route(
      'GET',
      '/group_snapshots',
      'cinder.group-snapshot.list',
      scoped((c) => groups.listGroupSnapshots(env, c, false)),
    ),
    route(
      'GET',
      '/group_snapshots/detail',
      'cinder.group-snapshot.list',
      scoped((c) => groups.listGroupSnapshots(env, c, true)),
    ),
    route(
      'GET',
      `/group_snapshots${id}`,
      'cinder.group-snapshot.get',
      scoped((c) => groups.showGroupSnapshot(env, c)),
    ),
    route(
      'DELETE',
      `/group_snapshots${id}`,
      'cinder.group-snapshot.delete',
      scoped((c) => groups.deleteGroupSnapshot(env, c)),
    ),
    route(
      'GET',
      '/limits',
      'cinder.limits.get',
      scoped(() => limits(env)),
    ),
    route(
      'GET',
      `/os-quota-sets${id}`,
      'cinder.quota-set.get',
      scoped((c) => showQuotaSet(env, c)),
    ),
    route(
      'GET',
      '/types',
      'cinder.types.list',
      scoped(() => ({ status: 200, body: { volume_types: env.state.volumeTypes.map((t) => typeView(t, true)) } })),
    ),
    route(
      'POST',
      '/types',
      'cinder.types.create',
      scoped(() => createTypeForbidden()),
    ),
    route(
      'GET',
      `/types${id}`,
      'cinder.types.get',
      scoped((c) => showType(env, c)),
    ),
    route(
      'GET',
      '/messages',
      'cinder.message.list',
      scoped((c) => listMessages(env, c)),
    ),
    route(
      'GET',
      '/os-availability-zone',
      'cinder.availability-zone.list',
      scoped(() => ({
        status: 200,
        body: {
          availabilityZoneInfo: env.state.availabilityZones.map((zoneName) => ({
            zoneName,
            zoneState: { available: true },
          })),
        },
      })),
    ),
  ];
}
