/**
 * A world for controller crash tests: the OpenStack simulator runs in the test process (so it outlives
 * every kill), and the real plugin runs as a child process serving the Controller service on a unix socket.
 * `start()` launches a plugin; the test SIGKILLs it at a point it picks by watching the simulator, then
 * starts another on the same socket and retries, as the external-provisioner/-attacher would.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { createCloudClients, type CloudClients } from '../../src/openstack/clients';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';
import { startPluginProcess, type PluginProcess } from './crash-plugin';

export { until, type PluginProcess } from './crash-plugin';

export interface CrashControllerWorld {
  sim: Simulator;
  /** Clients of the test's own, for reading Nova's side of an attachment. */
  cloud: CloudClients;
  socket: string;
  start(): Promise<PluginProcess>;
  close(): Promise<void>;
}

export async function startCrashControllerWorld(simOpts: SimulatorOptions): Promise<CrashControllerWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'crash-ctl-'));
  const sim = await startSimulator({ devicePlane: false, ...simOpts });
  const confFile = join(dir, 'cloud.conf');
  await writeFile(confFile, sim.cloudConf(), { mode: 0o600 });
  const cloud = createCloudClients(
    parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true }).clouds.get('')!,
  );
  const socket = join(dir, 'csi.sock');
  const running = new Set<PluginProcess>();

  async function start(): Promise<PluginProcess> {
    const flags = [`--cloud-config=${confFile}`, '--provide-node-service=false', '--log-level=warn'];
    const p = await startPluginProcess(socket, flags, 'Controller');
    running.add(p);
    const kill = p.kill;
    p.kill = async (opts) => {
      running.delete(p);
      await kill(opts);
    };
    return p;
  }

  return {
    sim,
    cloud,
    socket,
    start,
    async close() {
      for (const p of [...running]) await p.kill();
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
