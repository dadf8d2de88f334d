import { access, chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execFile } from '../../src/mount/exec';
import { findMountByTarget, isMountPoint } from '../../src/mount/mountinfo';
import { deviceSizeBytes } from '../../src/mount/block-device';
import { silentLogger } from '../../src/log';
import { describeIf } from '../helpers/prereq';
import { writeDosPartitionTable } from '../mount/loop-harness';
import { GIB, blockCap, codeOf, fsCap, startNodeWorld, type NodeWorld } from '../helpers/node-world';
import { staleFuseMount } from '../helpers/stale-fuse';

const gone = (p: string) =>
  access(p).then(
    () => false,
    () => true,
  );
const tools = { exec: execFile, log: silentLogger };

describeIf(
  'Node stage and publish on simulator loop devices',
  { root: true, loop: true, fuse: true, commands: ['mkfs.ext4', 'mkfs.xfs', 'blkid', 'losetup', 'mount', 'umount'] },
  () => {
    let w: NodeWorld;
    let n = 0;
    beforeAll(async () => {
      w = await startNodeWorld({ simulator: true });
    });
    afterAll(() => w.close());

    /** Fresh staging and target paths, laid out as kubelet does. */
    const paths = () => {
      n++;
      return { staging: w.path(`plugins/pv/pv${n}/globalmount`), target: w.path(`pods/p${n}/volumes/pv${n}/mount`) };
    };
    const mkfsRuns = () => w.calls.filter((c) => c.cmd.startsWith('mkfs')).length;
    const stageReq = (id: string, staging: string, cap: object) => ({
      volume_id: id,
      staging_target_path: staging,
      volume_capability: cap,
    });
    const publishReq = (id: string, p: { staging: string; target: string }, cap: object, readonly = false) => ({
      volume_id: id,
      staging_target_path: p.staging,
      target_path: p.target,
      volume_capability: cap,
      readonly,
    });

    it.each(['ext4', 'xfs'])(
      'runs the whole kubelet sequence for one %s volume through the socket, keeping data across a restage',
      async (fs) => {
        const { id } = await w.attachedVolume();
        const p = paths();
        const before = mkfsRuns();
        await w.call('NodeStageVolume', stageReq(id, p.staging, fsCap(fs)));
        await w.call('NodeStageVolume', stageReq(id, p.staging, fsCap(fs))); // called twice: no-op
        expect((await findMountByTarget(p.staging))?.fsType).toBe(fs);
        await w.call('NodePublishVolume', publishReq(id, p, fsCap(fs)));
        await w.call('NodePublishVolume', publishReq(id, p, fsCap(fs))); // called twice: no-op
        await writeFile(`${p.target}/data.txt`, `kept on ${fs}`);
        await w.call('NodeUnpublishVolume', { volume_id: id, target_path: p.target });
        await w.call('NodeUnpublishVolume', { volume_id: id, target_path: p.target });
        expect(await gone(p.target)).toBe(true);
        await w.call('NodeUnstageVolume', { volume_id: id, staging_target_path: p.staging });
        await w.call('NodeUnstageVolume', { volume_id: id, staging_target_path: p.staging });
        expect(await gone(p.staging)).toBe(true);

        await w.call('NodeStageVolume', stageReq(id, p.staging, fsCap(fs)));
        await w.call('NodePublishVolume', publishReq(id, p, fsCap(fs)));
        expect(await readFile(`${p.target}/data.txt`, 'utf8')).toBe(`kept on ${fs}`);
        expect(mkfsRuns() - before).toBe(1);
        if (fs === 'xfs')
          expect(w.calls.some((c) => c.cmd === 'mount' && c.args.join(' ').includes('nouuid'))).toBe(true);
      },
    );

    it('applies volume_mount_group (fsGroup) to a block filesystem at publish, as kubelet would: group rw, setgid dirs', async () => {
      const { id } = await w.attachedVolume();
      const p = paths();
      const cap = { ...fsCap(), mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '1700' } };
      await w.call('NodeStageVolume', stageReq(id, p.staging, cap));
      await writeFile(`${p.staging}/old.txt`, 'root wrote this', { mode: 0o644 });
      await w.call('NodePublishVolume', publishReq(id, p, cap));
      const root = await stat(p.target);
      expect([root.gid, (root.mode & 0o2770).toString(8)]).toEqual([1700, '2770']);
      const old = await stat(`${p.target}/old.txt`);
      expect([old.gid, (old.mode & 0o777).toString(8)]).toEqual([1700, '664']);
      // A pod process: another uid, the fsGroup as a supplementary group only. The test dirs above are 0700.
      for (let d = dirname(p.target); d.startsWith(w.dir); d = dirname(d)) await chmod(d, 0o755);
      const { execFile: run } = await import('node:child_process');
      const asPod = (sh: string) =>
        new Promise<string>((resolve, reject) =>
          run('setpriv', ['--reuid=1600', '--regid=1600', '--groups=1700', 'sh', '-c', sh], (e, out, err) =>
            e ? reject(new Error(err)) : resolve(out),
          ),
        );
      await asPod(`echo pod >> ${p.target}/old.txt && echo new > ${p.target}/new.txt`);
      expect((await stat(`${p.target}/new.txt`)).gid).toBe(1700);
      expect(await readFile(`${p.target}/old.txt`, 'utf8')).toBe('root wrote thispod\n');
      await expect(
        new Promise((resolve, reject) =>
          run(
            'setpriv',
            ['--reuid=1600', '--regid=1600', '--clear-groups', 'sh', '-c', `echo x > ${p.target}/intruder.txt`],
            (e) => (e ? reject(e) : resolve(undefined)),
          ),
        ),
      ).rejects.toBeDefined();
      const bad = { ...cap, mount: { ...cap.mount, volume_mount_group: 'wheel' } };
      expect(
        (await codeOf(w.call('NodePublishVolume', publishReq(id, { ...p, target: `${p.target}-2` }, bad)))).code,
      ).toBe('INVALID_ARGUMENT');
    });

    it('publishes read-only when asked: a write fails with EROFS', async () => {
      const { id } = await w.attachedVolume();
      const p = paths();
      await w.call('NodeStageVolume', stageReq(id, p.staging, fsCap()));
      await w.call('NodePublishVolume', publishReq(id, p, fsCap(), true));
      expect((await findMountByTarget(p.target))?.mountOptions).toContain('ro');
      await expect(writeFile(`${p.target}/x`, 'no')).rejects.toMatchObject({ code: 'EROFS' });
      // The same target asked read-write now is another publication: the CSI spec's ALREADY_EXISTS.
      expect((await codeOf(w.call('NodePublishVolume', publishReq(id, p, fsCap(), false)))).code).toBe(
        'ALREADY_EXISTS',
      );
    });

    it('publishes a raw block volume as a block device of the volume size, without any mkfs', async () => {
      const { id } = await w.attachedVolume();
      const p = paths();
      await mkdir(p.staging, { recursive: true }); // kubelet creates the block staging dir itself
      const before = mkfsRuns();
      await w.call('NodeStageVolume', stageReq(id, p.staging, blockCap()));
      await w.call('NodePublishVolume', publishReq(id, p, blockCap()));
      await w.call('NodePublishVolume', publishReq(id, p, blockCap()));
      expect((await stat(p.target)).isBlockDevice()).toBe(true);
      expect(await deviceSizeBytes(tools, p.target)).toBe(GIB);
      expect(mkfsRuns()).toBe(before);
      await w.call('NodeUnpublishVolume', { volume_id: id, target_path: p.target });
      expect(await gone(p.target)).toBe(true);
      await w.call('NodeUnstageVolume', { volume_id: id, staging_target_path: p.staging });
    });

    it('mounts a device that already holds a filesystem with data, never running mkfs on it', async () => {
      const { id, device } = await w.attachedVolume();
      await execFile('mkfs.ext4', ['-q', device]);
      const scratch = w.path('scratch');
      await mkdir(scratch, { recursive: true });
      await execFile('mount', [device, scratch]);
      await writeFile(`${scratch}/precious.txt`, 'do not format me');
      await execFile('umount', [scratch]);
      const p = paths();
      const before = w.calls.length;
      await w.call('NodeStageVolume', stageReq(id, p.staging, fsCap('ext4')));
      expect(w.calls.slice(before).filter((c) => c.cmd.startsWith('mkfs'))).toEqual([]);
      expect(await readFile(`${p.staging}/precious.txt`, 'utf8')).toBe('do not format me');
    });

    it('refuses a device with a partition table with FAILED_PRECONDITION and leaves it unformatted', async () => {
      const { id, device } = await w.attachedVolume();
      await writeDosPartitionTable(device);
      const p = paths();
      const before = mkfsRuns();
      const { code, details } = await codeOf(w.call('NodeStageVolume', stageReq(id, p.staging, fsCap())));
      expect(code).toBe('FAILED_PRECONDITION');
      expect(details).toMatch(/partition/i);
      expect(mkfsRuns()).toBe(before);
      expect(await isMountPoint(p.staging)).toBe(false);
    });

    it('answers FAILED_PRECONDITION when another volume is already staged on the path', async () => {
      const a = await w.attachedVolume();
      const b = await w.attachedVolume();
      const p = paths();
      await w.call('NodeStageVolume', stageReq(a.id, p.staging, fsCap()));
      expect((await codeOf(w.call('NodeStageVolume', stageReq(b.id, p.staging, fsCap())))).code).toBe(
        'FAILED_PRECONDITION',
      );
    });

    it('stages two volumes concurrently', async () => {
      const [a, b] = await Promise.all([w.attachedVolume(), w.attachedVolume()]);
      const [pa, pb] = [paths(), paths()];
      await Promise.all([
        w.call('NodeStageVolume', stageReq(a.id, pa.staging, fsCap('ext4'))),
        w.call('NodeStageVolume', stageReq(b.id, pb.staging, fsCap('xfs'))),
      ]);
      expect((await findMountByTarget(pa.staging))?.fsType).toBe('ext4');
      expect((await findMountByTarget(pb.staging))?.fsType).toBe('xfs');
    });

    it('cleans up stale (ENOTCONN) mounts on unpublish and unstage, and reports them abnormal meanwhile', async () => {
      const p = paths();
      for (const path of [p.staging, p.target]) await staleFuseMount(path);
      await expect(stat(p.target)).rejects.toMatchObject({ code: 'ENOTCONN' });
      const stats = await w.call('NodeGetVolumeStats', { volume_id: 'v', volume_path: p.target });
      expect(stats.volume_condition).toMatchObject({ abnormal: true, message: expect.stringMatching(/stale/) });
      await w.call('NodeUnpublishVolume', { volume_id: 'v', target_path: p.target });
      await w.call('NodeUnstageVolume', { volume_id: 'v', staging_target_path: p.staging });
      expect(await isMountPoint(p.target)).toBe(false);
      expect(await gone(p.staging)).toBe(true);
    });
  },
);
