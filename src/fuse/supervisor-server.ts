/**
 * The supervisor's unix socket (mode 0600, root only): newline-delimited JSON, one response per request
 * line, in order. Requests are validated here (protocol.ts) before FuseSupervisor sees them; errors go back
 * as `{ok:false, code, message}` with the CodedError's gRPC code. Credentials are never logged.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { CodedError, Status, messageOf } from '../errors';
import type { Logger } from '../log';
import {
  MAX_REQUEST_BYTES,
  requireUnder,
  validateCredentials,
  validateMountSpec,
  type FuseCredentials,
  type SupervisorResponse,
} from './protocol';
import type { FuseSupervisor } from './supervisor';

/** Mode of the socket file: only root (the node plugin) may ask for mounts. */
export const SOCKET_MODE = 0o600;

/** Serves one FuseSupervisor on a unix socket. */
export class SupervisorServer {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly deps: { supervisor: FuseSupervisor; socketPath: string; log: Logger }) {}

  /** Replaces a stale socket file, listens and restricts the file to 0600. */
  async listen(): Promise<void> {
    await mkdir(dirname(this.deps.socketPath), { recursive: true, mode: 0o700 });
    await rm(this.deps.socketPath, { force: true });
    const server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.deps.socketPath, () => resolve());
    });
    await chmod(this.deps.socketPath, SOCKET_MODE);
    this.server = server;
  }

  /** Stops listening and drops open connections; mounts are untouched. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    let chain = Promise.resolve();
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REQUEST_BYTES && !buf.includes('\n')) {
        socket.end(`${JSON.stringify(failure(new CodedError(Status.INVALID_ARGUMENT, 'request too large')))}\n`);
        return;
      }
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        chain = chain.then(async () => {
          const res = await this.handle(line);
          if (!socket.destroyed) socket.write(`${JSON.stringify(res)}\n`);
        });
      }
    });
  }

  /** Answers one request line; never throws. */
  async handle(line: string): Promise<SupervisorResponse> {
    const { supervisor, log } = this.deps;
    let op = 'unknown';
    try {
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new CodedError(Status.INVALID_ARGUMENT, 'request is not JSON');
      }
      op = String(req?.op);
      switch (req.op) {
        case 'mount': {
          const spec = validateMountSpec(req.spec, supervisor.kubeletDir);
          await supervisor.mount(spec, validateCredentials(req.credentials, spec.provider));
          return { ok: true };
        }
        case 'unmount':
          await supervisor.unmount(requireUnder(req.target, supervisor.kubeletDir, 'target'));
          return { ok: true };
        case 'credentials':
          await supervisor.updateCredentials(
            requireUnder(req.target, supervisor.kubeletDir, 'target'),
            req.credentials as FuseCredentials,
          );
          return { ok: true };
        case 'list':
          return { ok: true, mounts: supervisor.list() };
        default:
          throw new CodedError(Status.INVALID_ARGUMENT, `op "${op}" is not one of mount, unmount, credentials, list`);
      }
    } catch (e) {
      log.warn({ op, err: messageOf(e) }, 'supervisor request failed');
      return failure(e);
    }
  }
}

function failure(e: unknown): SupervisorResponse {
  if (e instanceof CodedError) return { ok: false, code: e.code, message: e.details };
  return { ok: false, code: Status.INTERNAL, message: messageOf(e) };
}
