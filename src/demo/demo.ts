/**
 * `cinder-csi-plugin demo`: the driver's whole job on one machine. It starts the OpenStack simulator with its
 * device plane, a local S3 server and the plugin (controller, node and an in-process FUSE supervisor) on a
 * unix socket in a private temporary directory, then
 * plays kubelet and the sidecars through real gRPC calls for a three-replica StatefulSet. Cleans up on
 * success, failure and Ctrl-C.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startSimulator, type Simulator } from '../simulator';
import { DEMO_DELAYS } from '../simulator/cli';
import { parseFlags } from '../config/flags';
import { startPlugin, type RunningPlugin } from '../main';
import { createLogger } from '../log';
import { type CsiClient, callUnary, makeClient } from '../csi/proto';
import { fsStats } from '../mount/mounter';
import { readMountInfo } from '../mount/mountinfo';
import { execFile } from '../mount/exec';
import { demoPrerequisiteProblems } from './preflight';
import { StepRecorder } from './steps';
import { startS3ServerProcess, type S3TestServer } from './local-s3';

const GIB = 1024 ** 3;
/** A gRPC deadline per call, as the sidecars give (their --timeout). */
const CALL_TIMEOUT_MS = 60_000;
const REPLICAS = ['web-0', 'web-1', 'web-2'];
const ZONES = ['nova', 'zone-b'];

interface DemoOptions {
  keep: boolean;
  delayScale: number;
}

interface World {
  dir: string;
  sim: Simulator;
  plugin: RunningPlugin;
  controller: CsiClient;
  node: CsiClient;
  kubeletDir: string;
  s3: S3TestServer;
  /** What the run made so far, for the steps that follow and for teardown. */
  replicas: Replica[];
  snapshotId?: string;
  objectVolume?: { volumeId: string; staging: string; targets: string[]; secrets: Record<string, string> };
}

const mountCap = {
  access_type: 'mount',
  mount: { fs_type: 'ext4', mount_flags: [] },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};

/** Parses the demo's options; throws on a bad one. */
function parseDemoArgs(argv: string[]): DemoOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { keep: { type: 'boolean' }, 'delay-scale': { type: 'string' } },
  });
  const scale = values['delay-scale'] === undefined ? 1 : Number(values['delay-scale']);
  if (!Number.isFinite(scale) || scale < 0 || scale > 100)
    throw new Error(`--delay-scale: "${values['delay-scale']}" is not a number from 0 to 100`);
  return { keep: values.keep ?? false, delayScale: scale };
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(argv: string[]): Promise<number> {
  let opts: DemoOptions;
  try {
    opts = parseDemoArgs(argv);
  } catch (e) {
    process.stderr.write(
      `cinder-csi-plugin demo: ${(e as Error).message}\nUsage: cinder-csi-plugin demo [--keep] [--delay-scale N]\n`,
    );
    return 2;
  }
  const problems = await demoPrerequisiteProblems();
  if (problems.length > 0) {
    process.stderr.write(`cinder-csi-plugin demo cannot run here:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  const world = await startWorld(opts);
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    process.stdout.write('\ninterrupted: cleaning up\n');
  };
  process.once('SIGINT', onSigint);
  const rec = new StepRecorder(() => world.sim.counters());
  let ok = false;
  try {
    await playStatefulSet(world, rec, () => interrupted);
    ok = true;
    if (opts.keep && !interrupted) await keepRunning(world);
  } catch (e) {
    process.stdout.write(`\nFAILED: ${(e as Error).message ?? String(e)}\n`);
  } finally {
    process.removeListener('SIGINT', onSigint);
    await rec
      .step('tear everything down', () => teardown(world))
      .catch((e) => process.stdout.write(`cleanup: ${(e as Error).message}\n`));
    rec.printTable();
  }
  process.stdout.write(ok ? '\nThe whole lifecycle ran on this machine.\n' : '\nThe demo failed; see above.\n');
  return ok ? 0 : 1;
}

async function startWorld(opts: DemoOptions): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-csi-demo-'));
  const kubeletDir = join(dir, 'kubelet');
  const byIdDir = join(dir, 'dev-disk-by-id');
  mkdirSync(kubeletDir);
  mkdirSync(byIdDir);
  process.stdout.write(`cinder-csi demo in ${dir}\n`);
  const sim = await startSimulator({
    delays: DEMO_DELAYS,
    delayScale: opts.delayScale,
    availabilityZones: ZONES,
    localServer: { name: 'demo-node', az: ZONES[0] },
    devicePlane: { byIdDir, stateDir: join(dir, 'cloud-state') },
    logger: pino({ level: 'silent' }),
  });
  const s3 = await startS3ServerProcess();
  const confPath = join(dir, 'cloud.conf');
  writeFileSync(confPath, sim.cloudConf(), { mode: 0o600 });
  const flags = parseFlags([
    '--endpoint',
    `unix://${join(dir, 'csi.sock')}`,
    '--cloud-config',
    confPath,
    '--kubelet-dir',
    kubeletDir,
    '--by-id-dir',
    byIdDir,
    '--metadata-url',
    sim.metadataUrl,
    '--cluster',
    'demo',
    '--fuse-state-dir',
    join(dir, 'fuse-state'),
  ]);
  const log = createLogger({
    level: 'warn',
    destination: pino.destination({ dest: join(dir, 'plugin.log'), sync: true }),
  });
  const plugin = await startPlugin(flags, log);
  process.stdout.write(`OpenStack simulator on ${sim.url}, S3 on ${s3.endpoint}, plugin on ${plugin.endpoint}\n\n`);
  return {
    dir,
    sim,
    s3,
    plugin,
    controller: makeClient('Controller', plugin.endpoint),
    node: makeClient('Node', plugin.endpoint),
    kubeletDir,
    replicas: [],
  };
}

const call = <T = Record<string, unknown>>(client: CsiClient, rpc: string, req: object) =>
  callUnary<T>(client, rpc, req, { deadline: Date.now() + CALL_TIMEOUT_MS });

interface Replica {
  name: string;
  volumeId: string;
  staging: string;
  target: string;
  context: Record<string, string>;
}

function pathsFor(w: World, name: string): { staging: string; target: string } {
  return {
    staging: join(w.kubeletDir, 'plugins/kubernetes.io/csi/cinder.csi.openstack.org', name, 'globalmount'),
    target: join(w.kubeletDir, 'pods', `pod-${name}`, 'volumes/kubernetes.io~csi', `pvc-${name}`, 'mount'),
  };
}

async function playStatefulSet(w: World, rec: StepRecorder, stop: () => boolean): Promise<void> {
  const guard = () => {
    if (stop()) throw new Error('interrupted');
  };
  await rec.step('create 3 volumes in 2 zones', async () => {
    const made = await Promise.all(
      REPLICAS.map((r, i) =>
        call<{
          volume: {
            volume_id: string;
            volume_context: Record<string, string>;
            accessible_topology: Array<{ segments: Record<string, string> }>;
          };
        }>(w.controller, 'CreateVolume', {
          name: `pvc-${r}`,
          capacity_range: { required_bytes: String(GIB) },
          volume_capabilities: [mountCap],
          parameters: { 'csi.storage.k8s.io/pvc/name': `data-${r}`, 'csi.storage.k8s.io/pvc/namespace': 'default' },
          accessibility_requirements: {
            preferred: [{ segments: { 'topology.cinder.csi.openstack.org/zone': ZONES[i % 2] } }],
          },
        }),
      ),
    );
    made.forEach((m, i) =>
      w.replicas.push({
        name: REPLICAS[i],
        volumeId: m.volume.volume_id,
        context: m.volume.volume_context ?? {},
        ...pathsFor(w, REPLICAS[i]),
      }),
    );
    return made
      .map(
        (m, i) =>
          `${REPLICAS[i]}→${m.volume.accessible_topology[0]?.segments['topology.cinder.csi.openstack.org/zone']}`,
      )
      .join(' ');
  });
  guard();
  await rec.step('attach to the node', () =>
    Promise.all(w.replicas.map((r) => publishToNode(w, r))).then(() => 'in-use'),
  );
  guard();
  await rec.step('stage (ext4)', () =>
    Promise.all(w.replicas.map((r) => stage(w, r))).then(() => 'formatted and mounted'),
  );
  await rec.step('publish into pods', () =>
    Promise.all(w.replicas.map((r) => publish(w, r))).then(() => 'bind-mounted'),
  );
  await rec.step('write a file in each', async () => {
    await Promise.all(w.replicas.map((r) => writeFile(join(r.target, 'hello.txt'), `hello from ${r.name}\n`)));
    return 'hello.txt';
  });
  guard();
  await rec.step('snapshot web-0', async () => {
    // Like an application-consistent snapshot hook: flush the file before Cinder copies the device.
    await execFile('sync', []);
    const s = await call<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(w.controller, 'CreateSnapshot', {
      name: 'snap-web-0',
      source_volume_id: w.replicas[0].volumeId,
      parameters: { 'force-create': 'true' },
    });
    w.snapshotId = s.snapshot.snapshot_id;
    return `ready_to_use=${s.snapshot.ready_to_use}`;
  });
  guard();
  await rec.step('restore into a 2 GiB volume and read the file', async () => {
    const v = await call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>(
      w.controller,
      'CreateVolume',
      {
        name: 'pvc-web-0-restore',
        capacity_range: { required_bytes: String(2 * GIB) },
        volume_capabilities: [mountCap],
        volume_content_source: { snapshot: { snapshot_id: w.snapshotId } },
      },
    );
    const r: Replica = {
      name: 'web-0-restore',
      volumeId: v.volume.volume_id,
      context: v.volume.volume_context ?? {},
      ...pathsFor(w, 'web-0-restore'),
    };
    w.replicas.push(r);
    await publishToNode(w, r);
    await stage(w, r);
    await publish(w, r);
    const text = await readFile(join(r.target, 'hello.txt'), 'utf8');
    if (text !== 'hello from web-0\n') throw new Error(`restored file reads "${text.trim()}"`);
    return `file intact, df ${gib((await fsStats(r.target)).totalBytes)}`;
  });
  guard();
  await rec.step('expand web-1 online to 2 GiB', async () => {
    const r = w.replicas[1];
    const before = (await fsStats(r.target)).totalBytes;
    await call(w.controller, 'ControllerExpandVolume', {
      volume_id: r.volumeId,
      capacity_range: { required_bytes: String(2 * GIB) },
      volume_capability: mountCap,
    });
    try {
      await call(w.node, 'NodeExpandVolume', {
        volume_id: r.volumeId,
        volume_path: r.target,
        staging_target_path: r.staging,
        capacity_range: { required_bytes: String(2 * GIB) },
        volume_capability: mountCap,
      });
    } catch (e) {
      // This machine's root may lack CAP_SYS_RESOURCE, which the kernel requires to grow a mounted ext4.
      if (/CAP_SYS_RESOURCE/.test((e as Error).message))
        return `Cinder grew it; this machine forbids growing a mounted ext4 (no CAP_SYS_RESOURCE)`;
      throw e;
    }
    return `df ${gib(before)} → ${gib((await fsStats(r.target)).totalBytes)}`;
  });
  guard();
  await rec.step('object volume shared by two pods (S3, RWX)', () => shareObjectVolume(w));
}

const sharedCap = {
  access_type: 'mount',
  mount: { fs_type: '', mount_flags: [] },
  access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' },
};

/** An S3 bucket volume mounted through s3fs once per node and bind-mounted into two pods' targets. */
async function shareObjectVolume(w: World): Promise<string> {
  const secrets = { accessKeyID: w.s3.accessKey, secretAccessKey: w.s3.secretKey, endpoint: w.s3.endpoint };
  const v = await call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>(
    w.controller,
    'CreateVolume',
    {
      name: 'pvc-shared',
      capacity_range: { required_bytes: String(GIB) },
      volume_capabilities: [sharedCap],
      parameters: { backend: 'object', provider: 's3', endpoint: w.s3.endpoint },
      secrets,
    },
  );
  const { staging } = pathsFor(w, 'shared');
  const targets = ['writer', 'reader'].map((pod) =>
    join(w.kubeletDir, 'pods', `pod-${pod}`, 'volumes/kubernetes.io~csi/pvc-shared/mount'),
  );
  const obj = { volumeId: v.volume.volume_id, staging, targets, secrets };
  w.objectVolume = obj;
  const context = v.volume.volume_context ?? {};
  await call(w.controller, 'ControllerPublishVolume', {
    volume_id: obj.volumeId,
    node_id: w.sim.localServerId,
    volume_capability: sharedCap,
    secrets,
  });
  await call(w.node, 'NodeStageVolume', {
    volume_id: obj.volumeId,
    staging_target_path: staging,
    volume_capability: sharedCap,
    volume_context: context,
    secrets,
  });
  for (const target of targets) {
    await call(w.node, 'NodePublishVolume', {
      volume_id: obj.volumeId,
      staging_target_path: staging,
      target_path: target,
      volume_capability: sharedCap,
      readonly: false,
      volume_context: context,
    });
  }
  await writeFile(join(targets[0], 'shared.txt'), 'written by pod-writer\n');
  const seen = await readFile(join(targets[1], 'shared.txt'), 'utf8');
  if (seen !== 'written by pod-writer\n') throw new Error(`the second pod reads "${seen.trim()}"`);
  return `${obj.volumeId}: written in one pod, read in the other`;
}

async function publishToNode(w: World, r: Replica): Promise<void> {
  await call(w.controller, 'ControllerPublishVolume', {
    volume_id: r.volumeId,
    node_id: w.sim.localServerId,
    volume_capability: mountCap,
  });
}

async function stage(w: World, r: Replica): Promise<void> {
  await call(w.node, 'NodeStageVolume', {
    volume_id: r.volumeId,
    staging_target_path: r.staging,
    volume_capability: mountCap,
    volume_context: r.context,
  });
}

async function publish(w: World, r: Replica): Promise<void> {
  await call(w.node, 'NodePublishVolume', {
    volume_id: r.volumeId,
    staging_target_path: r.staging,
    target_path: r.target,
    volume_capability: mountCap,
    readonly: false,
    volume_context: r.context,
  });
}

function gib(bytes: number): string {
  return `${(bytes / GIB).toFixed(2)} GiB`;
}

async function keepRunning(w: World): Promise<void> {
  process.stdout.write(`
Left running for exploration (Ctrl-C tears it down):
  CSI socket:   ${w.plugin.endpoint}
  cloud.conf:   ${join(w.dir, 'cloud.conf')}   (OpenStack simulator at ${w.sim.url})
  volumes:      ${[...w.replicas.map((r) => r.target), ...(w.objectVolume?.targets ?? [])].join('\n                ')}
  try:          ls ${w.replicas[0].target}; grep ${w.dir} /proc/self/mountinfo
`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
}

/** Undoes everything, tolerating steps that never happened; then sweeps any mount left under the temp dir. */
async function teardown(w: World): Promise<string> {
  const errors: string[] = [];
  const attempt = (p: Promise<unknown>) => p.catch((e) => errors.push((e as Error).message));
  const obj = w.objectVolume;
  if (obj) {
    for (const target of obj.targets)
      await attempt(call(w.node, 'NodeUnpublishVolume', { volume_id: obj.volumeId, target_path: target }));
    await attempt(call(w.node, 'NodeUnstageVolume', { volume_id: obj.volumeId, staging_target_path: obj.staging }));
    await attempt(call(w.controller, 'DeleteVolume', { volume_id: obj.volumeId, secrets: obj.secrets }));
  }
  for (const r of w.replicas) {
    await attempt(call(w.node, 'NodeUnpublishVolume', { volume_id: r.volumeId, target_path: r.target }));
    await attempt(call(w.node, 'NodeUnstageVolume', { volume_id: r.volumeId, staging_target_path: r.staging }));
  }
  await Promise.all(
    w.replicas.map((r) =>
      attempt(call(w.controller, 'ControllerUnpublishVolume', { volume_id: r.volumeId, node_id: w.sim.localServerId })),
    ),
  );
  if (w.snapshotId) await attempt(call(w.controller, 'DeleteSnapshot', { snapshot_id: w.snapshotId }));
  await Promise.all(w.replicas.map((r) => attempt(call(w.controller, 'DeleteVolume', { volume_id: r.volumeId }))));
  w.controller.close();
  w.node.close();
  await w.plugin.stop(2000);
  for (const m of (await readMountInfo()).filter((x) => x.mountPoint.startsWith(w.dir)).reverse()) {
    await attempt(execFile('umount', ['-l', m.mountPoint]));
  }
  await w.sim.stop();
  await w.s3.stop();
  rmSync(w.dir, { recursive: true, force: true });
  const volumes = w.replicas.length + (obj ? 1 : 0);
  return errors.length
    ? `with ${errors.length} errors: ${errors[0]}`
    : `${volumes} volumes and 1 snapshot gone, no mounts, loop devices or FUSE daemons left`;
}
