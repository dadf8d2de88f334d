/**
 * A node world for tests: the Node handlers on a real gRPC unix socket over the real KernelNodeMounter
 * (exec recorded), a temp kubelet dir and by-id dir, and (for root tests) a simulator whose device plane
 * turns attachments to its local server into loop devices with by-id links there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { loadCsiProto } from '../../src/csi/proto';
import { nodeHandlers, type NodeDeps } from '../../src/csi/node';
import { execFile, type Exec } from '../../src/mount/exec';
import { deviceSizeBytes } from '../../src/mount/block-device';
import { readMountInfo } from '../../src/mount/mountinfo';
import { KernelNodeMounter } from '../../src/mount/node-mounter';
import { createCloudClients, type CloudClients } from '../../src/openstack/clients';
import { silentLogger } from '../../src/log';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';
import { startHarness, type CsiHarness } from './csi-harness';

export const GIB = 1024 ** 3;
export const NODE_ID = '5b1f0a3e-8d2c-4b7a-9f61-0c2d3e4f5a6b';
/** How often the world polls the simulator while waiting for a status or a device. */
const POLL_MS = 20;
const WAIT_LIMIT_MS = 15_000;

/** A mount capability as kubelet sends it. */
export const fsCap = (fs_type = 'ext4', mode = 'SINGLE_NODE_WRITER') => ({
  mount: { fs_type, mount_flags: [], volume_mount_group: '' },
  access_mode: { mode },
});
/** A raw block capability as kubelet sends it. */
export const blockCap = (mode = 'SINGLE_NODE_WRITER') => ({ block: {}, access_mode: { mode } });

export interface ExecCall {
  cmd: string;
  args: string[];
}

export interface NodeWorld {
  dir: string;
  kubeletDir: string;
  byIdDir: string;
  h: CsiHarness;
  /** Every command the node ran, in order. */
  calls: ExecCall[];
  sim?: Simulator;
  clients?: CloudClients;

  call<T = any>(rpc: string, req?: object, deadlineMs?: number): Promise<T>;
  /** A path under the kubelet dir (not created). */
  path(name: string): string;
  /** Creates a volume in the simulator, attaches it to the local server, waits for its loop device. */
  attachedVolume(sizeGiB?: number): Promise<{ id: string; device: string }>;
  /** Extends a volume and waits until its loop device has the new size. */
  extend(id: string, device: string, sizeGiB: number): Promise<void>;
  close(): Promise<void>;
}

export interface NodeWorldOptions {
  /** Start a simulator with a device plane (needs root and loop devices). */
  simulator?: boolean | SimulatorOptions;
  deps?: Partial<Omit<NodeDeps, 'mounter' | 'kubeletDir' | 'byIdDir' | 'log'>>;
  blockStorage?: Partial<BlockStorageOptions>;
}

/** Polls `check` until it returns a value other than undefined; throws after WAIT_LIMIT_MS. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Builds a fresh world in a temp dir; `close()` unmounts what is left there, stops the simulator and removes the dir. */
export async function startNodeWorld(o: NodeWorldOptions = {}): Promise<NodeWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'node-'));
  const kubeletDir = join(dir, 'kubelet');
  const byIdDir = join(dir, 'by-id');
  const calls: ExecCall[] = [];
  const exec: Exec = (cmd, args, opts) => {
    calls.push({ cmd, args: [...args] });
    return execFile(cmd, args, opts);
  };
  // Tests never rescan the host's SCSI buses: the simulator's links appear on their own.
  const mounter = new KernelNodeMounter({ exec, byIdDir, rescanner: { rescan: async () => undefined } });
  let sim: Simulator | undefined;
  let clients: CloudClients | undefined;
  if (o.simulator) {
    const simOpts = typeof o.simulator === 'object' ? o.simulator : {};
    sim = await startSimulator({ devicePlane: { byIdDir, stateDir: join(dir, 'state') }, ...simOpts });
    const conf = parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true });
    clients = createCloudClients(conf.clouds.get('')!);
  }
  const deps: NodeDeps = {
    mounter,
    metadata: { get: async () => ({ uuid: NODE_ID, availabilityZone: 'nova' }) },
    withTopology: true,
    additionalTopology: {},
    ...o.deps,
    blockStorage: { rescanOnResize: false, ignoreVolumeAz: false, ignoreVolumeMicroversion: false, ...o.blockStorage },
    kubeletDir,
    byIdDir,
    log: silentLogger,
  };
  const h = await startHarness([{ definition: loadCsiProto().NodeService, handlers: nodeHandlers(deps) }]);

  const world: NodeWorld = {
    dir,
    kubeletDir,
    byIdDir,
    h,
    calls,
    sim,
    clients,
    call: (rpc, req = {}, deadlineMs = 30_000) => h.call('Node', rpc, req, deadlineMs),
    path: (name) => join(kubeletDir, name),
    async attachedVolume(sizeGiB = 1) {
      if (!sim || !clients) throw new Error('this world has no simulator');
      const v = await clients.cinder.createVolume({ name: `vol-${calls.length}-${Date.now()}`, size: sizeGiB });
      await waitFor('volume available', async () => (sim!.getVolume(v.id)?.status === 'available' ? true : undefined));
      await clients.nova.attachVolume(sim.localServerId, v.id);
      const device = await waitFor('loop device', async () => sim!.getVolume(v.id)?.devicePath);
      return { id: v.id, device };
    },
    async extend(id, device, sizeGiB) {
      await clients!.cinder.extendVolume(id, sizeGiB);
      const tools = { exec: execFile, log: silentLogger };
      await waitFor('device growth', async () =>
        (await deviceSizeBytes(tools, device)) >= sizeGiB * GIB ? true : undefined,
      );
    },
    async close() {
      await h.close();
      // Unmount whatever a test left under our dir, innermost first, before the loop devices go.
      const mounts = (await readMountInfo().catch(() => [])).filter((m) => m.mountPoint.startsWith(dir + '/'));
      for (const m of mounts.reverse()) await execFile('umount', ['-l', m.mountPoint]).catch(() => undefined);
      await sim?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return world;
}

export { codeOf } from './csi-harness';
