/**
 * Crash consistency of the node plugin (issue #11): the real plugin process is SIGKILLed together with the
 * command it is running (its process group, as when the container dies) in the middle of mkfs.ext4 and
 * mkfs.xfs, of the offline ext4 grow at stage and of the online xfs grow, then started again and the call
 * retried as kubelet does. Each ends mounted at the right size with a filesystem fsck finds clean, and a filesystem that held
 * data is never formatted again. Kills right after a command (blkid, fsck, mount) use the stage child's
 * pause points. The object-volume case (PID namespace killed with FUSE mounts live) is test/fuse/supervisor.root.test.ts.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Status } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { execFile } from '../../src/mount/exec';
import { isUnfinishedXfs, probeDevice } from '../../src/mount/filesystem';
import { fsStats } from '../../src/mount/mounter';
import { isMountPoint } from '../../src/mount/mountinfo';
import { growUndoFile } from '../../src/mount/stage';
import { findProcesses, isRunning, startPluginProcess, until, type PluginProcess } from '../helpers/crash-plugin';
import { startStageChild } from '../helpers/node-crash';
import { slowDisk } from '../helpers/crash-slow-disk';
import { describeIf } from '../helpers/prereq';
import { GIB, NODE_ID, fsCap, startNodeWorld, waitFor, type NodeWorld } from '../helpers/node-world';

const RESIZE_REQUIRED = { 'cinder.csi.openstack.org/resizeRequired': 'true' };
/** Sparse sizes that keep mkfs.ext4 (~0.3 s) and resize2fs (~1 s) running long enough to stop them mid-way. */
const MKFS_GIB = 4096;
const GROW_FROM_GIB = 64;
const GROW_TO_GIB = 2048;
/** Writes of the plugin's slow disk, bytes per second: mkfs.xfs of 1 GiB then takes a few seconds. */
const SLOW_DISK_BPS = 8 * 1024 * 1024;
/** Undo data resize2fs has saved when the grow test kills it (of about 28 MB for this grow). */
const UNDO_KILL_BYTES = 5 * 1024 * 1024;
/** Tries to land the kill inside mkfs.xfs's window (one or two are enough in practice). */
const XFS_ATTEMPTS = 3;
const tools = { exec: execFile, log: silentLogger };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeIf(
  'The node plugin survives a SIGKILL in the middle of mkfs and of a grow; nothing is reformatted',
  {
    root: true,
    loop: true,
    commands: [
      'mkfs.ext4',
      'mkfs.xfs',
      'e2fsck',
      'e2undo',
      'resize2fs',
      'xfs_growfs',
      'xfs_repair',
      'fsfreeze',
      'wipefs',
      'blkid',
      'losetup',
      'mount',
      'umount',
    ],
  },
  () => {
    let w: NodeWorld;
    let plugin: PluginProcess;
    let socket: string;

    const start = () =>
      startPluginProcess(
        socket,
        [
          '--provide-controller-service=false',
          `--node-id=${NODE_ID}`,
          `--kubelet-dir=${w.kubeletDir}`,
          `--by-id-dir=${w.byIdDir}`,
          `--fuse-state-dir=${join(w.dir, 'fuse')}`,
          '--log-level=warn',
        ],
        'Node',
      );
    const stageReq = (volumeId: string, staging: string, fsType = 'ext4', ctx: Record<string, string> = {}) => ({
      volume_id: volumeId,
      staging_target_path: staging,
      volume_capability: fsCap(fsType),
      publish_context: {},
      volume_context: ctx,
    });
    const uuidOf = async (device: string) =>
      (await execFile('blkid', ['-p', '-s', 'UUID', '-o', 'value', device], { okCodes: [0, 2] })).stdout.trim();

    /** fsck in check-only mode must find nothing to fix (e2fsck -fn / xfs_repair -n exit 0). */
    async function expectFsckClean(device: string, fsType: string): Promise<void> {
      const res =
        fsType === 'xfs'
          ? await execFile('xfs_repair', ['-n', device], { okCodes: [0, 1] })
          : await execFile('e2fsck', ['-fn', device], { okCodes: [0, 1, 2, 4, 8] });
      expect({ code: res.code, out: res.code === 0 ? '' : `${res.stdout}${res.stderr}` }).toEqual({ code: 0, out: '' });
    }

    /**
     * Waits for the plugin to run `cmd` with `arg`, lets it work `afterMs` (or until `afterMs()` resolves),
     * stops it there (SIGSTOP, so it cannot finish while the kill is on its way) and SIGKILLs the plugin's
     * process group: the command dies half-done with the driver, as when the node plugin container is killed.
     */
    async function killDuring(
      cmd: string,
      arg: string,
      afterMs: number | (() => Promise<void>),
      beforeReap?: () => Promise<void>,
    ): Promise<void> {
      const [proc] = await waitFor(`${cmd} to run`, async () => {
        const found = await findProcesses((argv) => basename(argv[0]) === cmd && argv.includes(arg));
        return found.length ? found : undefined;
      });
      await (typeof afterMs === 'number' ? sleep(afterMs) : afterMs());
      process.kill(proc.pid, 'SIGSTOP');
      expect(await isRunning(proc.pid)).toBe(true);
      const killed = plugin.kill({ group: true });
      await beforeReap?.();
      await killed;
      await waitFor(`${cmd} to be gone`, async () => ((await isRunning(proc.pid)) ? undefined : true));
    }

    beforeAll(async () => {
      w = await startNodeWorld({ simulator: { quota: { gigabytes: 100_000 } } });
      socket = join(w.dir, 'node.sock');
      plugin = await start();
    }, 120_000);
    // A failed test must not leave the next one without a plugin.
    afterEach(async () => {
      if (plugin.child.proc.exitCode !== null || plugin.child.proc.signalCode !== null) plugin = await start();
    });
    afterAll(async () => {
      await plugin?.kill({ group: true });
      await w?.close();
    });

    it('NodeStage killed in the middle of mkfs.ext4: the retry formats the blank device, mounts it, fsck clean', async () => {
      const vol = await w.attachedVolume(MKFS_GIB);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/mkfs/globalmount');
      const call = plugin.call('NodeStageVolume', stageReq(vol.id, staging)).catch((e: Error) => e);
      await killDuring('mkfs.ext4', vol.device, 20);
      expect(await call).toBeInstanceOf(Error);
      expect(await isMountPoint(staging)).toBe(false);

      plugin = await start();
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging));
      expect(await isMountPoint(staging)).toBe(true);
      await writeFile(join(staging, 'after-crash.txt'), 'kept');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      await expectFsckClean(vol.device, 'ext4');
    });

    it('NodeStage killed while mkfs.xfs finishes (superblock written, still in progress): the retry makes it again', async () => {
      const vol = await w.attachedVolume(1);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/mkfs-xfs/globalmount');
      // mkfs.xfs writes its first superblock flagged in progress near its end and clears the flag last: a
      // window of a millisecond or two on a loop device, so the plugin gets a slow disk to kill it in. Even
      // so the kill can land just after the flag is cleared: then the blank device is tried again.
      let landed = false;
      for (let attempt = 1; attempt <= XFS_ATTEMPTS && !landed; attempt++) {
        if (attempt > 1) await execFile('wipefs', ['-a', vol.device]);
        const disk = await slowDisk(vol.device, SLOW_DISK_BPS);
        try {
          await disk.addProcess(plugin.child.proc.pid!);
          const call = plugin.call('NodeStageVolume', stageReq(vol.id, staging, 'xfs')).catch((e: Error) => e);
          await killDuring('mkfs.xfs', vol.device, () =>
            until(
              'mkfs.xfs to write its superblock',
              async () => {
                if (await isUnfinishedXfs(vol.device)) return true;
                return (await findProcesses((argv) => basename(argv[0]) === 'mkfs.xfs')).length === 0;
              },
              60_000,
            ),
          ).catch(() => plugin.kill({ group: true }));
          await call;
        } finally {
          await disk.close();
        }
        plugin = await start();
        landed = (await probeDevice(tools, vol.device)).kind === 'unfinished';
        // Missed: mkfs finished first and the stage may even have mounted it; undo that for the next try.
        if (!landed && (await isMountPoint(staging)))
          await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      }
      // What the kill left: blkid sees xfs, the kernel refuses to mount it.
      expect(await probeDevice(tools, vol.device)).toEqual({ kind: 'unfinished', type: 'xfs' });
      const probeDir = join(w.dir, 'probe-mount');
      await mkdir(probeDir, { recursive: true });
      await expect(execFile('mount', ['-t', 'xfs', vol.device, probeDir])).rejects.toThrow();

      await plugin.call('NodeStageVolume', stageReq(vol.id, staging, 'xfs'));
      expect(await isMountPoint(staging)).toBe(true);
      await writeFile(join(staging, 'after-crash.txt'), 'kept');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      await expectFsckClean(vol.device, 'xfs');
    }, 120_000);

    it('the plugin alone killed mid-mkfs, mkfs outliving it: a second mkfs cannot start under it; the retry then mounts its filesystem', async () => {
      const vol = await w.attachedVolume(MKFS_GIB);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/orphan/globalmount');
      const call = plugin.call('NodeStageVolume', stageReq(vol.id, staging)).catch((e: Error) => e);
      const [mkfs] = await waitFor('mkfs.ext4 to run', async () => {
        const found = await findProcesses((argv) => basename(argv[0]) === 'mkfs.ext4' && argv.includes(vol.device));
        return found.length ? found : undefined;
      });
      // Held half-way while the plugin dies alone (an OOM kill of the node process): the orphan keeps the device.
      process.kill(mkfs.pid, 'SIGSTOP');
      await plugin.kill();
      expect(await call).toBeInstanceOf(Error);
      try {
        plugin = await start();
        // The device still reads blank, but the kernel's exclusive open keeps a second mkfs (and a mount) off it.
        const refused = await plugin.call('NodeStageVolume', stageReq(vol.id, staging)).then(
          () => undefined,
          (e: { code?: number }) => e,
        );
        expect(refused).toMatchObject({ code: Status.ABORTED });
        expect(await isMountPoint(staging)).toBe(false);
      } finally {
        process.kill(mkfs.pid, 'SIGCONT');
      }
      await waitFor('the orphaned mkfs to finish', async () => ((await isRunning(mkfs.pid)) ? undefined : true));
      const uuid = await uuidOf(vol.device);
      expect(uuid).not.toBe('');

      await plugin.call('NodeStageVolume', stageReq(vol.id, staging));
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      expect(await uuidOf(vol.device)).toBe(uuid);
      await expectFsckClean(vol.device, 'ext4');
    });

    it('a volume holding data, killed after each step of restaging, is mounted again and never reformatted', async () => {
      const vol = await w.attachedVolume(1);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/data/globalmount');
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging));
      await writeFile(join(staging, 'precious.txt'), 'written before the crashes');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      const uuid = await uuidOf(vol.device);
      const callsFile = join(w.dir, 'data-calls.log');

      // blkid probe, e2fsck before mount, mount: the child is killed right after each (still mounted after the last).
      for (const point of ['blkid', 'e2fsck', 'mount']) {
        const child = startStageChild({
          volumeId: vol.id,
          byIdDir: w.byIdDir,
          stagingPath: staging,
          callsFile,
          pauseAfter: point,
        });
        expect(await child.waitForLine('paused:', 'done:', 'error:')).toBe(`paused:${point}`);
        await child.kill({ group: true });
      }
      expect(await isMountPoint(staging)).toBe(true);
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging));
      expect(await readFile(join(staging, 'precious.txt'), 'utf8')).toBe('written before the crashes');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });

      expect((await readFile(callsFile, 'utf8')).split('\n').filter((l) => l.startsWith('mkfs'))).toEqual([]);
      expect(await uuidOf(vol.device)).toBe(uuid);
      await expectFsckClean(vol.device, 'ext4');
    });

    it('the offline ext4 grow at stage killed in the middle of resize2fs: the retry grows it, data intact, fsck clean', async () => {
      const vol = await w.attachedVolume(GROW_FROM_GIB);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/grow-ext4/globalmount');
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging));
      await writeFile(join(staging, 'precious.txt'), 'written before the grow');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      const uuid = await uuidOf(vol.device);
      await w.extend(vol.id, vol.device, GROW_TO_GIB);

      // A volume restored into a larger size is staged with resizeRequired: e2fsck -f, resize2fs, then mount.
      const call = plugin
        .call('NodeStageVolume', stageReq(vol.id, staging, 'ext4', RESIZE_REQUIRED))
        .catch((e: Error) => e);
      // Killed once resize2fs has rewritten a good part of the metadata (its undo file has grown): unprotected,
      // this leaves a resize inode e2fsck -p will not repair, and the volume could never be staged again.
      const undo = growUndoFile(staging);
      const undoBytes = async () => (await stat(undo).catch(() => undefined))?.size ?? 0;
      await killDuring('resize2fs', vol.device, () =>
        until('resize2fs to be well under way', async () => (await undoBytes()) >= UNDO_KILL_BYTES),
      );
      expect(await call).toBeInstanceOf(Error);
      expect(await isMountPoint(staging)).toBe(false);

      plugin = await start();
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging, 'ext4', RESIZE_REQUIRED));
      expect((await fsStats(staging)).totalBytes).toBeGreaterThan(0.98 * GROW_TO_GIB * GIB);
      expect(await readFile(join(staging, 'precious.txt'), 'utf8')).toBe('written before the grow');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      expect(await uuidOf(vol.device)).toBe(uuid);
      await expectFsckClean(vol.device, 'ext4');
    });

    it('the online xfs grow killed in the middle of xfs_growfs: the retried NodeExpand grows it, fsck clean', async () => {
      const vol = await w.attachedVolume(16);
      const staging = w.path('plugins/kubernetes.io/csi/cinder.csi.openstack.org/grow-xfs/globalmount');
      await plugin.call('NodeStageVolume', stageReq(vol.id, staging, 'xfs'));
      await writeFile(join(staging, 'precious.txt'), 'written before the grow');
      await w.extend(vol.id, vol.device, 64);
      const expandReq = {
        volume_id: vol.id,
        volume_path: staging,
        staging_target_path: staging,
        capacity_range: { required_bytes: String(64 * GIB) },
        volume_capability: fsCap('xfs'),
      };

      // xfs_growfs is one ioctl that takes a few ms; a frozen filesystem holds it inside the kernel, half-way.
      await execFile('fsfreeze', ['-f', staging]);
      const call = plugin.call('NodeExpandVolume', expandReq).catch((e: Error) => e);
      await killDuring('xfs_growfs', staging, 100, () => execFile('fsfreeze', ['-u', staging]).then(() => undefined));
      expect(await call).toBeInstanceOf(Error);

      plugin = await start();
      const res = await plugin.call('NodeExpandVolume', expandReq);
      expect(Number(res.capacity_bytes)).toBe(64 * GIB);
      expect((await fsStats(staging)).totalBytes).toBeGreaterThan(0.98 * 64 * GIB);
      expect(await readFile(join(staging, 'precious.txt'), 'utf8')).toBe('written before the grow');
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      await expectFsckClean(vol.device, 'xfs');
    });
  },
);
