/**
 * The scale benchmark's gRPC client, on its own thread: the sidecars are other processes in a cluster, and the
 * simulator (the cloud) must not wait for the client's work on one event loop, nor the client for the cloud's.
 * Receives one batch of calls at a time and answers with each call's latency, answer time and outcome.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { callUnary } from '../src/csi/proto';
import { freshClient } from './process-helpers';

export interface Batch {
  rpc: string;
  requests: object[];
  deadlineMs: number;
}

export interface CallOutcome {
  ms: number;
  /** Date.now() when the answer arrived (one clock for every thread of the process). */
  at: number;
  res?: unknown;
  error?: string;
}

export interface BatchResult {
  wallMs: number;
  outcomes: CallOutcome[];
}

const client = freshClient('Controller', (workerData as { endpoint: string }).endpoint);

parentPort!.on('message', (b: Batch) => {
  const start = performance.now();
  void Promise.all(b.requests.map(async (req): Promise<CallOutcome> => {
    const t0 = performance.now();
    try {
      const res = await callUnary(client, b.rpc, req, { deadline: Date.now() + b.deadlineMs });
      return { ms: performance.now() - t0, at: Date.now(), res };
    } catch (e) {
      return { ms: performance.now() - t0, at: Date.now(), error: (e as Error).message };
    }
  })).then((outcomes) => parentPort!.postMessage({ wallMs: performance.now() - start, outcomes } satisfies BatchResult));
});
