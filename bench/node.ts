/**
 * Node: (a) NodeStage of a 10 GiB volume (sparse loop device from the simulator's device plane, link 0.3 s after
 * attach): from the by-id link's appearance (inotify) to NodeStage's answer, and the share of that spent in
 * mkfs (the node's own exec, timed around each command), for ext4 and xfs; (b) the node plugin's RSS, the real
 * CLI node-only, after start and idle after a stage/publish/unpublish/unstage cycle; (c) process start to the
 * first Probe answered, the real CLI node-only, median of several spawns, with the CPU the process had used
 * by then (less sensitive to a loaded machine than the wall time) and bare `node -e 0` as the floor.
 * Run: `npm run bench:node` (root, loop devices). `--reps N` (stage repetitions per fs, default 3),
 * `--starts N` (default 7), `--settle-ms N` (idle time before the RSS reading, default 10000).
 * Writes bench/results/node.json. Not part of the test suite's pass/fail.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCloudConfig } from '../src/config/cloud-conf';
import { nodeHandlers } from '../src/csi/node';
import { callUnary, loadCsiProto, stripSecrets } from '../src/csi/proto';
import { CsiServer } from '../src/csi/server';
import { silentLogger } from '../src/log';
import { execFile, type Exec } from '../src/mount/exec';
import { readMountInfo } from '../src/mount/mountinfo';
import { KernelNodeMounter } from '../src/mount/node-mounter';
import { createCloudClients } from '../src/openstack/clients';
import { byIdName, type Simulator } from '../src/simulator';
import {
  cpuMsOf,
  freshClient,
  median,
  memoryOf,
  nodePluginNodeFlags,
  pad,
  probeUntilReady,
  REPO_ROOT,
  spawnPlugin,
} from './process-helpers';
import { startDeviceWorld } from './device-world';

const DELAYS = { volumeCreate: 0, attach: 0, deviceLink: 300, detach: 0, volumeDelete: 0 };
const STAGE_GIB = 10;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, check: () => T | undefined, limitMs = 30_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface StageSample {
  fs: string;
  rep: number;
  /** By-id link appeared (inotify) to NodeStage answered: the node's own time for the volume. */
  linkToMountedMs: number;
  /** Wall time of the mkfs exec inside that span, and its share. */
  mkfsMs: number;
  mkfsShare: number;
  /** Every command the stage ran, with its wall ms, in order. */
  commands: Array<{ cmd: string; ms: number }>;
}

/** (a) In-process node service on a real socket, so the exec can be timed; the rest is the plugin's own code. */
async function stageBench(
  sim: Simulator,
  dir: string,
  byIdDir: string,
  kubeletDir: string,
  reps: number,
): Promise<StageSample[]> {
  const conf = parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true });
  const cloud = createCloudClients(conf.clouds.get('')!);
  let commands: Array<{ cmd: string; ms: number }> = [];
  const exec: Exec = async (cmd, args, opts) => {
    const t0 = performance.now();
    try {
      return await execFile(cmd, args, opts);
    } finally {
      commands.push({ cmd, ms: performance.now() - t0 });
    }
  };
  const handlers = nodeHandlers({
    mounter: new KernelNodeMounter({ exec, byIdDir, log: silentLogger }),
    metadata: { get: async () => ({ uuid: sim.localServerId, availabilityZone: 'nova' }) },
    blockStorage: conf.blockStorage,
    withTopology: true,
    additionalTopology: {},
    kubeletDir,
    byIdDir,
    log: silentLogger,
  });
  const socket = join(dir, 'stage.sock');
  const server = new CsiServer({
    endpoint: `unix://${socket}`,
    log: silentLogger,
    services: [{ definition: loadCsiProto().NodeService, handlers }],
    stripSecrets,
  });
  await server.start();
  const node = freshClient('Node', `unix://${socket}`);
  const linkAt = new Map<string, number>();
  const watcher = watch(byIdDir, (_event, name) => {
    if (name && !linkAt.has(name)) linkAt.set(name, performance.now());
  });
  const samples: StageSample[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const fs of ['ext4', 'xfs']) {
        const v = await cloud.cinder.createVolume({ name: `bench-node-${fs}-${rep}`, size: STAGE_GIB });
        await until('volume available', () => (sim.getVolume(v.id)?.status === 'available' ? true : undefined));
        await cloud.nova.attachVolume(sim.localServerId, v.id);
        // kubelet calls NodeStage once ControllerPublish answered, i.e. once the volume is in-use.
        await until('volume in-use', () => (sim.getVolume(v.id)?.status === 'in-use' ? true : undefined));
        const cap = { mount: { fs_type: fs, mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
        const staging = join(kubeletDir, `plugins/kubernetes.io/csi/cinder.csi.openstack.org/${v.id}/globalmount`);
        commands = [];
        await callUnary(
          node,
          'NodeStageVolume',
          { volume_id: v.id, staging_target_path: staging, volume_capability: cap },
          { deadline: Date.now() + 120_000 },
        );
        const answered = performance.now();
        const link = linkAt.get(byIdName(v.id));
        if (link === undefined) throw new Error(`no by-id link seen for ${v.id}`);
        const mkfsMs = commands.filter((c) => c.cmd.startsWith('mkfs')).reduce((a, c) => a + c.ms, 0);
        const linkToMountedMs = answered - link;
        samples.push({
          fs,
          rep,
          linkToMountedMs,
          mkfsMs,
          mkfsShare: mkfsMs / linkToMountedMs,
          commands: [...commands],
        });
        await callUnary(node, 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: staging });
        await cloud.nova.detachVolume(sim.localServerId, v.id);
        await until('volume available', () => (sim.getVolume(v.id)?.status === 'available' ? true : undefined));
        await cloud.cinder.deleteVolume(v.id);
      }
    }
  } finally {
    watcher.close();
    node.close();
    await server.stop(1000);
  }
  return samples;
}

function nodeFlags(dir: string, socket: string, sim: Simulator, byIdDir: string, kubeletDir: string): string[] {
  return [
    '--endpoint',
    `unix://${socket}`,
    '--provide-controller-service=false',
    '--kubelet-dir',
    kubeletDir,
    '--by-id-dir',
    byIdDir,
    '--metadata-url',
    sim.metadataUrl,
    '--fuse-state-dir',
    join(dir, 'fuse'),
    '--log-level',
    'warn',
  ];
}

/** (b) The real CLI, node-only: RSS after start, then idle after one full node cycle on a 1 GiB volume. */
async function rssBench(sim: Simulator, dir: string, byIdDir: string, kubeletDir: string, settleMs: number) {
  const conf = parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true });
  const cloud = createCloudClients(conf.clouds.get('')!);
  const socket = join(dir, 'rss.sock');
  const plugin = spawnPlugin(nodeFlags(dir, socket, sim, byIdDir, kubeletDir), nodePluginNodeFlags());
  try {
    await probeUntilReady(plugin, socket);
    await sleep(1000);
    const afterStart = memoryOf(plugin.pid);
    const node = freshClient('Node', `unix://${socket}`);
    // NodeGetInfo first, as kubelet's registration does: it asks the metadata service.
    await callUnary(node, 'NodeGetInfo', {});
    const v = await cloud.cinder.createVolume({ name: 'bench-node-rss', size: 1 });
    await until('volume available', () => (sim.getVolume(v.id)?.status === 'available' ? true : undefined));
    await cloud.nova.attachVolume(sim.localServerId, v.id);
    const cap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    const staging = join(kubeletDir, 'plugins/kubernetes.io/csi/cinder.csi.openstack.org/rss/globalmount');
    const target = join(kubeletDir, 'pods/rss/volumes/kubernetes.io~csi/pvc-rss/mount');
    await callUnary(
      node,
      'NodeStageVolume',
      { volume_id: v.id, staging_target_path: staging, volume_capability: cap },
      { deadline: Date.now() + 120_000 },
    );
    await callUnary(node, 'NodePublishVolume', {
      volume_id: v.id,
      staging_target_path: staging,
      target_path: target,
      volume_capability: cap,
      readonly: false,
    });
    await callUnary(node, 'NodeGetVolumeStats', { volume_id: v.id, volume_path: target });
    await callUnary(node, 'NodeUnpublishVolume', { volume_id: v.id, target_path: target });
    await callUnary(node, 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: staging });
    node.close();
    await cloud.nova.detachVolume(sim.localServerId, v.id);
    await until('volume available', () => (sim.getVolume(v.id)?.status === 'available' ? true : undefined));
    await cloud.cinder.deleteVolume(v.id);
    await sleep(settleMs);
    const idle = memoryOf(plugin.pid);
    return {
      afterStartMiB: afterStart.rssMiB,
      idleMiB: idle.rssMiB,
      idleAnonMiB: idle.anonMiB,
      idleFileMiB: idle.fileMiB,
      peakMiB: idle.hwmMiB,
      settleMs,
    };
  } finally {
    await plugin.stop();
  }
}

/** (c) Spawn to first Probe answered, `starts` times; and bare node's spawn-to-exit as the floor. */
async function startBench(sim: Simulator, dir: string, byIdDir: string, kubeletDir: string, starts: number) {
  const runs: Array<{ ms: number; cpuMs: number }> = [];
  for (let i = 0; i < starts; i++) {
    const socket = join(dir, `start-${i}.sock`);
    const plugin = spawnPlugin(nodeFlags(dir, socket, sim, byIdDir, kubeletDir), nodePluginNodeFlags());
    try {
      const ms = await probeUntilReady(plugin, socket);
      runs.push({ ms, cpuMs: cpuMsOf(plugin.pid) });
    } finally {
      await plugin.stop();
    }
  }
  const bare: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn(process.execPath, ['-e', '0'])
        .once('exit', () => resolve())
        .once('error', reject),
    );
    bare.push(performance.now() - t0);
  }
  return {
    runs,
    medianMs: median(runs.map((r) => r.ms)),
    medianCpuMs: median(runs.map((r) => r.cpuMs)),
    bareNodeMedianMs: median(bare),
    bareNodeMs: bare,
  };
}

async function main(): Promise<void> {
  const reps = arg('--reps', 3);
  const starts = arg('--starts', 7);
  const settleMs = arg('--settle-ms', 10_000);
  const { dir, byIdDir, kubeletDir, sim } = await startDeviceWorld('bench-node-', DELAYS);
  try {
    const stage = await stageBench(sim, dir, byIdDir, kubeletDir, reps);
    const rss = await rssBench(sim, dir, byIdDir, kubeletDir, settleMs);
    const start = await startBench(sim, dir, byIdDir, kubeletDir, starts);

    console.log(`NodeStage of a ${STAGE_GIB} GiB volume, by-id link -> answered (ms), ${reps} reps per fs`);
    console.log(
      `${pad('fs', 6)}${pad('median', 9)}${pad('min', 9)}${pad('max', 9)}${pad('mkfs med', 10)}${pad('mkfs share', 12)}other commands (median ms)`,
    );
    for (const fs of ['ext4', 'xfs']) {
      const s = stage.filter((x) => x.fs === fs);
      const spans = s.map((x) => x.linkToMountedMs);
      const others = new Map<string, number[]>();
      for (const x of s)
        for (const c of x.commands)
          if (!c.cmd.startsWith('mkfs')) others.set(c.cmd, [...(others.get(c.cmd) ?? []), c.ms]);
      const otherText = [...others]
        .map(([cmd, ms]) => `${cmd} ${median(ms).toFixed(0)}${ms.length > s.length ? `x${ms.length / s.length}` : ''}`)
        .join(', ');
      console.log(
        `${pad(fs, 6)}${pad(median(spans).toFixed(0), 9)}${pad(Math.min(...spans).toFixed(0), 9)}${pad(Math.max(...spans).toFixed(0), 9)}` +
          `${pad(median(s.map((x) => x.mkfsMs)).toFixed(0), 10)}${pad(`${(median(s.map((x) => x.mkfsShare)) * 100).toFixed(0)} %`, 12)}${otherText}`,
      );
    }
    console.log(`plugin process: node ${[...nodePluginNodeFlags(), '<cli>'].join(' ')} (the node DaemonSet's command)`);
    console.log(
      `node plugin RSS (MiB): after start ${rss.afterStartMiB.toFixed(1)}, idle after a cycle + ${settleMs / 1000} s ${rss.idleMiB.toFixed(1)} (target <= 60 MB; anon ${rss.idleAnonMiB.toFixed(1)}, file ${rss.idleFileMiB.toFixed(1)}), peak ${rss.peakMiB.toFixed(1)}`,
    );
    console.log(
      `start to first Probe: median ${start.medianMs.toFixed(0)} ms of ${starts} (target <= 500), runs ${start.runs.map((r) => r.ms.toFixed(0)).join(', ')}; ` +
        `CPU used by then median ${start.medianCpuMs.toFixed(0)} ms; bare \`node -e 0\` spawn-to-exit median ${start.bareNodeMedianMs.toFixed(0)} ms`,
    );

    const out = join(REPO_ROOT, 'bench', 'results');
    if (!existsSync(out)) mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, 'node.json'),
      JSON.stringify({ delays: DELAYS, stageGiB: STAGE_GIB, stage, rss, start }, null, 2),
    );
  } finally {
    const mounts = (await readMountInfo().catch(() => [])).filter((m) => m.mountPoint.startsWith(dir + '/'));
    for (const m of mounts.reverse()) await execFile('umount', ['-l', m.mountPoint]).catch(() => undefined);
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
