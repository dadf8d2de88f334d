import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { Status } from '../../src/errors';
import { execFile } from '../../src/mount/exec';
import { findMountByTarget } from '../../src/mount/mountinfo';
import { isMountPointOf, fsStats, unmount } from '../../src/mount/mounter';
import { KernelNodeMounter } from '../../src/mount/node-mounter';
import { stageFilesystem } from '../../src/mount/stage';
import { describeIf } from '../helpers/prereq';
import { LoopHarness, MiB, XFS_MIN_BYTES, recordingDeps, writeDosPartitionTable } from './loop-harness';

const mkfsCalls = (calls: { cmd: string }[]) => calls.filter((c) => c.cmd.startsWith('mkfs'));

describeIf(
  'stageFilesystem on loop devices',
  { root: true, loop: true, commands: ['losetup', 'blkid', 'mkfs.ext4', 'e2fsck', 'resize2fs', 'mkfs.xfs', 'xfs_growfs', 'mount', 'umount'] },
  () => {
    let h: LoopHarness;
    let n = 0;
    const staging = () => h.path(`staging${n++}`);
    beforeAll(async () => {
      h = await LoopHarness.create('stage-');
    });
    afterAll(() => h.cleanup());

    it.each([
      ['ext4', 64 * MiB],
      ['xfs', XFS_MIN_BYTES],
    ])('formats a blank device as %s and mounts it on the staging path it creates', async (fsType, size) => {
      const d = await h.attach(size as number);
      const path = staging();
      const deps = recordingDeps();
      const res = await stageFilesystem(deps, { device: d.dev, stagingPath: path, fsType: fsType as string });
      expect(res).toEqual({ fsType, formatted: true, alreadyStaged: false });
      expect(await isMountPointOf(path, d.dev)).toBe(true);
      expect((await findMountByTarget(path))?.fsType).toBe(fsType);
      expect(mkfsCalls(deps.calls)).toHaveLength(1);
    });

    it('mounts xfs with nouuid so a clone can sit next to its origin', async () => {
      const d = await h.attach(XFS_MIN_BYTES);
      const deps = recordingDeps();
      await stageFilesystem(deps, { device: d.dev, stagingPath: staging(), fsType: 'xfs' });
      const mountCall = deps.calls.find((c) => c.cmd === 'mount')!;
      expect(mountCall.args.join(' ')).toContain('nouuid');
    });

    it('mounts an existing filesystem with its data and never runs mkfs on it', async () => {
      const d = await h.attach(64 * MiB);
      const first = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: first });
      await writeFile(`${first}/precious.txt`, 'keep me');
      await unmount(recordingDeps(), first);

      const deps = recordingDeps();
      const second = staging();
      const res = await stageFilesystem(deps, { device: d.dev, stagingPath: second, fsType: 'ext4' });
      expect(res.formatted).toBe(false);
      expect(mkfsCalls(deps.calls)).toEqual([]);
      expect(deps.calls.map((c) => c.cmd)).toContain('e2fsck');
      expect(await readFile(`${second}/precious.txt`, 'utf8')).toBe('keep me');
    });

    it('mounts the filesystem that is there when the request asks for another type', async () => {
      const d = await h.attach(XFS_MIN_BYTES);
      await execFile('mkfs.xfs', ['-q', d.dev]);
      const deps = recordingDeps();
      const path = staging();
      const res = await stageFilesystem(deps, { device: d.dev, stagingPath: path, fsType: 'ext4' });
      expect(res).toEqual({ fsType: 'xfs', formatted: false, alreadyStaged: false });
      expect(mkfsCalls(deps.calls)).toEqual([]);
      expect((await findMountByTarget(path))?.fsType).toBe('xfs');
    });

    it('refuses a device with a partition table with FAILED_PRECONDITION naming it, and leaves it untouched', async () => {
      const d = await h.attach(16 * MiB);
      await writeDosPartitionTable(d.dev);
      const deps = recordingDeps();
      const path = staging();
      const err = await stageFilesystem(deps, { device: d.dev, stagingPath: path }).catch((e) => e);
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.message).toContain('dos partition table');
      expect(mkfsCalls(deps.calls)).toEqual([]);
      expect(await findMountByTarget(path)).toBeUndefined();
    });

    it('succeeds without doing anything when the same device is staged twice', async () => {
      const d = await h.attach(32 * MiB);
      const path = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: path });
      const deps = recordingDeps();
      const again = await stageFilesystem(deps, { device: d.dev, stagingPath: path });
      expect(again.alreadyStaged).toBe(true);
      expect(deps.calls.filter((c) => c.cmd !== 'blkid')).toEqual([]);
    });

    it('answers FAILED_PRECONDITION when another device is mounted on the staging path', async () => {
      const a = await h.attach(32 * MiB);
      const b = await h.attach(32 * MiB);
      const path = staging();
      await stageFilesystem(recordingDeps(), { device: a.dev, stagingPath: path });
      const deps = recordingDeps();
      const err = await stageFilesystem(deps, { device: b.dev, stagingPath: path }).catch((e) => e);
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.message).toContain(a.dev);
      expect(mkfsCalls(deps.calls)).toEqual([]);
    });

    it('refuses to stage a blank device read-only, since that would need formatting', async () => {
      const d = await h.attach(16 * MiB);
      const deps = recordingDeps();
      const err = await stageFilesystem(deps, { device: d.dev, stagingPath: staging(), readOnly: true }).catch((e) => e);
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(mkfsCalls(deps.calls)).toEqual([]);
    });

    it('stages an existing filesystem read-only', async () => {
      const d = await h.attach(32 * MiB);
      await execFile('mkfs.ext4', ['-q', d.dev]);
      const path = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: path, readOnly: true });
      expect((await findMountByTarget(path))?.mountOptions).toContain('ro');
      await expect(writeFile(`${path}/x`, 'x')).rejects.toMatchObject({ code: 'EROFS' });
    });

    async function stageGrowRestage(fsType: string, size: number) {
      const d = await h.attach(size);
      const first = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: first, fsType });
      const before = (await fsStats(first)).totalBytes;
      await unmount(recordingDeps(), first);
      await h.grow(d, size * 2);
      const path = staging();
      const result = await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: path, resizeIfNeeded: true }).catch((e) => e);
      return { before, path, result };
    }

    it('grows an xfs filesystem to a device that was extended while unstaged when resizeIfNeeded is set', async () => {
      const { before, path } = await stageGrowRestage('xfs', XFS_MIN_BYTES);
      expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
    });

    // Offline growth before the mount needs no CAP_SYS_RESOURCE, so this holds in unprivileged containers too.
    it('grows an ext4 filesystem offline, before mounting, to a device that was extended while unstaged', async () => {
      const { before, path, result } = await stageGrowRestage('ext4', 64 * MiB);
      expect(result).toMatchObject({ fsType: 'ext4', formatted: false });
      expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
    });

    // A NodeExpandVolume the kernel denied (no CAP_SYS_RESOURCE for an online ext4 grow) or that never ran:
    // the next stage finds the filesystem smaller than its device and grows it, without resizeIfNeeded.
    it('grows an ext4 filesystem smaller than its device offline at every stage, not only when asked', async () => {
      const d = await h.attach(64 * MiB);
      const first = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: first });
      await writeFile(`${first}/keep`, 'data');
      const before = (await fsStats(first)).totalBytes;
      await unmount(recordingDeps(), first);
      await h.grow(d, 128 * MiB);
      const deps = recordingDeps();
      const path = staging();
      expect(await stageFilesystem(deps, { device: d.dev, stagingPath: path })).toEqual({ fsType: 'ext4', formatted: false, alreadyStaged: false });
      expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
      expect(await readFile(`${path}/keep`, 'utf8')).toBe('data');
      // Offline, before the mount: the resize2fs ran before any mount call.
      const cmds = deps.calls.map((c) => c.cmd);
      expect(cmds.indexOf('resize2fs')).toBeGreaterThanOrEqual(0);
      expect(cmds.indexOf('resize2fs')).toBeLessThan(cmds.indexOf('mount'));
    });

    it('grows an xfs filesystem smaller than its device right after mounting it, not only when asked', async () => {
      const d = await h.attach(XFS_MIN_BYTES);
      const first = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: first, fsType: 'xfs' });
      const before = (await fsStats(first)).totalBytes;
      await unmount(recordingDeps(), first);
      await h.grow(d, XFS_MIN_BYTES * 2);
      const deps = recordingDeps();
      const path = staging();
      expect(await stageFilesystem(deps, { device: d.dev, stagingPath: path })).toEqual({ fsType: 'xfs', formatted: false, alreadyStaged: false });
      expect((await fsStats(path)).totalBytes).toBeGreaterThan(before * 1.8);
      expect(deps.calls.filter((c) => c.cmd === 'xfs_growfs')).toEqual([{ cmd: 'xfs_growfs', args: ['-d', path] }]);
    });

    it('leaves a filesystem that fills its device, and a read-only stage, ungrown', async () => {
      const d = await h.attach(64 * MiB);
      const first = staging();
      await stageFilesystem(recordingDeps(), { device: d.dev, stagingPath: first });
      await unmount(recordingDeps(), first);
      const full = recordingDeps();
      const second = staging();
      await stageFilesystem(full, { device: d.dev, stagingPath: second });
      expect(full.calls.map((c) => c.cmd)).not.toContain('resize2fs');
      await unmount(recordingDeps(), second);
      await h.grow(d, 128 * MiB);
      const ro = recordingDeps();
      const third = staging();
      await stageFilesystem(ro, { device: d.dev, stagingPath: third, readOnly: true });
      expect(ro.calls.map((c) => c.cmd)).not.toContain('resize2fs');
      expect((await fsStats(third)).totalBytes).toBeLessThan(70 * MiB);
    });

    // Reference issue #2588: a just-attached device reads as 0 bytes until rescanned.
    it('rescans and retries once when the device still reads as 0 bytes at first', async () => {
      const d = await h.attach(0);
      await truncate(d.file, 64 * MiB); // grown behind the loop driver's back: still 0 until `losetup -c`
      const deps = recordingDeps();
      const path = staging();
      const res = await stageFilesystem(deps, { device: d.dev, stagingPath: path });
      expect(res.formatted).toBe(true);
      expect(deps.calls.filter((c) => c.cmd === 'losetup')).toEqual([{ cmd: 'losetup', args: ['-c', d.dev] }]);
      expect(await isMountPointOf(path, d.dev)).toBe(true);
    });

    it('stages two devices concurrently', async () => {
      const [a, b] = await Promise.all([h.attach(64 * MiB), h.attach(XFS_MIN_BYTES)]);
      const [pa, pb] = [staging(), staging()];
      const [ra, rb] = await Promise.all([
        stageFilesystem(recordingDeps(), { device: a.dev, stagingPath: pa, fsType: 'ext4' }),
        stageFilesystem(recordingDeps(), { device: b.dev, stagingPath: pb, fsType: 'xfs' }),
      ]);
      expect([ra.fsType, rb.fsType]).toEqual(['ext4', 'xfs']);
      expect(await isMountPointOf(pa, a.dev)).toBe(true);
      expect(await isMountPointOf(pb, b.dev)).toBe(true);
    });

    it('formats once when one device is staged concurrently through the node mounter', async () => {
      const d = await h.attach(64 * MiB);
      const path = staging();
      await mkdir(path);
      const deps = recordingDeps();
      const m = new KernelNodeMounter({ exec: deps.exec });
      const results = await Promise.all([1, 2, 3].map(() => m.stageFilesystem({ device: d.dev, stagingPath: path })));
      expect(mkfsCalls(deps.calls)).toHaveLength(1);
      expect(results.filter((r) => r.alreadyStaged)).toHaveLength(2);
    });
  },
);
