/**
 * The scale benchmark's clients, on their own thread: the sidecars are other processes in a cluster, and the
 * simulator (the cloud, on the bench's main thread) must not wait for the clients' work on one event loop.
 * Two kinds of batch: CSI calls to the plugin over gRPC, and "direct" ones, the cloud requests a phase needs
 * sent straight to the simulator with nothing else around them (no gRPC, no lookups, no waiting): what the
 * cloud itself can take, the measured capacity the driver's phase is compared with.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseCloudConfig } from '../src/config/cloud-conf';
import { callUnary } from '../src/csi/proto';
import { createCloudClients } from '../src/openstack/clients';
import { freshClient } from './process-helpers';

export type DirectOp = 'create' | 'attach' | 'detach' | 'delete';

export type Batch =
  | { kind: 'csi'; rpc: string; requests: object[]; deadlineMs: number }
  | { kind: 'direct'; op: DirectOp; volumes: Array<{ id?: string; name?: string; server?: string }> };

export interface CallOutcome {
  ms: number;
  /** Date.now() when the answer arrived (one clock for every thread of the process). */
  at: number;
  res?: unknown;
  error?: string;
}

export interface BatchResult {
  /** Date.now() when the first request was sent. */
  startedAt: number;
  wallMs: number;
  outcomes: CallOutcome[];
}

const { endpoint, cloudConf } = workerData as { endpoint: string; cloudConf: string };
const grpcClient = freshClient('Controller', endpoint);
const cloud = createCloudClients(
  parseCloudConfig([{ file: 'sim', text: cloudConf }], { requireCredentials: true }).clouds.get('')!,
);

function direct(op: DirectOp, v: { id?: string; name?: string; server?: string }): Promise<unknown> {
  switch (op) {
    case 'create':
      return cloud.cinder.createVolume({ name: v.name!, size: 1 });
    case 'attach':
      return cloud.nova.attachVolume(v.server!, v.id!);
    case 'detach':
      return cloud.nova.detachVolume(v.server!, v.id!);
    case 'delete':
      return cloud.cinder.deleteVolume(v.id!);
  }
}

async function timed(send: () => Promise<unknown>): Promise<CallOutcome> {
  const t0 = performance.now();
  try {
    const res = await send();
    return { ms: performance.now() - t0, at: Date.now(), res };
  } catch (e) {
    return { ms: performance.now() - t0, at: Date.now(), error: (e as Error).message };
  }
}

parentPort!.on('message', (b: Batch) => {
  const startedAt = Date.now();
  const start = performance.now();
  const sends =
    b.kind === 'csi'
      ? b.requests.map((req) => timed(() => callUnary(grpcClient, b.rpc, req, { deadline: Date.now() + b.deadlineMs })))
      : b.volumes.map((v) => timed(() => direct(b.op, v)));
  void Promise.all(sends).then((outcomes) =>
    parentPort!.postMessage({ startedAt, wallMs: performance.now() - start, outcomes } satisfies BatchResult),
  );
});
