/**
 * What the lifecycle and node benchmarks both stand on: a temp dir with a by-id dir and a kubelet dir, and the
 * simulator whose device plane turns attachments to its local server into loop devices linked there.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type Simulator, type SimulatorDelays } from '../src/simulator';

export interface DeviceWorld {
  dir: string;
  byIdDir: string;
  kubeletDir: string;
  sim: Simulator;
}

export async function startDeviceWorld(prefix: string, delays: Partial<SimulatorDelays>): Promise<DeviceWorld> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const byIdDir = join(dir, 'by-id');
  const kubeletDir = join(dir, 'kubelet');
  mkdirSync(byIdDir);
  mkdirSync(kubeletDir);
  const sim = await startSimulator({
    delays,
    devicePlane: { byIdDir, stateDir: join(dir, 'state') },
    localServer: { az: 'nova' },
  });
  return { dir, byIdDir, kubeletDir, sim };
}
