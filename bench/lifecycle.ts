/**
 * Lifecycle overhead and API cost: one volume through the kubelet/sidecar sequence against the simulator with
 * realistic per-transition delays, timing each RPC against the moment the simulated cloud finished (taken from
 * the simulator's status history and the by-id link's appearance). Prints a table and writes JSON.
 * Run: `npm run bench:lifecycle` (root, loop devices). Not part of the test suite's pass/fail.
 */
import { mkdirSync, rmSync, writeFileSync, watch, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startDeviceWorld } from './device-world';
import { REPO_ROOT } from './process-helpers';
import { parseFlags } from '../src/config/flags';
import { startPlugin } from '../src/main';
import { createLogger } from '../src/log';
import { callUnary, makeClient } from '../src/csi/proto';

const DELAYS = { volumeCreate: 2000, attach: 1500, deviceLink: 300, detach: 1000, volumeDelete: 1000 };
const GIB = 1024 ** 3;

/** When the reference driver's wait.ExponentialBackoff (checks at 0, d, d+d*f, ...) first sees a transition. */
export function referenceDetectMs(transitionMs: number, initialMs: number, factor: number, steps: number): number {
  let t = 0;
  let step = initialMs;
  for (let i = 0; i < steps; i++) {
    // A check at the very instant of the transition races it; the reference sees it at the next one.
    if (t > transitionMs) return t;
    t += step;
    step *= factor;
  }
  return Number.POSITIVE_INFINITY;
}

async function main(): Promise<void> {
  const { dir, byIdDir, kubeletDir, sim } = await startDeviceWorld('bench-lifecycle-', DELAYS);
  const confPath = join(dir, 'cloud.conf');
  writeFileSync(confPath, sim.cloudConf(), { mode: 0o600 });
  const flags = parseFlags([
    '--endpoint',
    `unix://${dir}/csi.sock`,
    '--cloud-config',
    confPath,
    '--kubelet-dir',
    kubeletDir,
    '--by-id-dir',
    byIdDir,
    '--metadata-url',
    sim.metadataUrl,
    '--log-level',
    'warn',
  ]);
  const plugin = await startPlugin(flags, createLogger({ level: 'warn' }));
  const controller = makeClient('Controller', plugin.endpoint);
  const node = makeClient('Node', plugin.endpoint);
  const linkSeen: { at?: number } = {};
  const watcher = watch(byIdDir, () => {
    if (linkSeen.at === undefined) linkSeen.at = Date.now();
  });

  const rows: Array<{
    step: string;
    wallMs: number;
    cloudMs: number;
    lagMs?: number;
    requests: Record<string, number>;
  }> = [];
  async function step<T>(
    name: string,
    cloudMs: number,
    fn: () => Promise<T>,
    doneAt?: (res: T) => number | undefined,
  ): Promise<T> {
    sim.resetCounters();
    const start = Date.now();
    const res = await fn();
    const end = Date.now();
    const transition = doneAt?.(res);
    rows.push({
      step: name,
      wallMs: end - start,
      cloudMs,
      lagMs: transition === undefined ? undefined : end - transition,
      requests: Object.fromEntries(
        Object.entries(sim.counters()).filter(([k, v]) => v > 0 && !k.startsWith('interface.')),
      ),
    });
    return res;
  }
  const at = (id: string, status: string) => () =>
    sim
      .volumeHistory(id)
      .filter((h) => h.status === status)
      .at(-1)?.at;
  const cap = {
    access_type: 'mount',
    mount: { fs_type: 'ext4', mount_flags: [] },
    access_mode: { mode: 'SINGLE_NODE_WRITER' },
  };
  const staging = join(kubeletDir, 'plugins/kubernetes.io/csi/cinder.csi.openstack.org/bench/globalmount');
  const target = join(kubeletDir, 'pods/bench/volumes/kubernetes.io~csi/pvc-bench/mount');

  const created = await step(
    'CreateVolume',
    DELAYS.volumeCreate,
    () =>
      callUnary<{ volume: { volume_id: string } }>(controller, 'CreateVolume', {
        name: 'pvc-bench',
        capacity_range: { required_bytes: String(GIB) },
        volume_capabilities: [cap],
      }),
    (res) => at(res.volume.volume_id, 'available')(),
  );
  const id = created.volume.volume_id;
  await step(
    'ControllerPublishVolume',
    DELAYS.attach,
    () =>
      callUnary(controller, 'ControllerPublishVolume', {
        volume_id: id,
        node_id: sim.localServerId,
        volume_capability: cap,
      }),
    at(id, 'in-use'),
  );
  await step(
    'NodeStageVolume',
    DELAYS.deviceLink,
    () => callUnary(node, 'NodeStageVolume', { volume_id: id, staging_target_path: staging, volume_capability: cap }),
    () => linkSeen.at,
  );
  await step('NodePublishVolume', 0, () =>
    callUnary(node, 'NodePublishVolume', {
      volume_id: id,
      staging_target_path: staging,
      target_path: target,
      volume_capability: cap,
      readonly: false,
    }),
  );
  await step('NodeUnpublishVolume', 0, () =>
    callUnary(node, 'NodeUnpublishVolume', { volume_id: id, target_path: target }),
  );
  await step('NodeUnstageVolume', 0, () =>
    callUnary(node, 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging }),
  );
  await step(
    'ControllerUnpublishVolume',
    DELAYS.detach,
    () => callUnary(controller, 'ControllerUnpublishVolume', { volume_id: id, node_id: sim.localServerId }),
    () => {
      const h = sim.volumeHistory(id);
      return h.filter((x) => x.status === 'available').at(-1)?.at;
    },
  );
  await step(
    'DeleteVolume',
    DELAYS.volumeDelete,
    () => callUnary(controller, 'DeleteVolume', { volume_id: id }),
    at(id, 'deleted'),
  );

  watcher.close();
  controller.close();
  node.close();
  await plugin.stop(1000);
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });

  const totalWall = rows.reduce((a, r) => a + r.wallMs, 0);
  const totalCloud = Object.values(DELAYS).reduce((a, b) => a + b, 0);
  const ref = {
    attach: referenceDetectMs(DELAYS.attach, 1000, 1.2, 15),
    detach: referenceDetectMs(DELAYS.detach, 1000, 1.2, 13),
    deviceLookup: referenceDetectMs(0, 1000, 1.1, 15),
  };
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  console.log(`${pad('step', 28)}${pad('wall ms', 10)}${pad('cloud ms', 10)}${pad('lag ms', 9)}requests`);
  for (const r of rows) {
    console.log(
      `${pad(r.step, 28)}${pad(r.wallMs, 10)}${pad(r.cloudMs, 10)}${pad(r.lagMs ?? '-', 9)}${JSON.stringify(r.requests)}`,
    );
  }
  console.log(
    `${pad('total', 28)}${pad(totalWall, 10)}${pad(totalCloud, 10)}ratio ${(totalWall / totalCloud).toFixed(3)} (target <= 1.10)`,
  );
  console.log(
    `reference backoff for the same delays: attach seen after ${ref.attach} ms (cloud ${DELAYS.attach}), detach after ${ref.detach} ms (cloud ${DELAYS.detach})`,
  );
  const out = join(REPO_ROOT, 'bench', 'results');
  if (!existsSync(out)) mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'lifecycle.json'),
    JSON.stringify(
      { delays: DELAYS, rows, totalWall, totalCloud, ratio: totalWall / totalCloud, reference: ref },
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
