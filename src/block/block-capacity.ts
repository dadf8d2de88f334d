/**
 * How much more a project may provision, from Cinder's quotas: the tightest of the project-wide `gigabytes`
 * quota and, for a volume type, its `gigabytes_<type>` quota, each less what is in use and reserved; and the
 * largest single volume (`per_volume_gigabytes`). Cinder's quotas are per project, not per availability zone,
 * so every zone gets the same answer. When the quota set may not be read (policy) or is not served, the
 * absolute limits (readable by any member) give the project-wide figure alone.
 */
import type { CinderApi } from '../openstack/cinder';
import {
  perTypeKey,
  quotaEntry,
  type CinderQuotaApi,
  type CinderQuotaSetUsage,
  type QuotaUsage,
} from '../openstack/cinder-limits';
import { isOpenStackError } from '../openstack/errors';
import type { Logger } from '../log';

export interface CapacityQuery {
  /** The `type` parameter (a volume type name); absent: the project-wide quota alone. */
  volumeType?: string;
}

export interface BlockCapacity {
  /** GiB that may still be provisioned; undefined when no applicable quota is finite. */
  availableGiB?: number;
  /** GiB of the largest volume (`per_volume_gigabytes`); undefined when unlimited or unknown. */
  maximumVolumeGiB?: number;
  /** The quota key that decided `availableGiB` (`limits` when only /limits was readable); undefined when unlimited. */
  from?: string;
}

/** Headroom of one quota entry; undefined for an unlimited one (-1). */
function headroom(e: QuotaUsage): number | undefined {
  if (e.limit < 0) return undefined;
  return Math.max(0, e.limit - e.in_use - (e.reserved ?? 0));
}

/** The quota set, or undefined when this cloud will not show it to us (403 by policy, 404 without the API). */
async function quotaSet(
  cinder: CinderApi & Partial<CinderQuotaApi>,
  log: Logger,
  signal: AbortSignal,
): Promise<CinderQuotaSetUsage | undefined> {
  if (!cinder.getQuotaUsage) return undefined;
  try {
    return await cinder.getQuotaUsage(signal);
  } catch (e) {
    if (isOpenStackError(e, 'forbidden') || isOpenStackError(e, 'not-found')) {
      log.debug({ err: (e as Error).message }, 'quota set not readable; capacity from the absolute limits');
      return undefined;
    }
    throw e;
  }
}

export async function blockCapacity(
  cinder: CinderApi & Partial<CinderQuotaApi>,
  q: CapacityQuery,
  log: Logger,
  signal: AbortSignal,
): Promise<BlockCapacity> {
  const set = await quotaSet(cinder, log, signal);
  if (!set) {
    const l = await cinder.getAbsoluteLimits(signal);
    const room = headroom({ limit: l.maxTotalVolumeGigabytes, in_use: l.totalGigabytesUsed, reserved: 0 });
    return { availableGiB: room, from: room === undefined ? undefined : 'limits' };
  }
  // A type without its own key (an id instead of a name, a type private to another project) is bound by
  // the project-wide quota only: quota keys carry names.
  const keys = ['gigabytes', ...(q.volumeType ? [perTypeKey('gigabytes', q.volumeType)] : [])];
  let available: number | undefined;
  let from: string | undefined;
  for (const key of keys) {
    const e = quotaEntry(set, key);
    const room = e && headroom(e);
    if (room !== undefined && (available === undefined || room < available)) {
      available = room;
      from = key;
    }
  }
  const perVolume = quotaEntry(set, 'per_volume_gigabytes');
  const maximumVolumeGiB = perVolume && perVolume.limit >= 0 ? perVolume.limit : undefined;
  return { availableGiB: available, maximumVolumeGiB, from };
}
