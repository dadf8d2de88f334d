/**
 * A FuseMountService whose calls wait until the supervisor is known to be the right one (`--fuse-supervisor-pod`:
 * the node plugin may still be replacing an older, empty supervisor pod when kubelet's first NodeStage arrives;
 * a mount sent to the pod being deleted would be lost with it). Calls that wait longer than the bound fail with
 * UNAVAILABLE (kubelet retries); a failed start fails every call with its reason. Later replacements of the pod
 * (an older one kept while it held mounts, once the last goes) run in exclusive(): no call in flight, none starts.
 */
import { CodedError, Status, messageOf } from '../errors';
import type { FuseCredentials, MountSpec, MountStatus } from './protocol';
import type { FuseMountService } from './supervisor-client';

/** How long one call waits for the supervisor before answering UNAVAILABLE. */
export const GATE_WAIT_MS = 20_000;

const unavailable = (why: string) => new CodedError(Status.UNAVAILABLE, `FUSE supervisor pod not ready: ${why}`);

export class GatedFuseMounts implements FuseMountService {
  private open = false;
  private failure?: string;
  private inFlight = 0;
  private onIdle?: () => void;
  /** Set while exclusive() runs; resolves when it ends. */
  private held?: Promise<void>;
  /** Called after each unmount that succeeded (the keeper checks whether an older pod is now empty). */
  afterUnmount?: () => void;

  constructor(
    private readonly inner: FuseMountService,
    private readonly ready: Promise<unknown>,
    private readonly waitMs = GATE_WAIT_MS,
  ) {
    ready.then(
      () => (this.open = true),
      (e: unknown) => (this.failure = messageOf(e)),
    );
  }

  mount(spec: MountSpec, credentials: FuseCredentials): Promise<void> {
    return this.call(() => this.inner.mount(spec, credentials));
  }
  async unmount(target: string): Promise<void> {
    await this.call(() => this.inner.unmount(target));
    this.afterUnmount?.();
  }
  updateCredentials(target: string, credentials: FuseCredentials): Promise<void> {
    return this.call(() => this.inner.updateCredentials(target, credentials));
  }
  list(): Promise<MountStatus[]> {
    return this.call(() => this.inner.list());
  }

  /**
   * Runs `fn` once no call is in flight, holding new ones until it ends (they answer UNAVAILABLE after the bound).
   * Gives up without running it (undefined) when the calls in flight do not end within the bound.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T | undefined> {
    while (this.held) await this.held;
    let release!: () => void;
    this.held = new Promise<void>((r) => (release = r));
    try {
      if (!(await this.drained())) return undefined;
      return await fn();
    } finally {
      this.held = undefined;
      release();
    }
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.waitMs;
    await this.pass();
    for (let h = this.held; h; h = this.held) await this.within(h, deadline, 'it is being replaced');
    // No await between the last look at `held` and this count, so exclusive() either sees the call or holds it.
    this.inFlight++;
    try {
      return await op();
    } finally {
      if (--this.inFlight === 0) this.onIdle?.();
    }
  }

  private drained(): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onIdle = undefined;
        resolve(false);
      }, this.waitMs);
      this.onIdle = () => {
        clearTimeout(timer);
        this.onIdle = undefined;
        resolve(true);
      };
    });
  }

  private async pass(): Promise<void> {
    if (this.open) return;
    if (this.failure !== undefined) throw unavailable(this.failure);
    try {
      await this.within(this.ready, Date.now() + this.waitMs, `still starting after ${this.waitMs} ms`);
    } catch (e) {
      if (e instanceof CodedError) throw e;
      throw unavailable(messageOf(e));
    }
  }

  /** `p`, or UNAVAILABLE saying `why` at `deadline`. */
  private async within(p: Promise<unknown>, deadline: number, why: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        p,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(unavailable(why)), Math.max(0, deadline - Date.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
