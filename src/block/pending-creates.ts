/**
 * Create POSTs this process sent and Cinder has not answered yet, by volume name. Cinder has no idempotency
 * key, so a POST abandoned at the caller's deadline can still create its volume after the sidecar's retry
 * found nothing by name and sent a second one: a duplicate that nobody deletes. Instead the POST is left to
 * finish (bounded by the HTTP layer's own timeout) and a retry for the same name waits for it first.
 */
import { CodedError, Status } from '../errors';
import { raceAbort } from '../openstack/abort';

export class PendingCreates {
  private readonly pending = new Map<string, Promise<unknown>>();

  /**
   * Resolves once no create POST for `name` is outstanding (whatever its outcome). Rejects with
   * DEADLINE_EXCEEDED (CANCELLED if the caller cancelled) when `signal` fires first.
   */
  async settled(name: string, signal: AbortSignal): Promise<void> {
    const p = this.pending.get(name);
    if (!p) return;
    try {
      await raceAbort(
        p.then(
          () => undefined,
          () => undefined,
        ),
        signal,
      );
    } catch (e) {
      throw waitingError(
        e,
        `an earlier create request for volume "${name}" is still unanswered by Cinder; retry later`,
      );
    }
  }

  /**
   * Sends `post` without the caller's signal and tracks it until it settles; the caller stops waiting when
   * `signal` fires (DEADLINE_EXCEEDED or CANCELLED), the POST does not.
   */
  async send<T>(name: string, post: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const p = post();
    const tracked: Promise<unknown> = p.then(
      () => this.release(name, tracked),
      () => this.release(name, tracked),
    );
    this.pending.set(name, tracked);
    try {
      return await raceAbort(p, signal);
    } catch (e) {
      if (!signal.aborted) throw e;
      throw waitingError(
        e,
        `Cinder had not answered the create request for volume "${name}"; a retry waits for it instead of creating another`,
      );
    }
  }

  /** Names with a POST outstanding, for tests. */
  get size(): number {
    return this.pending.size;
  }

  private release(name: string, p: Promise<unknown>): void {
    if (this.pending.get(name) === p) this.pending.delete(name);
  }
}

function waitingError(reason: unknown, what: string): CodedError {
  const code =
    reason instanceof CodedError && reason.code === Status.CANCELLED ? Status.CANCELLED : Status.DEADLINE_EXCEEDED;
  return new CodedError(code, `${code === Status.CANCELLED ? 'cancelled' : 'deadline exceeded'}: ${what}`);
}
