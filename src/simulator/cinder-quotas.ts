/**
 * Cinder's quota set (`GET /os-quota-sets/{project}[?usage=true]`) and the quotas beyond the project-wide
 * three that state.ts keeps: `per_volume_gigabytes` and `gigabytes_<type>`. CreateVolume, extend and snapshot
 * creation check them as Cinder does (413 overLimit). A real cloud's admin sets them with a PUT; the simulator
 * takes them from its `quota` option or the handle's setQuota() (it has no admin role).
 * The quota set's shape (every type's three keys, `groups`, `id`) as observed on openstack-loopback (Cinder 21).
 */
import type { SimEnv } from './env';
import { ApiError, type Reply, type RequestContext } from './http-util';
import { quotaExceeded } from './cinder-views';
import type { SimState } from './state';
import type { SimulatorQuota } from './types';

/** Cinder's default `groups` quota: the generic volume groups are not simulated here. */
const GROUPS_LIMIT = 10;
const UNLIMITED = -1;

interface ExtraQuotas {
  perVolumeGigabytes: number;
  /** `gigabytes_<type name>`; a type not here is unlimited. */
  typeGigabytes: Map<string, number>;
}

// Kept beside the state rather than in it: only this module reads or writes them.
const extras = new WeakMap<SimState, ExtraQuotas>();

function extraOf(state: SimState): ExtraQuotas {
  let e = extras.get(state);
  if (!e) {
    e = { perVolumeGigabytes: UNLIMITED, typeGigabytes: new Map() };
    extras.set(state, e);
  }
  return e;
}

/** Applies the given limits; the others keep theirs. -1 is unlimited, as in Cinder. */
export function setQuotas(state: SimState, q: SimulatorQuota): void {
  if (q.volumes !== undefined) state.quota.volumes = q.volumes;
  if (q.gigabytes !== undefined) state.quota.gigabytes = q.gigabytes;
  if (q.snapshots !== undefined) state.quota.snapshots = q.snapshots;
  const e = extraOf(state);
  if (q.perVolumeGigabytes !== undefined) e.perVolumeGigabytes = q.perVolumeGigabytes;
  for (const [type, limit] of Object.entries(q.typeGigabytes ?? {})) e.typeGigabytes.set(type, limit);
}

/** Gigabytes of one volume type in use: its volumes and their snapshots, as Cinder counts `gigabytes_<type>`. */
function typeUsedGigabytes(state: SimState, type: string): number {
  let gb = 0;
  for (const v of state.volumes.values()) if (v.volumeType === type) gb += v.size;
  for (const s of state.snapshots.values()) if (state.volumes.get(s.volumeId)?.volumeType === type) gb += s.size;
  return gb;
}

/**
 * Checks a new volume (or an extend to `newSizeGiB`) against `per_volume_gigabytes`, and `addGigabytes` more of
 * `type` against `gigabytes_<type>`: 413 with Cinder's texts otherwise.
 */
export function checkTypeQuota(state: SimState, type: string, addGigabytes: number, newSizeGiB?: number): void {
  const e = extraOf(state);
  if (newSizeGiB !== undefined && e.perVolumeGigabytes >= 0 && newSizeGiB > e.perVolumeGigabytes) {
    throw quotaExceeded(
      `VolumeSizeExceedsLimit: Requested volume size ${newSizeGiB}G is larger than maximum allowed limit ${e.perVolumeGigabytes}G.`,
    );
  }
  const limit = e.typeGigabytes.get(type) ?? UNLIMITED;
  if (limit < 0 || addGigabytes <= 0) return;
  const used = typeUsedGigabytes(state, type);
  if (used + addGigabytes > limit) {
    throw quotaExceeded(
      `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes_${type} quota. ` +
        `Requested ${addGigabytes}G, quota is ${limit}G and ${used}G has been consumed.`,
    );
  }
}

/** `GET /os-quota-sets/{project}`: the token's own project only (a member may not read another's: 403). */
export function showQuotaSet(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  if (ctx.params.id !== ctx.token?.projectId)
    throw new ApiError(403, `Policy doesn't allow volume_extension:quotas:show to be performed.`);
  const usage = ctx.query.get('usage')?.toLowerCase() === 'true';
  const e = extraOf(state);
  const entry = (limit: number, inUse: number) => (usage ? { limit: limit, in_use: inUse, reserved: 0 } : limit);
  const set: Record<string, unknown> = {
    volumes: entry(state.quota.volumes, state.volumes.size),
    per_volume_gigabytes: entry(e.perVolumeGigabytes, 0),
    snapshots: entry(state.quota.snapshots, state.snapshots.size),
    gigabytes: entry(state.quota.gigabytes, state.usedGigabytes()),
    backups: entry(UNLIMITED, state.backups.size),
    backup_gigabytes: entry(
      UNLIMITED,
      [...state.backups.values()].reduce((gb, b) => gb + b.size, 0),
    ),
  };
  for (const t of state.volumeTypes) {
    set[`volumes_${t.name}`] = entry(
      UNLIMITED,
      [...state.volumes.values()].filter((v) => v.volumeType === t.name).length,
    );
    set[`gigabytes_${t.name}`] = entry(e.typeGigabytes.get(t.name) ?? UNLIMITED, typeUsedGigabytes(state, t.name));
    set[`snapshots_${t.name}`] = entry(
      UNLIMITED,
      [...state.snapshots.values()].filter((s) => state.volumes.get(s.volumeId)?.volumeType === t.name).length,
    );
  }
  set.groups = entry(GROUPS_LIMIT, 0);
  set.id = ctx.params.id;
  return { status: 200, body: { quota_set: set } };
}
