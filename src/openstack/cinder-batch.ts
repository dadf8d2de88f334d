/**
 * Coalesces reads of many volumes into one list. While dozens of volumes are being waited on at once (a
 * StatefulSet scaling up, a node draining), per-volume polling costs one GET per volume every 250 ms; one
 * GET /volumes/detail answers all of them. Owns only the batching: what a volume read means stays in
 * cinder.ts, and when to read is volume-wait.ts's.
 */
import { raceAbort } from './abort';

/** Distinct volumes read within RECENT_WINDOW_MS before reads are coalesced; below it every read is a GET. */
export const COALESCE_MIN_VOLUMES = 32;
/** How far back "read recently" reaches, ms: four poll intervals. */
export const RECENT_WINDOW_MS = 1000;
/** How long the first read of a batch waits for others to join, ms (added to that read's latency). */
export const BATCH_WINDOW_MS = 25;
/**
 * A list is used only while it returned at most this many volumes per volume asked for: in a project with
 * thousands of volumes, a list per batch would cost the cloud more than the GETs it saves.
 */
export const LIST_WASTE_FACTOR = 4;
/**
 * Least time between the starts of two lists, ms. While reads are coalesced, waiters read again as soon as a
 * list answered (see `paced`), so this spacing, not each waiter's own cadence, sets how often the cloud is
 * asked: at most 10 lists a second however many volumes wait, and a transition is seen within ~one spacing.
 */
export const LIST_MIN_INTERVAL_MS = 100;

export interface VolumeReads<V extends { id: string }> {
  /** One GET; rejects as the caller's GET would (NOT_FOUND when absent). */
  get(id: string, signal?: AbortSignal): Promise<V>;
  /** One page of GET /volumes/detail; callers missing from it are read with `get`. */
  list(): Promise<V[]>;
  now?: () => number;
}

interface Waiter<V> {
  id: string;
  resolve(v: V): void;
  reject(e: unknown): void;
}

export class VolumeReadBatcher<V extends { id: string }> {
  private readonly recent = new Map<string, number>();
  private pending: Waiter<V>[] | undefined;
  private lastListSize: number | undefined;
  /** Ids in the last list that answered; undefined after a failed list (its readers fell back to GETs). */
  private lastListIds: Set<string> | undefined;
  private lastListStartedAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly reads: VolumeReads<V>) {
    this.now = reads.now ?? Date.now;
  }

  /**
   * The volume as the cloud has it now: never from a list sent before this call. Rejects like `get` (a
   * volume missing from the list is read with its own GET, so NOT_FOUND stays NOT_FOUND) or with the
   * signal's reason once it fires.
   */
  read(id: string, signal?: AbortSignal): Promise<V> {
    const now = this.now();
    // Re-inserted so the map stays ordered by last read, oldest first, for pruning.
    this.recent.delete(id);
    this.recent.set(id, now);
    for (const [k, at] of this.recent) {
      if (now - at <= RECENT_WINDOW_MS) break;
      this.recent.delete(k);
    }
    if (!this.coalescing()) return this.reads.get(id, signal);
    return raceAbort(this.join(id), signal);
  }

  /**
   * Whether the next read of `id` will be answered by a paced list (one every LIST_MIN_INTERVAL_MS at most),
   * so a waiter may read again at once instead of sleeping its own interval: it then sees every list, and the
   * cloud still gets one request per spacing, not one per waiter. False when reads are GETs, the last list
   * failed (a storm of fallback GETs must keep the GETs' cadence) or `id` was missing from it.
   */
  paced(id: string): boolean {
    return this.coalescing() && this.lastListIds?.has(id) === true;
  }

  private coalescing(): boolean {
    const wanted = this.recent.size;
    const listPays = this.lastListSize === undefined || this.lastListSize <= LIST_WASTE_FACTOR * wanted;
    return wanted >= COALESCE_MIN_VOLUMES && listPays;
  }

  private join(id: string): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      if (!this.pending) {
        this.pending = [];
        const spacing = this.lastListStartedAt + LIST_MIN_INTERVAL_MS - this.now();
        setTimeout(() => void this.flush(), Math.max(BATCH_WINDOW_MS, spacing));
      }
      this.pending.push({ id, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending ?? [];
    this.pending = undefined;
    let byId: Map<string, V> | undefined;
    this.lastListStartedAt = this.now();
    try {
      const volumes = await this.reads.list();
      this.lastListSize = volumes.length;
      byId = new Map(volumes.map((v) => [v.id, v]));
      this.lastListIds = new Set(byId.keys());
    } catch {
      // Each reader gets its own GET and so its own error, retried or not as a GET would be.
      this.lastListIds = undefined;
    }
    for (const w of batch) {
      const v = byId?.get(w.id);
      if (v) w.resolve(v);
      else this.reads.get(w.id).then(w.resolve, w.reject);
    }
  }
}
