/**
 * Scale: 200 volumes created and attached concurrently over 20 simulated servers, then detached and deleted,
 * every call over the gRPC socket of the real plugin process (`node bin/cinder-csi-plugin`, controller only),
 * against the simulator with realistic per-transition delays (create 2 s, attach 1.5 s, detach 1 s, delete 1 s;
 * no device plane). Per phase: throughput against the simulator's capacity, p50/p99 per RPC, errors, and
 * OpenStack requests per volume from the simulator's counters; overall: the plugin's peak RSS (VmHWM).
 *
 * Capacity, measured. Before each phase the same cloud requests the driver's phase needs (create, attach, detach,
 * delete: only the mutating one per volume) are sent straight to a second simulator with the same delays, all at
 * once, from the client thread with nothing around them: no gRPC, no lookups, no polling, and the end of each
 * transition read from the simulator's own history, so no detection lag either. Its wall (first request sent
 * to the last transition done) is the best any driver could do against this simulator on this machine at that
 * moment: the transition delay D plus the time the simulator itself needs to take N requests. Capacity =
 * N / that wall; efficiency = that wall / the driver's wall (first call sent to last answer). Target >= 0.90.
 * The nominal capacity N / D (a simulator that takes requests in no time) is printed beside it ("eff N/D").
 *
 * Floor. N concurrent ControllerGetCapabilities calls, answered by the plugin without any cloud request
 * (median of 3 bursts, just before the phase): what the gRPC round trips alone cost, which the measured
 * capacity leaves to the driver's account.
 *
 * Run: `npm run bench:scale` (no root needed). `--volumes N` (default 200), `--servers N` (default 20).
 * Writes bench/results/scale.json. Not part of the test suite's pass/fail.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../src/simulator';
import { Worker } from 'node:worker_threads';
import type { Batch, BatchResult, DirectOp } from './scale-client';
import {
  cpuMsOf,
  imageNodeFlags,
  memoryOf,
  pad,
  probeUntilReady,
  quantile,
  REPO_ROOT,
  spawnPlugin,
} from './process-helpers';

const DELAYS = { volumeCreate: 2000, attach: 1500, detach: 1000, volumeDelete: 1000 };
const GIB = 1024 ** 3;
/** Per-call deadline, as the sidecars set one; generous, so a slow call shows as latency, not as an error. */
const CALL_DEADLINE_MS = 120_000;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

interface PhaseResult {
  rpc: string;
  cloudMs: number;
  wallMs: number;
  opsPerSec: number;
  /** Wall of the same cloud requests sent straight to the simulator (see "Capacity, measured"). */
  idealWallMs: number;
  capacityOpsPerSec: number;
  /** idealWallMs / wallMs: the target's measure. */
  efficiency: number;
  /** N / D and D / wallMs: against a simulator that would take requests in no time. */
  nominalCapacityOpsPerSec: number;
  nominalEfficiency: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Phase start to the last request reaching the cloud (its first status change): how fast the driver fanned out. */
  lastArrivalMs: number;
  /** From each volume's transition to its answer: how late the driver noticed; p50 and p99. */
  lagP50Ms: number;
  lagP99Ms: number;
  /** Median wall of N concurrent ControllerGetCapabilities calls just before the phase (see Floor). */
  floorMs: number;
  /** CPU ms the plugin process and this process (simulator + gRPC client) used during the phase. */
  pluginCpuMs: number;
  benchCpuMs: number;
  errors: number;
  errorSamples: string[];
  requests: Record<string, number>;
  requestsPerVolume: number;
}

/** When volume `id` entered `status` in `sim`'s history, first time at or after `since`; undefined if it has not. */
function transitionAt(sim: Simulator, id: string, status: string, since: number): number | undefined {
  return sim.volumeHistory(id).find((x) => x.at >= since && x.status === status)?.at;
}

async function main(): Promise<void> {
  const volumes = arg('--volumes', 200);
  const serverCount = arg('--servers', 20);
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  const sim = await startSimulator({ delays: DELAYS });
  const servers = Array.from({ length: serverCount }, (_, i) => sim.addServer({ name: `scale-node-${i}` }));
  // The measured capacity's own cloud, in this thread like the first: the driver's lists never see its volumes.
  const idealSim = await startSimulator({ delays: DELAYS });
  const idealServers = Array.from({ length: serverCount }, (_, i) => idealSim.addServer({ name: `ideal-node-${i}` }));
  const confPath = join(dir, 'cloud.conf');
  writeFileSync(confPath, sim.cloudConf(), { mode: 0o600 });
  const socket = join(dir, 'csi.sock');
  const plugin = spawnPlugin([
    '--endpoint',
    `unix://${socket}`,
    '--cloud-config',
    confPath,
    '--provide-node-service=false',
    '--log-level',
    'warn',
  ]);
  let peakSampledMiB = 0;
  const sampler = setInterval(() => {
    try {
      peakSampledMiB = Math.max(peakSampledMiB, memoryOf(plugin.pid).rssMiB);
    } catch {
      // The process is gone; stop() follows.
    }
  }, 100);
  try {
    await probeUntilReady(plugin, socket);
    const startedRss = memoryOf(plugin.pid).rssMiB;
    const worker = new Worker(join(__dirname, 'scale-client.js'), {
      workerData: { endpoint: `unix://${socket}`, cloudConf: idealSim.cloudConf() },
    });
    const runBatch = (batch: Batch) =>
      new Promise<BatchResult>((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', (r: BatchResult) => {
          worker.off('error', reject);
          resolve(r);
        });
        worker.postMessage(batch);
      });
    const csiBatch = (rpc: string, requests: object[]): Batch => ({
      kind: 'csi',
      rpc,
      requests,
      deadlineMs: CALL_DEADLINE_MS,
    });
    const idealIds: string[] = new Array(volumes);
    let tokensOutsidePhases = 0;
    const cap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    const ids: string[] = new Array(volumes);
    const phases: PhaseResult[] = [];

    /** The phase's cloud requests straight to idealSim; resolves with first send to last `to` transition, ms. */
    async function idealPhase(op: DirectOp, to: string): Promise<number> {
      const b = await runBatch({
        kind: 'direct',
        op,
        volumes: Array.from({ length: volumes }, (_, i) => ({
          id: idealIds[i],
          name: `ideal-${i}`,
          server: idealServers[i % serverCount],
        })),
      });
      const failed = b.outcomes.find((o) => o.error !== undefined);
      if (failed) throw new Error(`direct ${op} failed: ${failed.error}`);
      if (op === 'create') b.outcomes.forEach((o, i) => (idealIds[i] = (o.res as { id: string }).id));
      const doneAt = (id: string) => transitionAt(idealSim, id, to, b.startedAt);
      for (
        const end = Date.now() + 60_000;
        idealIds.some((id) => doneAt(id) === undefined);
        await new Promise((r) => setTimeout(r, 5))
      ) {
        if (Date.now() > end) throw new Error(`direct ${op}: not every volume reached ${to} within 60 s`);
      }
      return Math.max(...idealIds.map((id) => doneAt(id)!)) - b.startedAt;
    }

    /** `from`/`to`: the statuses that open and close this phase's transition in the simulator's history. */
    async function phase(
      rpc: string,
      op: DirectOp,
      cloudMs: number,
      from: string,
      to: string,
      request: (i: number) => object,
      onAnswer?: (i: number, res: unknown) => void,
    ): Promise<void> {
      const idealWallMs = await idealPhase(op, to);
      const bursts: number[] = [];
      for (let b = 0; b < 3; b++)
        bursts.push(
          (
            await runBatch(
              csiBatch(
                'ControllerGetCapabilities',
                Array.from({ length: volumes }, () => ({})),
              ),
            )
          ).wallMs,
        );
      const floorMs = quantile(bursts, 0.5);
      tokensOutsidePhases += sim.counters()['keystone.token.create'] ?? 0;
      sim.resetCounters();
      const latencies: number[] = [];
      const answeredAt: number[] = new Array(volumes);
      const startedAt = Date.now();
      const cpu0 = cpuMsOf(plugin.pid);
      const ownCpu0 = process.cpuUsage();
      const errorSamples: string[] = [];
      let errors = 0;
      const batch = await runBatch(
        csiBatch(
          rpc,
          Array.from({ length: volumes }, (_, i) => request(i)),
        ),
      );
      const wallMs = batch.wallMs;
      batch.outcomes.forEach((o, i) => {
        if (o.error === undefined) onAnswer?.(i, o.res);
        else {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(o.error);
        }
        latencies.push(o.ms);
        answeredAt[i] = o.at;
      });
      const pluginCpuMs = cpuMsOf(plugin.pid) - cpu0;
      const ownCpu = process.cpuUsage(ownCpu0);
      const benchCpuMs = (ownCpu.user + ownCpu.system) / 1000;
      const arrivals: number[] = [];
      const lags: number[] = [];
      ids.forEach((id, i) => {
        const opened = transitionAt(sim, id, from, startedAt);
        const closed = transitionAt(sim, id, to, startedAt);
        if (opened !== undefined) arrivals.push(opened - startedAt);
        if (closed !== undefined) lags.push(answeredAt[i] - closed);
      });
      const requests = Object.fromEntries(
        Object.entries(sim.counters()).filter(([k, v]) => v > 0 && !k.startsWith('interface.')),
      );
      const total = Object.values(requests).reduce((a, b) => a + b, 0);
      phases.push({
        rpc,
        cloudMs,
        wallMs,
        opsPerSec: volumes / (wallMs / 1000),
        idealWallMs,
        capacityOpsPerSec: volumes / (idealWallMs / 1000),
        efficiency: idealWallMs / wallMs,
        nominalCapacityOpsPerSec: volumes / (cloudMs / 1000),
        nominalEfficiency: cloudMs / wallMs,
        floorMs,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: Math.max(...latencies),
        pluginCpuMs,
        benchCpuMs,
        lastArrivalMs: Math.max(...arrivals),
        lagP50Ms: quantile(lags, 0.5),
        lagP99Ms: quantile(lags, 0.99),
        errors,
        errorSamples,
        requests,
        requestsPerVolume: total / volumes,
      });
    }

    const run = Date.now().toString(36);
    await phase(
      'CreateVolume',
      'create',
      DELAYS.volumeCreate,
      'creating',
      'available',
      (i) => ({
        name: `pvc-scale-${run}-${i}`,
        capacity_range: { required_bytes: String(GIB) },
        volume_capabilities: [cap],
      }),
      (i, res) => {
        ids[i] = (res as { volume: { volume_id: string } }).volume.volume_id;
      },
    );
    await phase('ControllerPublishVolume', 'attach', DELAYS.attach, 'reserved', 'in-use', (i) => ({
      volume_id: ids[i] ?? `missing-${i}`,
      node_id: servers[i % serverCount],
      volume_capability: cap,
    }));
    await phase('ControllerUnpublishVolume', 'detach', DELAYS.detach, 'detaching', 'available', (i) => ({
      volume_id: ids[i] ?? `missing-${i}`,
      node_id: servers[i % serverCount],
    }));
    await phase('DeleteVolume', 'delete', DELAYS.volumeDelete, 'deleting', 'deleted', (i) => ({
      volume_id: ids[i] ?? `missing-${i}`,
    }));
    await worker.terminate();

    const mem = memoryOf(plugin.pid);
    const left = sim.listVolumes().filter((v) => v.status !== 'deleted').length;
    const totalRequests = phases.reduce((a, p) => a + p.requestsPerVolume, 0);
    // The plugin authenticates as soon as it serves, before the first phase: those tokens count too.
    const tokens = tokensOutsidePhases + phases.reduce((a, p) => a + (p.requests['keystone.token.create'] ?? 0), 0);

    console.log(`${volumes} volumes over ${serverCount} servers; cloud delays ${JSON.stringify(DELAYS)}`);
    console.log(
      `${pad('phase', 27)}${pad('wall ms', 9)}${pad('ideal ms', 10)}${pad('ops/s', 8)}${pad('capacity', 10)}${pad('eff', 7)}${pad('eff N/D', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('errors', 8)}${pad('req/vol', 9)}${pad('fan-out', 9)}${pad('lag p50/p99', 13)}${pad('floor', 7)}cpu plugin/bench ms`,
    );
    for (const p of phases) {
      console.log(
        `${pad(p.rpc, 27)}${pad(p.wallMs.toFixed(0), 9)}${pad(p.idealWallMs.toFixed(0), 10)}${pad(p.opsPerSec.toFixed(1), 8)}${pad(p.capacityOpsPerSec.toFixed(1), 10)}` +
          `${pad(p.efficiency.toFixed(3), 7)}${pad(p.nominalEfficiency.toFixed(3), 9)}${pad(p.p50Ms.toFixed(0), 8)}${pad(p.p99Ms.toFixed(0), 8)}${pad(p.errors, 8)}${pad(p.requestsPerVolume.toFixed(2), 9)}${pad(p.lastArrivalMs.toFixed(0), 9)}${pad(`${p.lagP50Ms.toFixed(0)}/${p.lagP99Ms.toFixed(0)}`, 13)}` +
          `${pad(p.floorMs.toFixed(0), 7)}${p.pluginCpuMs.toFixed(0)}/${p.benchCpuMs.toFixed(0)}`,
      );
    }
    for (const p of phases) {
      console.log(
        `  ${p.rpc}: ${JSON.stringify(p.requests)}${p.errorSamples.length ? ` errors: ${p.errorSamples.join(' | ')}` : ''}`,
      );
    }
    const minEff = Math.min(...phases.map((p) => p.efficiency));
    const errors = phases.reduce((a, p) => a + p.errors, 0);
    const minNominal = Math.min(...phases.map((p) => p.nominalEfficiency));
    console.log(
      `lowest efficiency ${minEff.toFixed(3)} against the measured capacity (target >= 0.90), ${minNominal.toFixed(3)} against N/D; errors ${errors} (target 0); volumes left ${left}`,
    );
    console.log(
      `OpenStack requests per volume, whole lifecycle: ${totalRequests.toFixed(2)}; Keystone tokens: ${tokens}`,
    );
    console.log(`plugin process: node ${[...imageNodeFlags(), '<cli>'].join(' ')} (the image's ENTRYPOINT)`);
    console.log(
      `plugin RSS: after start ${startedRss.toFixed(1)} MiB, peak (VmHWM) ${mem.hwmMiB.toFixed(1)} MiB (target <= 120 MB), now ${mem.rssMiB.toFixed(1)} MiB`,
    );

    const out = join(REPO_ROOT, 'bench', 'results');
    if (!existsSync(out)) mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, 'scale.json'),
      JSON.stringify(
        {
          volumes,
          servers: serverCount,
          delays: DELAYS,
          phases,
          minEfficiency: minEff,
          minNominalEfficiency: minNominal,
          errors,
          volumesLeft: left,
          requestsPerVolume: totalRequests,
          keystoneTokens: tokens,
          rss: { afterStartMiB: startedRss, peakMiB: mem.hwmMiB, peakSampledMiB, endMiB: mem.rssMiB },
        },
        null,
        2,
      ),
    );
  } finally {
    clearInterval(sampler);
    await plugin.stop();
    await sim.stop();
    await idealSim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
