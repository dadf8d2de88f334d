/**
 * What every Cinder block operation receives (one cloud's clients, poll tunables, logger) and the small
 * translations they share: Cinder volume → VolumeInfo, Cinder timestamps, status families. Operations
 * themselves live in block-volumes, block-attach and block-snapshots.
 */
import type { Logger } from '../log';
import type { CinderApi, CinderVolume } from '../openstack/cinder';
import type { NovaApi } from '../openstack/nova';
import type { PollOptions } from './volume-wait';
import type { VolumeInfo, VolumeSource } from './block-types';
import type { PendingCreates } from './pending-creates';

/**
 * Cinder calls a stand-in client may lack (CinderClient has both). Used when present, skipped (with a log
 * line) when not: os-unreserve to clear a `reserved` volume left by a failed attach, and Cinder's user
 * messages (GET /messages?resource_uuid=) that explain why a volume went to `error`.
 */
export interface CinderExtras {
  unreserveVolume(id: string, signal?: AbortSignal): Promise<void>;
  /** os-detach of an attachment Nova no longer has (a deleted server, a lost mapping). */
  forgetAttachment(id: string, attachmentId: string | undefined, signal?: AbortSignal): Promise<void>;
  volumeFaultMessage(id: string, signal?: AbortSignal): Promise<string | undefined>;
}

export interface BlockContext {
  cinder: CinderApi & Partial<CinderExtras>;
  nova: NovaApi;
  log: Logger;
  wait: PollOptions;
  /** Create POSTs still unanswered, so a retry never sends a second one (absent: POSTs follow the call's signal). */
  creates?: PendingCreates;
}

/** Statuses that end every hope of the volume becoming usable without an operator. */
export function isErrorStatus(status: string): boolean {
  return status.startsWith('error');
}

/** Node (server) ids from Cinder attachments, without duplicates or blanks. */
export function attachedServers(v: CinderVolume): string[] {
  return [...new Set(v.attachments.map((a) => a.server_id).filter(Boolean))];
}

export function isAttachedTo(v: CinderVolume, serverId: string): boolean {
  return v.attachments.some((a) => a.server_id === serverId);
}

/** Where the volume came from, as CSI reports it: a backup is reported as the snapshot it was made for. */
export function sourceOf(v: CinderVolume): VolumeSource | undefined {
  if (v.snapshot_id) return { kind: 'snapshot', id: v.snapshot_id };
  if (v.backup_id) return { kind: 'snapshot', id: v.backup_id };
  if (v.source_volid) return { kind: 'volume', id: v.source_volid };
  return undefined;
}

export function toVolumeInfo(v: CinderVolume, abnormal?: string): VolumeInfo {
  return {
    id: v.id,
    name: v.name ?? '',
    sizeGiB: v.size,
    zone: v.availability_zone || undefined,
    status: v.status,
    multiattach: v.multiattach === true,
    publishedNodeIds: attachedServers(v),
    source: sourceOf(v),
    abnormal: abnormal ?? (isErrorStatus(v.status) ? `volume status is ${v.status}` : undefined),
  };
}

/** Cinder timestamps carry no zone ("2024-05-01T10:00:00.000000") and mean UTC. Unparseable → 0. */
export function parseCinderTime(s: string | undefined): number {
  if (!s) return 0;
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
  return Number.isFinite(t) ? t : 0;
}

/** Runs a clean-up step whose failure must not hide the error being reported; logs it instead. */
export async function bestEffort(log: Logger, what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.warn({ err }, `${what} failed; leaving it`);
  }
}
