/**
 * Waiting for Cinder resources to reach a status: one poller with a gentle backoff, bounded by the call's
 * AbortSignal (the gRPC deadline), failing fast on terminal states. It owns nothing but the loop; what counts
 * as done or failed is the caller's (block-volumes, block-attach, block-snapshots).
 */
import { CodedError, Status, deadlineExceeded } from '../errors';
import { abortableSleep } from '../openstack/abort';
import type { CinderApi, CinderVolume } from '../openstack/cinder';
import { isNotFound, isOpenStackError } from '../openstack/errors';

/** First pause between two GETs of the same resource, ms; also the floor (never more than one GET per this). */
export const POLL_INITIAL_MS = 250;
/** Polling stays at the initial interval this long, ms: most transitions finish within it. */
export const POLL_GROW_AFTER_MS = 5_000;
/** Growth of the interval per poll once POLL_GROW_AFTER_MS has passed. */
export const POLL_FACTOR = 1.2;
/** Longest pause between two GETs, ms. */
export const POLL_MAX_MS = 2_000;

/** Poll tunables; every field optional (tests shorten them). `initialMs` below POLL_INITIAL_MS is for tests only. */
export interface PollOptions {
  initialMs?: number;
  growAfterMs?: number;
  factor?: number;
  maxMs?: number;
  /** Injected clock and sleep, so unit tests of the schedule need not wait. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told once per finished wait (metrics); exceptions from it are ignored. */
  onWaitFinished?: (e: WaitEvent) => void;
  /**
   * True when the next read itself waits for a paced read shared with other waiters (coalesced Cinder lists):
   * the poller then reads again at once instead of sleeping, and sees every shared read.
   */
  paced?: () => boolean;
}

/** A paced read that resolves only once `stop` holds for a shared read (or with one plain read); see CinderApi.watchVolume. */
export type Watch<T> = (stop: (item: T) => boolean, signal?: AbortSignal) => Promise<T>;

/** Which transition a wait is for; 'other' covers create, delete, extend, unreserve and snapshot waits. */
export type WaitKind = 'attach' | 'detach' | 'other';

/** One finished wait, as reported to `onWaitFinished`. Carries no resource id (metrics labels stay bounded). */
export interface WaitEvent {
  kind: WaitKind;
  outcome: 'done' | 'failed' | 'timeout';
  durationMs: number;
}

export interface WaitOptions extends PollOptions {
  /** The call's signal; when it fires the wait ends with DEADLINE_EXCEEDED (CANCELLED if the caller cancelled). */
  signal?: AbortSignal;
  /** What is awaited, for messages ("volume 1234 to become available"). */
  what?: string;
  /** Pause before the first GET: the caller has just changed the resource and knows it is not there yet. */
  startWithPause?: boolean;
  /** For `onWaitFinished`; default inferred from `what` ("to be attached", "to be detached"). */
  kind?: WaitKind;
}

/** A wait on items of type T: `failOn` returns the error to throw at once for a terminal state. */
export interface PollSpec<T> extends WaitOptions {
  failOn?: (item: T) => CodedError | undefined;
  /** Used instead of another read while `paced` holds: dozens of waiters then cost nothing between lists. */
  watch?: Watch<T>;
}

/** The pause before the next poll, given how long the wait has run and the previous pause. */
export function nextPollDelay(elapsedMs: number, previousMs: number | undefined, o: PollOptions = {}): number {
  const initial = o.initialMs ?? POLL_INITIAL_MS;
  if (previousMs === undefined || elapsedMs < (o.growAfterMs ?? POLL_GROW_AFTER_MS)) return initial;
  return Math.min(o.maxMs ?? POLL_MAX_MS, Math.max(initial, previousMs * (o.factor ?? POLL_FACTOR)));
}

/**
 * Polls `get` until `accept` holds, then returns that value. A `failOn` verdict throws at once. Transient
 * read failures (5xx, resets, 429 left after the HTTP layer's own retries) are polled through; anything
 * else is thrown. When the signal fires: DEADLINE_EXCEEDED naming what was awaited and the last state seen.
 */
export async function pollUntil<T>(
  get: (signal?: AbortSignal) => Promise<T>,
  accept: (item: T) => boolean,
  describe: (item: T | undefined) => string,
  o: PollSpec<T>,
): Promise<T> {
  if (!o.onWaitFinished) return poll(get, accept, describe, o);
  const report = o.onWaitFinished;
  const started = (o.now ?? Date.now)();
  const finish = (outcome: WaitEvent['outcome']) => {
    try {
      report({ kind: o.kind ?? waitKindOf(o.what), outcome, durationMs: (o.now ?? Date.now)() - started });
    } catch {
      // A broken metrics hook must not fail the wait.
    }
  };
  try {
    const v = await poll(get, accept, describe, o);
    finish('done');
    return v;
  } catch (e) {
    const timeout = e instanceof CodedError && (e.code === Status.DEADLINE_EXCEEDED || e.code === Status.CANCELLED);
    finish(timeout ? 'timeout' : 'failed');
    throw e;
  }
}

/** The wait kind block-attach.ts's messages imply ("volume X to be attached to N"). */
function waitKindOf(what: string | undefined): WaitKind {
  if (what && / to be attached\b/.test(what)) return 'attach';
  if (what && / to be detached\b/.test(what)) return 'detach';
  return 'other';
}

async function poll<T>(
  get: (signal?: AbortSignal) => Promise<T>,
  accept: (item: T) => boolean,
  describe: (item: T | undefined) => string,
  o: PollSpec<T>,
): Promise<T> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? abortableSleep;
  const started = now();
  let last: T | undefined;
  let delay: number | undefined;
  if (o.startWithPause) {
    delay = nextPollDelay(0, undefined, o);
    await sleep(delay, o.signal).catch(() => {
      throw timedOut(o, describe(undefined), o.signal);
    });
  }
  // accept and failOn see every state a watch passes over, in order, as they would see repeated reads.
  const stop = (x: T) => accept(x) || o.failOn?.(x) !== undefined;
  let watchNext = false;
  for (;;) {
    let fresh = false;
    try {
      last = watchNext && o.watch ? await o.watch(stop, o.signal) : await get(o.signal);
      fresh = true;
    } catch (e) {
      if (o.signal?.aborted) throw timedOut(o, describe(last), o.signal);
      if (!isOpenStackError(e, 'unavailable') && !isOpenStackError(e, 'rate-limited')) throw e;
    }
    if (fresh) {
      if (accept(last as T)) return last as T;
      const fail = o.failOn?.(last as T);
      if (fail) throw fail;
    }
    delay = nextPollDelay(now() - started, delay, o);
    watchNext = fresh && o.paced?.() === true;
    if (watchNext) continue;
    try {
      await sleep(delay, o.signal);
    } catch {
      throw timedOut(o, describe(last), o.signal);
    }
  }
}

function timedOut(o: WaitOptions, last: string, signal?: AbortSignal): CodedError {
  const reason: unknown = signal?.reason;
  const text = `gave up waiting for ${o.what ?? 'the resource'}: last seen ${last}`;
  if (reason instanceof CodedError && reason.code === Status.CANCELLED) return new CodedError(Status.CANCELLED, text);
  return deadlineExceeded(text);
}

/** A volume's state in one phrase, for wait messages. */
export function describeVolume(v: CinderVolume | undefined): string {
  if (!v) return 'nothing (no answer yet)';
  const servers = v.attachments.map((a) => a.server_id).filter(Boolean);
  return `status ${v.status}${servers.length ? `, attached to ${servers.join(', ')}` : ''}`;
}

/**
 * Polls a volume until `accept(volume)` holds. NOT_FOUND while waiting is thrown (the volume was deleted under
 * us) unless the caller treats it otherwise; see {@link waitForVolumeGone}.
 */
export function waitForVolume(
  cinder: Pick<CinderApi, 'getVolume' | 'readPaced' | 'watchVolume'>,
  id: string,
  accept: (v: CinderVolume) => boolean,
  o: PollSpec<CinderVolume>,
): Promise<CinderVolume> {
  const watch: Watch<CinderVolume> | undefined = cinder.watchVolume && ((stop, s) => cinder.watchVolume!(id, stop, s));
  return pollUntil((s) => cinder.getVolume(id, s), accept, describeVolume, {
    what: `volume ${id}`,
    paced: pacedReads(cinder, id),
    watch,
    ...o,
  });
}

function pacedReads(cinder: Pick<CinderApi, 'readPaced'>, id: string): (() => boolean) | undefined {
  const paced = cinder.readPaced?.bind(cinder);
  return paced && (() => paced(id));
}

/** Polls until GET answers 404. Fails fast when the volume lands in `error_deleting`. */
export async function waitForVolumeGone(
  cinder: Pick<CinderApi, 'getVolume' | 'readPaced' | 'watchVolume'>,
  id: string,
  o: PollSpec<CinderVolume | undefined>,
): Promise<void> {
  const goneAsUndefined = async (read: Promise<CinderVolume>) => {
    try {
      return await read;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const get = (s?: AbortSignal) => goneAsUndefined(cinder.getVolume(id, s));
  const watch: Watch<CinderVolume | undefined> | undefined =
    cinder.watchVolume && ((stop, s) => goneAsUndefined(cinder.watchVolume!(id, stop, s)));
  await pollUntil(get, (v) => v === undefined, describeVolume, {
    what: `volume ${id} to be deleted`,
    paced: pacedReads(cinder, id),
    watch,
    ...o,
  });
}
