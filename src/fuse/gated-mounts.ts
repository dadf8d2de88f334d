/**
 * A FuseMountService whose calls wait until the supervisor is known to be the right one (`--fuse-supervisor-pod`:
 * the node plugin may still be replacing an older, empty supervisor pod when kubelet's first NodeStage arrives;
 * a mount sent to the pod being deleted would be lost with it). Calls that wait longer than the bound fail with
 * UNAVAILABLE (kubelet retries); a failed start fails every call with its reason.
 */
import { CodedError, Status, messageOf } from '../errors';
import type { FuseCredentials, MountSpec, MountStatus } from './protocol';
import type { FuseMountService } from './supervisor-client';

/** How long one call waits for the supervisor before answering UNAVAILABLE. */
export const GATE_WAIT_MS = 20_000;

export class GatedFuseMounts implements FuseMountService {
  private open = false;
  private failure?: string;

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
    return this.pass().then(() => this.inner.mount(spec, credentials));
  }
  unmount(target: string): Promise<void> {
    return this.pass().then(() => this.inner.unmount(target));
  }
  updateCredentials(target: string, credentials: FuseCredentials): Promise<void> {
    return this.pass().then(() => this.inner.updateCredentials(target, credentials));
  }
  list(): Promise<MountStatus[]> {
    return this.pass().then(() => this.inner.list());
  }

  private async pass(): Promise<void> {
    if (this.open) return;
    const unavailable = (why: string) => new CodedError(Status.UNAVAILABLE, `FUSE supervisor pod not ready: ${why}`);
    if (this.failure !== undefined) throw unavailable(this.failure);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(unavailable(`still starting after ${this.waitMs} ms`)), this.waitMs);
        }),
      ]);
    } catch (e) {
      if (e instanceof CodedError) throw e;
      throw unavailable(messageOf(e));
    } finally {
      clearTimeout(timer);
    }
  }
}
