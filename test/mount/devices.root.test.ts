import { mkdir, symlink, truncate } from 'node:fs/promises';
import { Status } from '../../src/errors';
import { deviceLinkCandidates, waitForDevice, type BusRescanner } from '../../src/mount/devices';
import { describeIf } from '../helpers/prereq';
import { LoopHarness, MiB, recordingDeps } from './loop-harness';

const VOLUME_ID = '5e1ec7ed-0000-4000-8000-00000000beef';
const idle: BusRescanner = { rescan: async () => undefined };

describeIf('waitForDevice with loop devices', { root: true, loop: true, commands: ['losetup'] }, () => {
  let h: LoopHarness;
  beforeAll(async () => {
    h = await LoopHarness.create('devices-');
  });
  afterAll(() => h.cleanup());

  async function byIdDir(name: string): Promise<string> {
    const dir = h.path(name);
    await mkdir(dir);
    return dir;
  }

  it('finds a link created after the wait started within well under a second of its creation', async () => {
    const d = await h.attach(16 * MiB);
    const dir = await byIdDir('delayed');
    let createdAt = 0;
    setTimeout(() => {
      createdAt = Date.now();
      void symlink(d.dev, `${dir}/virtio-${VOLUME_ID.slice(0, 20)}`);
    }, 400);
    // A poll interval far above the bound: only the fs.watch event can make it in time.
    const found = await waitForDevice(recordingDeps(), VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 10_000,
      pollIntervalMs: 5_000,
      rescanner: idle,
    });
    const latency = Date.now() - createdAt;
    expect(found).toMatchObject({ volumeId: VOLUME_ID, path: d.dev, sizeBytes: 16 * MiB });
    expect(latency).toBeLessThan(1_000);
  });

  it.each(deviceLinkCandidates(VOLUME_ID).map((name, i) => [name, i]))('finds the device under %s', async (name, i) => {
    const d = await h.attach(8 * MiB);
    const dir = await byIdDir(`cand${i}`);
    await symlink(d.dev, `${dir}/${name}`);
    const found = await waitForDevice(recordingDeps(), VOLUME_ID, { byIdDir: dir, timeoutMs: 2_000, rescanner: idle });
    expect(found.path).toBe(d.dev);
    expect(found.link).toBe(`${dir}/${name}`);
  });

  it('finds a volume whose id is shorter than the 20-character serial', async () => {
    const d = await h.attach(8 * MiB);
    const dir = await byIdDir('short');
    await symlink(d.dev, `${dir}/virtio-vol-7`);
    expect(
      (await waitForDevice(recordingDeps(), 'vol-7', { byIdDir: dir, timeoutMs: 2_000, rescanner: idle })).path,
    ).toBe(d.dev);
  });

  // Reference issue #2588: a device that reads 0 bytes right after attach needs a rescan.
  it('rescans a 0-byte device and returns it once it reports its size', async () => {
    const d = await h.attach(0);
    const dir = await byIdDir('zero');
    await symlink(d.dev, `${dir}/virtio-${VOLUME_ID}`);
    const deps = recordingDeps();
    setTimeout(() => void truncate(d.file, 4 * MiB), 300);
    const found = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 5_000,
      rescanIntervalMs: 200,
      rescanner: idle,
    });
    expect(found.sizeBytes).toBe(4 * MiB);
    const rescans = deps.calls.filter((c) => c.cmd === 'losetup' && c.args[0] === '-c');
    expect(rescans.length).toBeGreaterThanOrEqual(2);
    expect(rescans[0].args).toEqual(['-c', d.dev]);
  });

  it('gives up with DEADLINE_EXCEEDED naming the device when it stays at 0 bytes', async () => {
    const d = await h.attach(0);
    const dir = await byIdDir('zero-forever');
    await symlink(d.dev, `${dir}/virtio-${VOLUME_ID}`);
    const err = await waitForDevice(recordingDeps(), VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 400,
      rescanner: idle,
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(err.message).toContain(d.dev);
    expect(err.message).toContain('0 bytes');
  });
});
