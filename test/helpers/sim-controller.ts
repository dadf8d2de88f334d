/**
 * A controller world for tests: a fresh OpenStack simulator (no device plane), the real OpenStack clients
 * built from its cloud.conf, the Controller handlers on a real gRPC unix socket, and small helpers to
 * call them and read Cinder request counts.
 */
import { parseCloudConfig } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { createClouds } from '../../src/openstack/clients';
import { controllerHandlers, type ControllerDeps } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';
import { startHarness, type CsiHarness } from './csi-harness';
import { logSink } from './log-sink';

export const ZONE_KEY = 'topology.cinder.csi.openstack.org/zone';
export const GIB = 1024 ** 3;
/** Poll tunables of the tests: the production schedule, so request-count assertions prove it. */
export const TEST_WAIT = {};

export const MOUNT_RWO = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
export const BLOCK_RWO = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
export const BLOCK_RWX = { block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };

export interface ControllerWorld {
  sim: Simulator;
  /** Extra simulators, one per additional cloud name. */
  others: Map<string, Simulator>;
  h: CsiHarness;
  /** Calls a Controller RPC with a deadline (default 20 s). */

  call<T = any>(rpc: string, req?: object, deadlineMs?: number): Promise<T>;
  /** Simulator request count of an operation (e.g. `cinder.volume.get`) since the last reset. */
  count(op: string): number;
  close(): Promise<void>;
}

export interface WorldOptions {
  sim?: SimulatorOptions;
  /** Extra cloud names, each served by its own simulator; the main simulator is cloud ''. */
  extraClouds?: string[];
  deps?: Partial<Omit<ControllerDeps, 'clouds' | 'log'>>;
  blockStorage?: Partial<BlockStorageOptions>;
}

export async function startControllerWorld(o: WorldOptions = {}): Promise<ControllerWorld> {
  const sim = await startSimulator({ devicePlane: false, ...o.sim });
  const others = new Map<string, Simulator>();
  const texts = [{ file: 'sim', text: sim.cloudConf() }];
  for (const name of o.extraClouds ?? []) {
    const other = await startSimulator({ devicePlane: false, ...o.sim });
    others.set(name, other);
    texts.push({ file: `sim-${name}`, text: other.cloudConf({ cloudName: name }) });
  }
  const conf = parseCloudConfig(texts, { requireCredentials: true });
  const names = ['', ...(o.extraClouds ?? [])];
  const clouds = createClouds(conf.clouds, names, { http: { retry: { initialMs: 1, maxDelayMs: 5 } } });
  const blockStorage: BlockStorageOptions = {
    rescanOnResize: false,
    ignoreVolumeAz: false,
    ignoreVolumeMicroversion: false,
    ...o.blockStorage,
  };
  const harness = await startHarness([
    {
      definition: loadCsiProto().ControllerService,
      handlers: controllerHandlers({
        clouds,
        blockStorage,
        cluster: 'test-cluster',
        withTopology: true,
        pvcAnnotations: false,
        waitOptions: TEST_WAIT,
        ...o.deps,
        log: logSink('info').log,
      }),
    },
  ]);
  return {
    sim,
    others,
    h: harness,
    call: (rpc, req = {}, deadlineMs = 20_000) => harness.call('Controller', rpc, req, deadlineMs),
    count: (op) => sim.counters()[op] ?? 0,
    async close() {
      await harness.close();
      await sim.stop();
      for (const s of others.values()) await s.stop();
    },
  };
}

/** A CreateVolume request with defaults: 1 GiB, mount RWO. */
export function createReq(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, capacity_range: { required_bytes: String(GIB) }, volume_capabilities: [MOUNT_RWO], ...over };
}

export { codeOf } from './csi-harness';
