/**
 * Cinder's view of a project's room: the quota set with usage (`GET /os-quota-sets/{project}?usage=true`),
 * whose keys are the project-wide resources (`gigabytes`, `volumes`, `per_volume_gigabytes`, ...) and the
 * same per volume type (`gigabytes_<type name>`); and the absolute limits (`GET /limits`), which every
 * project member may read and which carry the project-wide gigabytes only. -1 means unlimited in both.
 * Shapes as observed on openstack-loopback (Cinder 21), pinned by test/integration/cinder-limits.openstack.test.ts.
 */
import type { CinderAbsoluteLimits } from './cinder-types';

/** One quota entry of `?usage=true`. `allocated` appears only with nested (hierarchical) quotas. */
export interface QuotaUsage {
  limit: number;
  in_use: number;
  reserved: number;
  allocated?: number;
}

/** `quota_set` of `?usage=true`: the project `id` and one QuotaUsage per resource key. */
export type CinderQuotaSetUsage = { id: string } & Record<string, QuotaUsage | string>;

export interface CinderQuotaApi {
  /** The quota set of the token's project with usage. Policy `volume_extension:quotas:show` (project reader by default). */
  getQuotaUsage(signal?: AbortSignal): Promise<CinderQuotaSetUsage>;
  getAbsoluteLimits(signal?: AbortSignal): Promise<CinderAbsoluteLimits>;
}

/** The entry of `key` in a quota set, when it has one. */
export function quotaEntry(set: CinderQuotaSetUsage, key: string): QuotaUsage | undefined {
  const v = set[key];
  return typeof v === 'object' && v !== null && typeof v.limit === 'number' ? v : undefined;
}

/** The quota key of a per-volume-type resource: Cinder appends the type's name. */
export const perTypeKey = (resource: 'gigabytes' | 'volumes' | 'snapshots', typeName: string) =>
  `${resource}_${typeName}`;

/** The project id of a Cinder v3 endpoint URL (`.../v3/<project_id>`), when the catalog puts it there. */
export function projectIdOfEndpoint(url: string): string | undefined {
  const m = /\/v3\/([^/]+)\/?$/.exec(url);
  return m ? decodeURIComponent(m[1]) : undefined;
}
