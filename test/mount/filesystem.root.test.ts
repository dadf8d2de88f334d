import { constants } from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { Status } from '../../src/errors';
import { execFile } from '../../src/mount/exec';
import { checkFilesystem, deviceSizeBytes, formatDevice, probeDevice, rescanDevice } from '../../src/mount/filesystem';
import { describeIf } from '../helpers/prereq';
import { LoopHarness, MiB, XFS_MIN_BYTES, recordingDeps, writeDosPartitionTable } from './loop-harness';

describeIf(
  'filesystem tools on loop devices',
  { root: true, loop: true, commands: ['losetup', 'blkid', 'mkfs.ext4', 'e2fsck', 'mkfs.xfs', 'mkswap'] },
  () => {
    let h: LoopHarness;
    beforeAll(async () => {
      h = await LoopHarness.create('filesystem-');
    });
    afterAll(() => h.cleanup());

    it('probes a zeroed device as blank', async () => {
      const d = await h.attach(16 * MiB);
      expect(await probeDevice(recordingDeps(), d.dev)).toEqual({ kind: 'blank' });
    });

    it('probes an ext4 and an xfs filesystem by type', async () => {
      const e = await h.attach(16 * MiB);
      const x = await h.attach(XFS_MIN_BYTES);
      await execFile('mkfs.ext4', ['-q', e.dev]);
      await execFile('mkfs.xfs', ['-q', x.dev]);
      expect(await probeDevice(recordingDeps(), e.dev)).toEqual({ kind: 'filesystem', type: 'ext4' });
      expect(await probeDevice(recordingDeps(), x.dev)).toEqual({ kind: 'filesystem', type: 'xfs' });
    });

    it('probes a DOS partition table as a partition table', async () => {
      const d = await h.attach(16 * MiB);
      await writeDosPartitionTable(d.dev);
      expect(await probeDevice(recordingDeps(), d.dev)).toEqual({ kind: 'partition-table', type: 'dos' });
    });

    it('probes a non-filesystem signature (swap) as other', async () => {
      const d = await h.attach(16 * MiB);
      await execFile('mkswap', [d.dev]);
      expect(await probeDevice(recordingDeps(), d.dev)).toEqual({ kind: 'other', type: 'swap' });
    });

    it('formats a blank device as ext4 with lazy init and no -F', async () => {
      const d = await h.attach(64 * MiB);
      const deps = recordingDeps();
      await formatDevice(deps, d.dev, 'ext4');
      const mkfs = deps.calls.find((c) => c.cmd === 'mkfs.ext4')!;
      expect(mkfs.args).toContain('lazy_itable_init=1,lazy_journal_init=1');
      expect(mkfs.args).not.toContain('-F');
      expect(await probeDevice(deps, d.dev)).toEqual({ kind: 'filesystem', type: 'ext4' });
    });

    it('answers ABORTED, formatting nothing, while another process holds the device (an earlier mkfs still running)', async () => {
      const d = await h.attach(XFS_MIN_BYTES);
      // O_EXCL on a block device is the exclusive open mkfs and mount take.
      const holder = await open(d.dev, constants.O_RDONLY | constants.O_EXCL);
      try {
        for (const fs of ['ext4', 'xfs']) {
          await expect(formatDevice(recordingDeps(), d.dev, fs)).rejects.toMatchObject({
            code: Status.ABORTED,
            message: expect.stringMatching(/held by another process/),
          });
        }
      } finally {
        await holder.close();
      }
      expect(await probeDevice(recordingDeps(), d.dev)).toEqual({ kind: 'blank' });
      await formatDevice(recordingDeps(), d.dev, 'ext4');
      expect(await probeDevice(recordingDeps(), d.dev)).toEqual({ kind: 'filesystem', type: 'ext4' });
    });

    it('formats ext3 and xfs', async () => {
      const e = await h.attach(16 * MiB);
      const x = await h.attach(XFS_MIN_BYTES);
      await formatDevice(recordingDeps(), e.dev, 'ext3');
      await formatDevice(recordingDeps(), x.dev, 'xfs');
      expect(await probeDevice(recordingDeps(), e.dev)).toEqual({ kind: 'filesystem', type: 'ext3' });
      expect(await probeDevice(recordingDeps(), x.dev)).toEqual({ kind: 'filesystem', type: 'xfs' });
    });

    it.each([
      ['an ext4 filesystem', (dev: string) => execFile('mkfs.ext4', ['-q', dev])],
      ['a partition table', (dev: string) => writeDosPartitionTable(dev)],
      ['a swap signature', (dev: string) => execFile('mkswap', [dev])],
    ])('refuses to format a device holding %s with FAILED_PRECONDITION and never runs mkfs', async (_what, prepare) => {
      const d = await h.attach(16 * MiB);
      await prepare(d.dev);
      const deps = recordingDeps();
      const err = await formatDevice(deps, d.dev, 'ext4').catch((e) => e);
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.message).toContain(d.dev);
      expect(deps.calls.filter((c) => c.cmd.startsWith('mkfs'))).toEqual([]);
    });

    it('rejects a filesystem type it does not make with INVALID_ARGUMENT', async () => {
      const d = await h.attach(16 * MiB);
      const err = await formatDevice(recordingDeps(), d.dev, 'ntfs').catch((e) => e);
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.message).toContain('ntfs');
    });

    it('passes e2fsck on a clean ext4 and skips the check for xfs', async () => {
      const e = await h.attach(16 * MiB);
      await execFile('mkfs.ext4', ['-q', e.dev]);
      const deps = recordingDeps();
      await checkFilesystem(deps, e.dev, 'ext4');
      await checkFilesystem(deps, e.dev, 'xfs');
      expect(deps.calls.map((c) => c.cmd)).toEqual(['e2fsck']);
    });

    it('reports FAILED_PRECONDITION when e2fsck -p cannot repair the filesystem', async () => {
      const e = await h.attach(16 * MiB);
      await execFile('mkfs.ext4', ['-q', e.dev]);
      // Zero the primary superblock's magic area: -p refuses to fix that without a human.
      const fh = await open(e.dev, 'r+');
      await fh.write(Buffer.alloc(1024), 0, 1024, 1024);
      await fh.close();
      const err = await checkFilesystem(recordingDeps(), e.dev, 'ext4').catch((x) => x);
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
    });

    it('reads the size of a device and sees growth after a rescan', async () => {
      const d = await h.attach(8 * MiB);
      const deps = recordingDeps();
      expect(await deviceSizeBytes(deps, d.dev)).toBe(8 * MiB);
      await truncate(d.file, 24 * MiB);
      expect(await rescanDevice(deps, d.dev)).toBe(true);
      expect(await deviceSizeBytes(deps, d.dev)).toBe(24 * MiB);
    });
  },
);
