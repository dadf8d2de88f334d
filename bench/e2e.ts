/**
 * `npm run bench:e2e`: a StatefulSet of 1 and of 20 replicas on kube-loopback through kubelet and the
 * kubernetes-csi sidecars (the e2e suite's stack), time from apply to all pods Ready. Each size runs twice: with
 * the simulator's demo delays (Cinder create, Nova attach, the by-id link) and at --delay-scale 0, whose time is
 * the floor of the sidecars, kubelet and the driver. The split: the simulated delays on one pod's critical path,
 * the floor, and the rest; the driver's own share is the sum of its RPC durations (durationMs of its log lines)
 * on the slowest pod's chain: CreateVolume, ControllerPublishVolume, NodeStageVolume, NodePublishVolume.
 * Root, kube-loopback and `npm run build` first. Writes JSON under bench/results/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_DELAYS } from '../src/simulator/cli';
import { REPO_ROOT } from './process-helpers';
import { kubectl, readOrUndefined, waitUntil } from './kube/kube';
import { statefulSet } from './kube/scenario';
import { startStack, type Stack } from './kube/stack';

const SC = 'csi-cinder-sc-delete';
const CHAIN = ['CreateVolume', 'ControllerPublishVolume', 'NodeStageVolume', 'NodePublishVolume'];

interface Run {
  replicas: number;
  delayScale: number;
  readyMs: number;
  /** Simulated delays on one pod's path: volume create, attach, by-id link. */
  simulatedMs: number;
  /** The driver's RPC time on the slowest pod's chain. */
  driverMs: number;
}

async function once(replicas: number, delayScale: number): Promise<Run> {
  const s: Stack = await startStack({ sim: { delayScale }, fuse: false });
  const ns = `bench-${replicas}-${delayScale}-${Date.now() % 100000}`;
  const kc = (args: string[]) => kubectl(s.env.KUBECONFIG, args);
  try {
    await kc(['create', 'namespace', ns]);
    await kc(['apply', '-f', join(REPO_ROOT, 'manifests', 'storageclasses', `${SC}.yaml`)]);
    const from = Date.now();
    await s.api.apps.createNamespacedStatefulSet({
      namespace: ns,
      body: statefulSet('bench', replicas, SC, s.env.KUBE_LOOPBACK_BUSYBOX) as never,
    });
    await waitUntil(
      `${replicas} pods Ready`,
      600_000,
      async () => {
        const pods = (await s.api.core.listNamespacedPod({ namespace: ns })).items;
        const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === replicas ? true : undefined;
      },
      100,
    );
    const readyMs = Date.now() - from;
    // The driver's RPCs per volume, from its JSON log lines (controller and node), successful calls only.
    // CreateVolume logs the PV name (the volume has no id yet); the PVs map names to volume ids.
    const idOfPv = new Map(
      (await s.api.core.listPersistentVolume()).items
        .filter((pv) => pv.spec?.claimRef?.namespace === ns)
        .map((pv) => [pv.metadata!.name!, pv.spec!.csi!.volumeHandle]),
    );
    const perVolume = new Map<string, number>();
    for (const name of ['controller', 'node']) {
      for (const line of s.procs.get(name)!.log().split('\n')) {
        if (!line.startsWith('{')) continue;
        const l = JSON.parse(line) as {
          rpc?: string;
          durationMs?: number;
          code?: string;
          volume_id?: string;
          name?: string;
        };
        if (!l.rpc || !CHAIN.includes(l.rpc) || l.code !== 'OK' || l.durationMs === undefined) continue;
        const id = l.volume_id ?? (l.name ? idOfPv.get(l.name) : undefined);
        if (id) perVolume.set(id, (perVolume.get(id) ?? 0) + l.durationMs);
      }
    }
    const d = DEMO_DELAYS;
    return {
      replicas,
      delayScale,
      readyMs,
      simulatedMs: (d.volumeCreate + d.attach + d.deviceLink) * delayScale,
      driverMs: Math.max(0, ...perVolume.values()),
    };
  } finally {
    await kc(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
    await waitUntil(
      'the bench PVs gone',
      300_000,
      async () => {
        const left = (await s.api.core.listPersistentVolume()).items.filter(
          (pv) => pv.spec?.claimRef?.namespace === ns,
        );
        return left.length === 0 && !(await readOrUndefined(() => s.api.core.readNamespace({ name: ns })))
          ? true
          : undefined;
      },
      500,
    ).catch((e) => process.stderr.write(`cleanup: ${String(e)}\n`));
    await s.stop();
  }
}

async function main(): Promise<void> {
  const rows: Array<Record<string, number | string>> = [];
  for (const replicas of [1, 20]) {
    const real = await once(replicas, 1);
    const floor = await once(replicas, 0);
    const rest = real.readyMs - real.simulatedMs - floor.readyMs;
    rows.push({
      replicas,
      'apply→Ready ms': real.readyMs,
      'simulated delays ms': real.simulatedMs,
      'floor (delay-scale 0) ms': floor.readyMs,
      'rest ms': rest,
      'rest %': Math.round((1000 * rest) / real.readyMs) / 10,
      'driver RPCs on the path ms': Math.round(real.driverMs),
      'driver %': Math.round((1000 * real.driverMs) / real.readyMs) / 10,
    });
    process.stdout.write(`${JSON.stringify(rows[rows.length - 1])}\n`);
  }
  console.table(rows);
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `e2e-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(rows, null, 2));
}

main().catch((e) => {
  process.stderr.write(`bench:e2e failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
