/**
 * Per-volume serialization. The CSI spec lets the CO retry, and the sidecars do, so a second operation on a
 * volume (or a volume name, or a snapshot) that arrives while one is running is answered ABORTED at once
 * instead of queueing behind it. Keys are opaque strings chosen by the server's lock table.
 */
import { aborted } from './errors';

export class VolumeLocks {
  private readonly held = new Map<string, string>();

  /** Takes every key or none; throws ABORTED naming the busy key and the operation holding it. */
  acquire(keys: readonly string[], operation: string): () => void {
    for (const key of keys) {
      const holder = this.held.get(key);
      if (holder !== undefined) {
        throw aborted(`an operation (${holder}) is already in progress for ${key}; retry later`);
      }
    }
    for (const key of keys) this.held.set(key, operation);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of keys) this.held.delete(key);
    };
  }

  /** Number of keys held, for metrics and tests. */
  get size(): number {
    return this.held.size;
  }
}
