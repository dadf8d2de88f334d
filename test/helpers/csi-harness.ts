/** Starts a CsiServer on a unix socket in a fresh temp dir and hands out real grpc-js clients for it. */
import { status } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CallObserver, CsiServer, type ServiceBinding } from '../../src/csi/server';
import { callUnary, type CsiServiceName, makeClient, stripSecrets, type CsiClient } from '../../src/csi/proto';
import { logSink, type LogSink } from './log-sink';

export interface CsiHarness {
  dir: string;
  socket: string;
  server: CsiServer;
  sink: LogSink;
  call<T = Record<string, unknown>>(
    service: CsiServiceName,
    rpc: string,
    request?: object,
    deadlineMs?: number,
  ): Promise<T>;
  client(service: CsiServiceName): CsiClient;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Passed to CsiServer (metrics tests). */
  observer?: CallObserver;
}

export async function startHarness(services: ServiceBinding[], opts: HarnessOptions = {}): Promise<CsiHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'csi-'));
  const socket = join(dir, 'csi.sock');
  const sink = logSink();
  const server = new CsiServer({
    endpoint: `unix://${socket}`,
    log: sink.log,
    services,
    stripSecrets,
    observer: opts.observer,
  });
  await server.start();
  const clients = new Map<CsiServiceName, CsiClient>();
  const client = (s: CsiServiceName) => {
    if (!clients.has(s)) clients.set(s, makeClient(s, `unix://${socket}`));
    return clients.get(s)!;
  };
  return {
    dir,
    socket,
    server,
    sink,
    client,
    call: (service, rpc, request = {}, deadlineMs = 30_000) =>
      callUnary(client(service), rpc, request, { deadline: Date.now() + deadlineMs }),
    async close() {
      for (const c of clients.values()) c.close();
      await server.stop(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The gRPC status name and details of a rejected call, e.g. { code: 'NOT_FOUND', details }. */
export async function codeOf(p: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: number; details?: string };
    return { code: status[err.code ?? status.UNKNOWN] as string, details: err.details ?? String(e) };
  }
  throw new Error('expected the call to fail, but it succeeded');
}
