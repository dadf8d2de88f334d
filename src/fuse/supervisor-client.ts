/**
 * What the node plugin uses to reach the FUSE supervisor: the FuseMountService interface, a client over the
 * supervisor's unix socket (one connection per request, so a restarted supervisor is simply reconnected to),
 * and an in-process adapter for running without a separate supervisor (demo only: mounts die with the plugin).
 */
import { createConnection } from 'node:net';
import { CodedError, Status, messageOf } from '../errors';
import type { FuseCredentials, MountSpec, MountStatus, SupervisorRequest, SupervisorResponse } from './protocol';
import type { FuseSupervisor } from './supervisor';

/** Bound on one request; a mount waits for the daemon (MOUNT_READY_TIMEOUT_MS) plus margin. */
export const SUPERVISOR_REQUEST_TIMEOUT_MS = 30_000;

/** The supervisor as the node plugin sees it. Errors are CodedErrors with the supervisor's gRPC code. */
export interface FuseMountService {
  /** Idempotent for the same spec; ALREADY_EXISTS for another mount on the target. */
  mount(spec: MountSpec, credentials: FuseCredentials): Promise<void>;
  /** Unknown or unmounted targets are success. */
  unmount(target: string): Promise<void>;
  /**
   * Gives the daemon of the mount at `target` new credentials: when they differ from its current ones it is
   * replaced under the same mount and its binds redone. FAILED_PRECONDITION when nothing is mounted there.
   */
  updateCredentials(target: string, credentials: FuseCredentials): Promise<void>;
  list(): Promise<MountStatus[]>;
}

/** Talks newline-delimited JSON to a supervisor socket. UNAVAILABLE when the supervisor is not there. */
export class SupervisorClient implements FuseMountService {
  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs = SUPERVISOR_REQUEST_TIMEOUT_MS,
  ) {}

  async mount(spec: MountSpec, credentials: FuseCredentials): Promise<void> {
    await this.request({ op: 'mount', spec, credentials });
  }

  async unmount(target: string): Promise<void> {
    await this.request({ op: 'unmount', target });
  }

  async updateCredentials(target: string, credentials: FuseCredentials): Promise<void> {
    await this.request({ op: 'credentials', target, credentials });
  }

  async list(): Promise<MountStatus[]> {
    return (await this.request({ op: 'list' })).mounts ?? [];
  }

  private request(req: SupervisorRequest): Promise<{ mounts?: MountStatus[] }> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(this.socketPath);
      let buf = '';
      const fail = (e: CodedError) => {
        sock.destroy();
        reject(e);
      };
      sock.setTimeout(this.timeoutMs, () =>
        fail(
          new CodedError(
            Status.DEADLINE_EXCEEDED,
            `FUSE supervisor did not answer ${req.op} within ${this.timeoutMs} ms`,
          ),
        ),
      );
      sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
      sock.on('error', (e) =>
        fail(new CodedError(Status.UNAVAILABLE, `FUSE supervisor at ${this.socketPath}: ${messageOf(e)}`)),
      );
      sock.on('data', (d) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        sock.end();
        let res: SupervisorResponse;
        try {
          res = JSON.parse(buf.slice(0, nl)) as SupervisorResponse;
        } catch {
          return fail(new CodedError(Status.INTERNAL, 'FUSE supervisor sent a malformed answer'));
        }
        if (res.ok) resolve(res);
        else reject(new CodedError(res.code, res.message));
      });
      sock.on('end', () => {
        if (!buf.includes('\n')) fail(new CodedError(Status.UNAVAILABLE, 'FUSE supervisor closed the connection'));
      });
    });
  }
}

/** A FuseSupervisor in this process, behind the same interface (no socket, same validation left to callers). */
export class InProcessFuseMounts implements FuseMountService {
  constructor(private readonly supervisor: FuseSupervisor) {}
  mount(spec: MountSpec, credentials: FuseCredentials): Promise<void> {
    return this.supervisor.mount(spec, credentials);
  }
  unmount(target: string): Promise<void> {
    return this.supervisor.unmount(target);
  }
  updateCredentials(target: string, credentials: FuseCredentials): Promise<void> {
    return this.supervisor.updateCredentials(target, credentials);
  }
  async list(): Promise<MountStatus[]> {
    return this.supervisor.list();
  }
}
