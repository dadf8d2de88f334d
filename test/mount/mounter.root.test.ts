import { access, mkdir, open, stat, writeFile } from 'node:fs/promises';
import { Status } from '../../src/errors';
import { execFile } from '../../src/mount/exec';
import { findMountByTarget, isMountPoint, mountsAt, readMountInfo } from '../../src/mount/mountinfo';
import { blockDeviceSize, cleanupMountPoint, fsStats, isMountPointOf, mount } from '../../src/mount/mounter';
import { KernelNodeMounter } from '../../src/mount/node-mounter';
import { describeIf } from '../helpers/prereq';
import { LoopHarness, MiB, XFS_MIN_BYTES, hasCapSysResource, recordingDeps } from './loop-harness';
import { staleFuseMount } from '../helpers/stale-fuse';

const gone = (p: string) =>
  access(p).then(
    () => false,
    () => true,
  );

describeIf(
  'mounter on loop devices',
  { root: true, loop: true, commands: ['losetup', 'blkid', 'mkfs.ext4', 'mkfs.xfs', 'xfs_growfs', 'mount', 'umount'] },
  () => {
    let h: LoopHarness;
    let n = 0;
    const dir = () => h.path(`m${n++}`);
    beforeAll(async () => {
      h = await LoopHarness.create('mounter-');
    });
    afterAll(() => h.cleanup());

    async function staged(fsType = 'ext4', size = 64 * MiB) {
      const d = await h.attach(size);
      const path = dir();
      const m = new KernelNodeMounter();
      await m.stageFilesystem({ device: d.dev, stagingPath: path, fsType });
      return { d, path, m };
    }

    it('publishes a read-only bind that cannot be written while the staging mount stays writable', async () => {
      const { path, m } = await staged();
      const target = `${dir()}/pod/mount`;
      expect(await m.publishBind(path, target, { readOnly: true })).toEqual({ alreadyPublished: false });
      expect((await findMountByTarget(target))?.mountOptions).toContain('ro');
      await expect(writeFile(`${target}/x`, 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await writeFile(`${path}/y`, 'y');
      await expect(access(`${target}/y`)).resolves.toBeUndefined();
    });

    it('treats a second identical publish as done and a publish in the other mode as ALREADY_EXISTS', async () => {
      const { path, m } = await staged();
      const target = dir();
      await m.publishBind(path, target, { readOnly: false });
      expect(await m.publishBind(path, target, { readOnly: false })).toEqual({ alreadyPublished: true });
      const err = await m.publishBind(path, target, { readOnly: true }).catch((e) => e);
      expect(err.code).toBe(Status.ALREADY_EXISTS);
      expect(mountsAt(await readMountInfo(), target)).toHaveLength(1);
    });

    it('binds a raw block device node onto a file it creates, and cleanup removes the file', async () => {
      const d = await h.attach(8 * MiB);
      const m = new KernelNodeMounter();
      const target = `${dir()}/volumeDevices/pvc-1`;
      expect(await m.publishBlock(d.dev, target, { readOnly: false })).toEqual({ alreadyPublished: false });
      expect((await stat(target)).isBlockDevice()).toBe(true);
      expect(await isMountPointOf(target, d.dev)).toBe(true);
      expect(await m.pathKind(target)).toBe('block-device');
      expect(await blockDeviceSize(recordingDeps(), target)).toBe(8 * MiB);
      expect(await m.publishBlock(d.dev, target, { readOnly: false })).toEqual({ alreadyPublished: true });
      await m.cleanupMountPoint(target);
      expect(await gone(target)).toBe(true);
    });

    it('reports statfs bytes and inodes of a staged filesystem', async () => {
      const { path } = await staged();
      const before = await fsStats(path);
      await writeFile(`${path}/blob`, Buffer.alloc(4 * MiB, 1));
      await execFile('sync', []);
      const after = await fsStats(path);
      expect(before.totalBytes).toBeGreaterThan(50 * MiB);
      expect(before.totalBytes).toBeLessThanOrEqual(64 * MiB);
      expect(after.usedBytes - before.usedBytes).toBeGreaterThanOrEqual(4 * MiB);
      expect(after.usedInodes).toBe(before.usedInodes + 1);
      expect(after.freeInodes + after.usedInodes).toBe(after.totalInodes);
      expect(after.availableBytes).toBeLessThanOrEqual(after.totalBytes - after.usedBytes);
    });

    it('answers NOT_FOUND for stats of a missing path', async () => {
      await expect(fsStats(h.path('nope'))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    });

    it('grows a mounted xfs filesystem online after the device is extended', async () => {
      const { d, path, m } = await staged('xfs', XFS_MIN_BYTES);
      const before = (await fsStats(path)).totalBytes;
      await h.grow(d, XFS_MIN_BYTES * 2);
      expect(await m.deviceSizeBytes(d.dev)).toBe(XFS_MIN_BYTES * 2);
      await m.resizeFilesystem(d.dev, path);
      expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
    });

    it(`${hasCapSysResource() ? 'grows a mounted ext4 filesystem online' : 'names CAP_SYS_RESOURCE when an ext4 online grow is denied'} after the device is extended`, async () => {
      const { d, path, m } = await staged('ext4', 64 * MiB);
      const before = (await fsStats(path)).totalBytes;
      await h.grow(d, 128 * MiB);
      const result = await m.resizeFilesystem(d.dev, path).catch((e) => e);
      if (hasCapSysResource()) {
        expect(result).toBeUndefined();
        expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
      } else {
        expect(result.code).toBe(Status.FAILED_PRECONDITION);
        expect(result.message).toContain('CAP_SYS_RESOURCE');
      }
    });

    it('finds the device of a staging mount for expansion', async () => {
      const { d, path, m } = await staged();
      expect((await m.findMount(path))?.source).toBe(d.dev);
    });

    describe('cleanupMountPoint', () => {
      it('succeeds on a path that does not exist', async () => {
        await expect(cleanupMountPoint(recordingDeps(), h.path('never-there'))).resolves.toBeUndefined();
      });

      it('removes a directory with nothing mounted on it without running umount', async () => {
        const p = dir();
        await mkdir(p);
        const deps = recordingDeps();
        await cleanupMountPoint(deps, p);
        expect(await gone(p)).toBe(true);
        expect(deps.calls).toEqual([]);
      });

      it('unmounts every mount stacked on the path, then removes it', async () => {
        const p = dir();
        await mkdir(p);
        const deps = recordingDeps();
        await mount(deps, 'tmpfs', p, { fsType: 'tmpfs' });
        await mount(deps, 'tmpfs', p, { fsType: 'tmpfs' });
        await mount(deps, 'tmpfs', p, { fsType: 'tmpfs' });
        expect(mountsAt(await readMountInfo(), p)).toHaveLength(3);
        await cleanupMountPoint(deps, p);
        expect(await isMountPoint(p)).toBe(false);
        expect(await gone(p)).toBe(true);
      });

      it('unstages a staged volume and is a no-op the second time', async () => {
        const { d, path, m } = await staged();
        await m.cleanupMountPoint(path);
        await m.cleanupMountPoint(path);
        expect(await gone(path)).toBe(true);
        expect(await m.isMountPointOf(path, d.dev)).toBe(false);
      });

      it('refuses a busy mount with FAILED_PRECONDITION and detaches it lazily when asked', async () => {
        const { path } = await staged();
        const fh = await open(`${path}/held-open`, 'w');
        try {
          const err = await cleanupMountPoint(recordingDeps(), path).catch((e) => e);
          expect(err.code).toBe(Status.FAILED_PRECONDITION);
          expect(await isMountPoint(path)).toBe(true);
          const deps = recordingDeps();
          await cleanupMountPoint(deps, path, { lazyIfBusy: true });
          expect(deps.calls.map((c) => c.args)).toContainEqual(['-l', path]);
          expect(await isMountPoint(path)).toBe(false);
          expect(await gone(path)).toBe(true);
        } finally {
          await fh.close();
        }
      });

      it('does not remove a directory that still holds files', async () => {
        const p = dir();
        await mkdir(p);
        await writeFile(`${p}/data`, 'x');
        const err = await cleanupMountPoint(recordingDeps(), p).catch((e) => e);
        expect(err.code).toBe(Status.FAILED_PRECONDITION);
        expect(await gone(`${p}/data`)).toBe(false);
      });
    });
  },
);

describeIf('cleanupMountPoint of a stale FUSE mount', { root: true, fuse: true, commands: ['mount', 'umount'] }, () => {
  let h: LoopHarness;
  beforeAll(async () => {
    h = await LoopHarness.create('stale-');
  });
  afterAll(() => h.cleanup());

  it('unmounts a mount point whose stat fails with ENOTCONN and removes it', async () => {
    const p = h.path('stale');
    await staleFuseMount(p);
    await expect(stat(p)).rejects.toMatchObject({ code: 'ENOTCONN' });
    const m = new KernelNodeMounter();
    expect(await m.pathKind(p)).toBe('stale');
    expect(await m.isMountPoint(p)).toBe(true);
    await m.cleanupMountPoint(p);
    expect(await isMountPoint(p)).toBe(false);
    expect(await gone(p)).toBe(true);
  });
});
