/**
 * Coalesces reads of many volumes into one list. While dozens of volumes are being waited on at once (a
 * StatefulSet scaling up, a node draining), per-volume polling costs one GET per volume every 250 ms; one
 * GET /volumes/detail answers all of them, and the by-name lookups CreateVolume makes before it creates.
 * Owns only the batching: what a volume read means stays in cinder.ts, and when to read is volume-wait.ts's.
 */
import { raceAbort } from './abort';

/** Distinct volumes read within RECENT_WINDOW_MS before reads are coalesced; below it every read is a GET. */
export const COALESCE_MIN_VOLUMES = 32;
/** How far back "read recently" reaches, ms: four poll intervals (longer when lists are spaced further apart). */
export const RECENT_WINDOW_MS = 1000;
/** How long the first read of a batch waits for others to join, ms (added to that read's latency). */
export const BATCH_WINDOW_MS = 10;
/**
 * A list is used only while it returned at most this many volumes per volume asked for: in a project with
 * thousands of volumes, a list per batch would cost the cloud more than the GETs it saves.
 */
export const LIST_WASTE_FACTOR = 4;
/**
 * Least time between the starts of two lists, ms. While reads are coalesced, waiters read again as soon as a
 * list answered (see `paced`), so this spacing, not each waiter's own cadence, sets how often the cloud is
 * asked: at most 40 lists a second however many volumes wait (fewer from a slower cloud: LIST_DUTY_FACTOR),
 * and a transition is seen within ~one spacing.
 */
export const LIST_MIN_INTERVAL_MS = 25;
/**
 * The spacing is also at least this many times the last list's duration: a cloud that takes 300 ms to list
 * is asked every 600 ms, so our lists never keep more than half of one API worker busy.
 */
export const LIST_DUTY_FACTOR = 2;

export interface VolumeReads<V extends { id: string; name?: string | null }> {
  /** One GET; rejects as the caller's GET would (NOT_FOUND when absent). */
  get(id: string, signal?: AbortSignal): Promise<V>;
  /** Every volume named `name` (Cinder's exact name filter, all pages). */
  getByName(name: string, signal?: AbortSignal): Promise<V[]>;
  /** The first page of GET /volumes/detail; `complete` when Cinder linked no next page. */
  list(): Promise<{ items: V[]; complete: boolean }>;
  /** The error `get` rejects with for a volume that does not exist (NOT_FOUND), for one a list proved gone. */
  absent(id: string): unknown;
  now?: () => number;
}

type Waiter<V> = { resolve(v: V[]): void; reject(e: unknown): void } & (
  { id: string; name?: undefined } | { name: string; id?: undefined }
);

interface Watcher<V> {
  id: string;
  stop(v: V): boolean;
  resolve(v: V): void;
  reject(e: unknown): void;
}

export class VolumeReadBatcher<V extends { id: string; name?: string | null }> {
  private readonly recent = new Map<string, number>();
  private pending: Waiter<V>[] | undefined;
  private readonly watchers = new Set<Watcher<V>>();
  private lastListSize: number | undefined;
  /** Ids in the last list that answered; undefined after a failed list (its readers fell back to GETs). */
  private lastListIds: Set<string> | undefined;
  private lastListStartedAt = Number.NEGATIVE_INFINITY;
  private lastListMs = 0;
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
    this.noteRead(id);
    if (!this.coalescing()) return this.reads.get(id, signal);
    return raceAbort(
      this.join({ id }).then((vs) => vs[0]),
      signal,
    );
  }

  /**
   * The volumes named `name`, as Cinder has them now (never from a list sent before this call). From a shared
   * list when that list was complete (a first page with no next link holds every volume, so the name filter
   * applied here is Cinder's); otherwise by Cinder's own name filter.
   */
  readByName(name: string, signal?: AbortSignal): Promise<V[]> {
    this.noteRead(`name\0${name}`);
    if (!this.coalescing()) return this.reads.getByName(name, signal);
    return raceAbort(this.join({ name }), signal);
  }

  /**
   * For a waiter that would read `id` at every list (see `paced`): resolves with the volume from the first list
   * sent after this call in which `stop(volume)` holds, without waking the caller for the lists in between.
   * `stop` sees the volume of every list, in order, as repeated reads would. When the volume is missing from a
   * list, a list fails, or lists stop paying off, resolves or rejects with one plain read instead, as `read`
   * would; so does a call made when `id` is not paced. Rejects with the signal's reason once it fires.
   */
  watch(id: string, stop: (v: V) => boolean, signal?: AbortSignal): Promise<V> {
    if (!this.paced(id)) return this.read(id, signal);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<V>((resolve, reject) => {
      const onAbort = () => {
        this.watchers.delete(w);
        reject(signal!.reason);
      };
      const done = () => {
        this.watchers.delete(w);
        signal?.removeEventListener('abort', onAbort);
      };
      const w: Watcher<V> = {
        id,
        stop,
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.watchers.add(w);
      this.noteRead(id);
      this.schedule();
    });
  }

  private noteRead(key: string): void {
    const now = this.now();
    // Re-inserted so the map stays ordered by last read, oldest first, for pruning.
    this.recent.delete(key);
    this.recent.set(key, now);
    // A slow cloud's lists are spaced further apart than the window: a waiter reading at every list must not
    // age out between two of them.
    const window = Math.max(RECENT_WINDOW_MS, 2 * this.spacing());
    for (const [k, at] of this.recent) {
      if (now - at <= window) break;
      this.recent.delete(k);
    }
  }

  /**
   * Whether the next read of `id` will be answered by a paced list (spaced as LIST_MIN_INTERVAL_MS and LIST_DUTY_FACTOR say),
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

  private join(key: { id: string } | { name: string }): Promise<V[]> {
    return new Promise<V[]>((resolve, reject) => {
      this.schedule();
      this.pending!.push({ ...key, resolve, reject } as Waiter<V>);
    });
  }

  /** Least time between the starts of two lists, ms, given how long the last one took. */
  private spacing(): number {
    return Math.max(LIST_MIN_INTERVAL_MS, LIST_DUTY_FACTOR * this.lastListMs);
  }

  /** Makes sure a list is coming: the next batch, sent after the batch window and the spacing. */
  private schedule(): void {
    if (this.pending) return;
    this.pending = [];
    const wait = this.lastListStartedAt + this.spacing() - this.now();
    setTimeout(() => void this.flush(), Math.max(BATCH_WINDOW_MS, wait));
  }

  private async flush(): Promise<void> {
    const batch = this.pending ?? [];
    this.pending = undefined;
    // Only watchers that were waiting when the list was sent may be answered by it.
    const watching = [...this.watchers];
    const listedBefore = this.lastListIds;
    let list: { items: V[]; complete: boolean } | undefined;
    let byId: Map<string, V> | undefined;
    const started = (this.lastListStartedAt = this.now());
    try {
      list = await this.reads.list();
      this.lastListMs = this.now() - started;
      this.lastListSize = list.items.length;
      byId = new Map(list.items.map((v) => [v.id, v]));
      this.lastListIds = new Set(byId.keys());
    } catch {
      // Each reader gets its own GET and so its own error, retried or not as a GET would be.
      this.lastListIds = undefined;
    }
    for (const w of batch) {
      if (w.name !== undefined) {
        if (list?.complete) w.resolve(list.items.filter((v) => v.name === w.name));
        else this.reads.getByName(w.name).then(w.resolve, w.reject);
        continue;
      }
      const v = byId?.get(w.id);
      if (v) w.resolve([v]);
      else this.readMissing(w.id, list, listedBefore).then((x) => w.resolve([x]), w.reject);
    }
    const paying = this.coalescing();
    for (const w of watching) {
      if (!this.watchers.has(w)) continue;
      const v = byId?.get(w.id);
      if (!v) {
        // Out of the watch now, so the next list does not read it a second time while its GET is out.
        this.watchers.delete(w);
        this.readMissing(w.id, list, listedBefore).then(w.resolve, w.reject);
        continue;
      }
      this.noteRead(w.id);
      let stop: boolean;
      try {
        stop = w.stop(v) || !paying;
      } catch (e) {
        w.reject(e);
        continue;
      }
      if (stop) w.resolve(v);
    }
    if (this.watchers.size > 0) this.schedule();
  }

  /**
   * A volume the list did not show. In the previous list and missing from a complete one: deleted (a list
   * shows only what a GET of this project can see, so a volume outside it, never listed, still gets its own
   * GET and its own answer). Otherwise (a failed or partial list) read with its own GET.
   */
  private readMissing(
    id: string,
    list: { complete: boolean } | undefined,
    listedBefore: Set<string> | undefined,
  ): Promise<V> {
    if (list?.complete && listedBefore?.has(id)) return Promise.reject(this.reads.absent(id));
    return this.reads.get(id);
  }
}
