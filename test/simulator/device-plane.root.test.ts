/** The simulator's device plane on real loop devices: by-id links after attach, resize on extend, cleanup. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execFile } from '../../src/mount/exec';
import { byIdName, startSimulator, type Simulator } from '../../src/simulator';
import { describeIf } from '../helpers/prereq';
import { Api, waitFor } from './client';

const GIB = 1024 ** 3;
const DEVICE_LINK_MS = 80;
const PATH_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

async function loopsOf(file: string): Promise<string> {
  return (await execFile('losetup', ['-j', file], { env: PATH_ENV })).stdout.trim();
}

async function loopBytes(dev: string): Promise<number> {
  return Number((await readFile(`/sys/block/${basename(dev)}/size`, 'utf8')).trim()) * 512;
}

describeIf('simulator device plane', { root: true, loop: true, commands: ['losetup'] }, () => {
  let dir: string;
  let sim: Simulator;
  let api: Api;
  const byId = () => join(dir, 'by-id');
  const stateDir = () => join(dir, 'state');
  const backing = (id: string) => join(stateDir(), `volume-${id}.img`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-devplane-'));
    sim = await startSimulator({
      delays: { attach: 30, detach: 30, deviceLink: DEVICE_LINK_MS },
      devicePlane: { byIdDir: byId(), stateDir: stateDir() },
    });
    api = await Api.login(sim);
  });
  afterAll(async () => {
    const files = sim.listVolumes().map((v) => backing(v.id));
    await sim.stop();
    for (const f of files) if (existsSync(f)) expect(await loopsOf(f)).toBe('');
    await rm(dir, { recursive: true, force: true });
  });

  it('backs a volume with a sparse file of its size', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    await waitFor(() => existsSync(backing(id)), 2000, 'backing file');
    const st = await stat(backing(id));
    expect(st.size).toBe(GIB);
    expect(st.blocks * 512).toBeLessThan(GIB / 100);
  });

  it('links a loop device of the volume’s size by id, deviceLink after the attach completes; extend grows it; detach removes it', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
      volumeAttachment: { volumeId: id },
    });
    await api.volumeStatus(id, 'in-use');
    const link = join(byId(), `virtio-${id.slice(0, 20)}`);
    expect(existsSync(link)).toBe(false);
    await waitFor(() => existsSync(link), 3000, 'by-id link');
    const linkedAt = Date.now();
    const inUseAt = sim.getVolume(id)!.statusHistory.find((h) => h.status === 'in-use')!.at;
    expect(linkedAt - inUseAt).toBeGreaterThanOrEqual(DEVICE_LINK_MS - 2);
    const dev = await readlink(link);
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    await waitFor(() => sim.getVolume(id)?.devicePath === dev, 2000, 'devicePath');
    expect(await loopBytes(dev)).toBe(GIB);
    expect(await loopsOf(backing(id))).toContain(dev);

    const ext = await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } }, '3.42');
    expect(ext.status).toBe(202);
    await api.volumeStatus(id, 'in-use');
    await waitFor(async () => (await loopBytes(dev)) === 2 * GIB, 3000, 'loop device to grow');

    await api.nova('DELETE', `/servers/${sim.localServerId}/os-volume_attachments/${id}`);
    await api.volumeStatus(id, 'available');
    await waitFor(async () => !existsSync(link) && (await loopsOf(backing(id))) === '', 3000, 'link and loop to go');
    expect(sim.getVolume(id)?.devicePath).toBeUndefined();
  });

  it('makes no device for a volume attached to another server', async () => {
    const other = sim.addServer({ name: 'elsewhere' });
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    await api.nova('POST', `/servers/${other}/os-volume_attachments`, { volumeAttachment: { volumeId: id } });
    await api.volumeStatus(id, 'in-use');
    await new Promise((r) => setTimeout(r, DEVICE_LINK_MS + 60));
    expect(existsSync(join(byId(), byIdName(id)))).toBe(false);
    expect(await loopsOf(backing(id))).toBe('');
  });

  it('removes the backing file when the volume is deleted', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    await waitFor(() => existsSync(backing(id)), 2000, 'backing file');
    await api.cinder('DELETE', `/volumes/${id}`);
    await waitFor(() => !existsSync(backing(id)), 2000, 'backing file removed');
  });
});

describeIf('simulator device plane stop', { root: true, loop: true, commands: ['losetup'] }, () => {
  it('leaves no loop devices, links or backing files after stop() with a volume still attached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-devplane-stop-'));
    const byIdDir = join(dir, 'by-id');
    const sim = await startSimulator({ devicePlane: { byIdDir, stateDir: join(dir, 'state'), linkStyle: 'scsi' } });
    try {
      const api = await Api.login(sim);
      const id = await api.createVolume({ size: 1 });
      await api.volumeStatus(id, 'available');
      await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
        volumeAttachment: { volumeId: id },
      });
      const link = join(byIdDir, `scsi-0QEMU_QEMU_HARDDISK_${id.slice(0, 20)}`);
      await waitFor(() => existsSync(link), 3000, 'scsi by-id link');
      const file = join(dir, 'state', `volume-${id}.img`);
      expect(await loopsOf(file)).not.toBe('');
      await sim.stop();
      expect(await loopsOf(file)).toBe('');
      expect(existsSync(link)).toBe(false);
      expect(existsSync(file)).toBe(false);
    } finally {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('simulator by-id link names', () => {
  it.each([
    ['virtio', 'virtio-0d9a0c8e-1234-5678-9'],
    ['virtio-full', 'virtio-0d9a0c8e-1234-5678-9abc-def012345678'],
    ['scsi', 'scsi-0QEMU_QEMU_HARDDISK_0d9a0c8e-1234-5678-9'],
    ['scsi-full', 'scsi-0QEMU_QEMU_HARDDISK_0d9a0c8e-1234-5678-9abc-def012345678'],
    ['wwn', 'wwn-0x0d9a0c8e123456789abcdef012345678'],
  ] as const)('names the %s link as the hypervisor would', (style, name) => {
    expect(byIdName('0d9a0c8e-1234-5678-9abc-def012345678', style)).toBe(name);
  });
});
