/**
 * How Cinder v3 renders its resources: the volume, snapshot and backup JSON (fields gated by microversion
 * as the real views are), collection paging with `limit`/`marker`/`sort` and `*_links` next links, and
 * the quota errors (413 overLimit with Retry-After: 0, as Cinder's QuotaError carries).
 */
import { ApiError, atLeast, badRequest, notFound, type RequestContext } from './http-util';
import { cinderTime, type BackupRecord, type SnapshotRecord, type SimState, type VolumeRecord } from './state';

/** Cinder's osapi_max_limit: the most items one page holds. */
export const MAX_PAGE_ITEMS = 1000;

export function volumeNotFound(id: string): ApiError {
  return new ApiError(404, `Volume ${id} could not be found.`);
}

export function quotaExceeded(message: string): ApiError {
  return new ApiError(413, message, { 'Retry-After': '0' });
}

/** Checks that `addVolumes` more volumes of `addGigabytes` fit the quota (-1: unlimited); 413 like Cinder otherwise. */
export function checkQuota(state: SimState, addVolumes: number, addGigabytes: number, addSnapshots = 0): void {
  const q = state.quota;
  if (addVolumes > 0 && q.volumes >= 0 && state.volumes.size + addVolumes > q.volumes) {
    throw quotaExceeded(
      `VolumeLimitExceeded: Maximum number of volumes allowed (${q.volumes}) exceeded for quota 'volumes'.`,
    );
  }
  if (addSnapshots > 0 && q.snapshots >= 0 && state.snapshots.size + addSnapshots > q.snapshots) {
    throw quotaExceeded(`SnapshotLimitExceeded: Maximum number of snapshots allowed (${q.snapshots}) exceeded`);
  }
  const used = state.usedGigabytes();
  if (addGigabytes > 0 && q.gigabytes >= 0 && used + addGigabytes > q.gigabytes) {
    throw quotaExceeded(
      `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. ` +
        `Requested ${addGigabytes}G, quota is ${q.gigabytes}G and ${used}G has been consumed.`,
    );
  }
}

function links(ctx: RequestContext, collection: string, id: string): unknown[] {
  return [
    { href: `${ctx.endpoint}/${collection}/${id}`, rel: 'self' },
    { href: `${ctx.endpoint.replace('/v3/', '/')}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

export function volumeSummary(ctx: RequestContext, v: VolumeRecord): unknown {
  return { id: v.id, name: v.name, links: links(ctx, 'volumes', v.id) };
}

/**
 * The volume as a project member sees it: no admin-only `migration_status`, `provider_id` or
 * `os-vol-host-attr:*` (observed on openstack-loopback (Cinder 21/Nova 26)). The create answer lacks
 * `os-vol-tenant-attr:tenant_id` (`created`), which only show and detail add.
 */
export function volumeView(
  ctx: RequestContext,
  state: SimState,
  v: VolumeRecord,
  created = false,
): Record<string, unknown> {
  const type = state.volumeTypes.find((t) => t.name === v.volumeType);
  const view: Record<string, unknown> = {
    id: v.id,
    name: v.name,
    description: v.description,
    status: v.status,
    size: v.size,
    availability_zone: v.az,
    created_at: cinderTime(v.createdAt),
    updated_at: cinderTime(v.updatedAt),
    attachments: v.attachments.map((a) => ({
      server_id: a.serverId,
      attachment_id: a.id,
      attached_at: cinderTime(a.attachedAt),
      host_name: a.hostName,
      volume_id: v.id,
      device: a.device,
      id: v.id,
    })),
    bootable: String(v.bootable),
    encrypted: false,
    links: links(ctx, 'volumes', v.id),
    metadata: { ...v.metadata },
    multiattach: v.multiattach,
    replication_status: null,
    consistencygroup_id: null,
    snapshot_id: v.snapshotId,
    source_volid: v.sourceVolid,
    user_id: ctx.token?.userId ?? null,
    volume_type: v.volumeType,
  };
  if (!created) view['os-vol-tenant-attr:tenant_id'] = state.project.id;
  if (atLeast(ctx, '3.13')) view.group_id = v.groupId ?? null;
  if (atLeast(ctx, '3.48')) {
    view.shared_targets = false;
    view.service_uuid = null;
  }
  if (atLeast(ctx, '3.63')) view.volume_type_id = type?.id ?? null;
  if (atLeast(ctx, '3.65')) view.consumes_quota = true;
  return view;
}

/** The snapshot; the create answer (`created`) lacks the os-extended-snapshot-attributes (observed on openstack-loopback (Cinder 21/Nova 26)). */
export function snapshotView(
  ctx: RequestContext,
  state: SimState,
  s: SnapshotRecord,
  created = false,
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    description: s.description,
    status: s.status,
    size: s.size,
    volume_id: s.volumeId,
    created_at: cinderTime(s.createdAt),
    updated_at: cinderTime(s.updatedAt),
    metadata: { ...s.metadata },
  };
  if (!created) {
    view['os-extended-snapshot-attributes:progress'] = s.status === 'available' ? '100%' : '0%';
    view['os-extended-snapshot-attributes:project_id'] = state.project.id;
  }
  if (atLeast(ctx, '3.14')) view.group_snapshot_id = s.groupSnapshotId ?? null;
  if (atLeast(ctx, '3.41')) view.user_id = ctx.token?.userId ?? null;
  if (atLeast(ctx, '3.65')) view.consumes_quota = true;
  return view;
}

export function backupSummary(ctx: RequestContext, b: BackupRecord): unknown {
  return { id: b.id, name: b.name, links: links(ctx, 'backups', b.id) };
}

export function backupView(ctx: RequestContext, b: BackupRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: b.id,
    name: b.name,
    description: b.description,
    status: b.status,
    size: b.size,
    volume_id: b.volumeId,
    snapshot_id: b.snapshotId,
    availability_zone: b.az,
    container: b.container,
    created_at: cinderTime(b.createdAt),
    updated_at: cinderTime(b.updatedAt),
    data_timestamp: cinderTime(b.createdAt),
    fail_reason: null,
    has_dependent_backups: false,
    is_incremental: b.incremental,
    object_count: 0,
    links: links(ctx, 'backups', b.id),
  };
  if (atLeast(ctx, '3.43')) view.metadata = { ...b.metadata };
  if (atLeast(ctx, '3.56')) view.user_id = ctx.token?.userId ?? null;
  return view;
}

interface Pageable {
  id: string;
  seq: number;
  name: string | null;
  status: string;
  size: number;
}

const SORT_KEYS = new Set(['created_at', 'id', 'name', 'status', 'size', 'updated_at']);

/**
 * The filters a non-admin may pass from microversion 3.31 on (Cinder 21's default resource_filters.json);
 * anything else is a 400. `name~` is not there by default, so the LIKE filter of 3.34 is refused too.
 * Observed on openstack-loopback (Cinder 21/Nova 26).
 */
const RESOURCE_FILTERS: Record<'volume' | 'snapshot' | 'backup', readonly string[]> = {
  volume: [
    'name',
    'status',
    'metadata',
    'bootable',
    'migration_status',
    'availability_zone',
    'group_id',
    'size',
    'created_at',
    'updated_at',
    'consumes_quota',
  ],
  snapshot: ['name', 'status', 'volume_id', 'metadata', 'availability_zone', 'consumes_quota'],
  backup: ['name', 'status', 'volume_id'],
};
/** Query keys of paging, sorting and counting, which are not filters. */
const NON_FILTER_KEYS = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'offset', 'with_count']);

/**
 * From 3.31 (RESOURCE_FILTER) Cinder answers 400 for a filter key not configured for the resource; below it
 * unknown keys are ignored. `all_tenants` is silently dropped for non-admins (Cinder bug #1917574).
 */
export function rejectUnknownFilters(ctx: RequestContext, resource: keyof typeof RESOURCE_FILTERS): void {
  if (!atLeast(ctx, '3.31')) return;
  const allowed = RESOURCE_FILTERS[resource];
  const invalid = [...new Set(ctx.query.keys())].filter(
    (k) => !NON_FILTER_KEYS.has(k) && k !== 'all_tenants' && !allowed.includes(k),
  );
  if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
}

/** The sort requested by `sort=key:dir,...` or `sort_key`/`sort_dir`; newest first by default, like Cinder. */
function sortOf(query: URLSearchParams): Array<{ key: string; desc: boolean }> {
  const spec =
    query.get('sort') ??
    (query.get('sort_key') ? `${query.get('sort_key')}:${query.get('sort_dir') ?? 'desc'}` : 'created_at:desc');
  return spec.split(',').map((part) => {
    const [key, dir = 'desc'] = part.trim().split(':');
    // Cinder's own texts (observed on openstack-loopback (Cinder 21/Nova 26)): the key is not named.
    if (!SORT_KEYS.has(key)) throw badRequest('Invalid input received: Invalid sort key');
    if (dir !== 'asc' && dir !== 'desc')
      throw badRequest("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.");
    return { key, desc: dir === 'desc' };
  });
}

function compare<T extends Pageable>(a: T, b: T, key: string): number {
  switch (key) {
    case 'name':
    case 'status':
    case 'id':
      return String(a[key] ?? '').localeCompare(String(b[key] ?? ''));
    case 'size':
      return a.size - b.size;
    default:
      return a.seq - b.seq; // creation order stands for created_at and updated_at: it never ties
  }
}

/** The resource named in an unknown marker's 404, by collection. */
const MARKER_RESOURCE: Record<string, string> = { volumes: 'Volume', snapshots: 'Snapshot', backups: 'Backup' };

/**
 * One page of a filtered collection and its `next` link. As Cinder does, a full page always gets a next
 * link (even when nothing follows), and an unknown marker is the resource's 404 itemNotFound ("Volume
 * <marker> could not be found."; observed on openstack-loopback (Cinder 21/Nova 26), where the simulator
 * used to answer 400).
 */
export function paginate<T extends Pageable>(
  ctx: RequestContext,
  items: T[],
  collection: string,
): { page: T[]; links?: Array<{ href: string; rel: string }> } {
  const sort = sortOf(ctx.query);
  const sorted = [...items].sort((a, b) => {
    for (const s of sort) {
      const c = compare(a, b, s.key);
      if (c !== 0) return s.desc ? -c : c;
    }
    return b.seq - a.seq;
  });
  const rawLimit = ctx.query.get('limit');
  let limit = MAX_PAGE_ITEMS;
  if (rawLimit !== null) {
    if (!/^-?\d+$/.test(rawLimit)) throw badRequest('limit param must be an integer');
    if (Number(rawLimit) < 0) throw badRequest('limit param must be positive');
    limit = Math.min(Number(rawLimit), MAX_PAGE_ITEMS);
  }
  const marker = ctx.query.get('marker');
  let start = 0;
  if (marker !== null) {
    const i = sorted.findIndex((x) => x.id === marker);
    if (i < 0)
      throw notFound(`${MARKER_RESOURCE[collection.split('/')[0]] ?? 'Resource'} ${marker} could not be found.`);
    start = i + 1;
  }
  const page = sorted.slice(start, start + limit);
  if (limit === 0 || page.length !== limit) return { page };
  const params = new URLSearchParams(ctx.query);
  params.set('limit', String(limit));
  params.set('marker', page[page.length - 1].id);
  return { page, links: [{ href: `${ctx.endpoint}/${collection}?${params.toString()}`, rel: 'next' }] };
}

/** Parses the `metadata` filter: JSON, or the Python-dict text cinderclient sends ({'k': 'v'}). */
export function metadataFilter(raw: string | null): Record<string, string> | undefined {
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(raw.replace(/'/g, '"')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    }
  } catch {
    // fall through to the 400 below
  }
  throw badRequest(`Invalid input received: Invalid metadata filter ${raw}`);
}

export function matchesMetadata(meta: Record<string, string>, want: Record<string, string> | undefined): boolean {
  return !want || Object.entries(want).every(([k, v]) => meta[k] === v);
}
