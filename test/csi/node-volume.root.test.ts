import { mkdir, writeFile } from 'node:fs/promises';
import { execFile } from '../../src/mount/exec';
import { fsStats } from '../../src/mount/mounter';
import { describeIf } from '../helpers/prereq';
import { hasCapSysResource } from '../mount/loop-harness';
import { GIB, blockCap, codeOf, fsCap, startNodeWorld, type NodeWorld } from '../helpers/node-world';

const MiB = 1024 * 1024;

describeIf(
  'Node expand and stats on simulator loop devices',
  {
    root: true,
    loop: true,
    commands: ['mkfs.ext4', 'mkfs.xfs', 'blkid', 'xfs_growfs', 'resize2fs', 'losetup', 'mount', 'umount'],
  },
  () => {
    let w: NodeWorld;
    let rescanWorld: NodeWorld;
    let n = 0;
    beforeAll(async () => {
      w = await startNodeWorld({ simulator: true });
      rescanWorld = await startNodeWorld({ simulator: true, blockStorage: { rescanOnResize: true } });
    });
    afterAll(async () => {
      await w.close();
      await rescanWorld.close();
    });

    /** Attaches a volume and stages + publishes it; returns its ids and paths. */
    async function published(world: NodeWorld, cap: object) {
      const { id, device } = await world.attachedVolume();
      n++;
      const staging = world.path(`plugins/pv${n}/globalmount`);
      const target = world.path(`pods/p${n}/mount`);
      if ('block' in cap) await mkdir(staging, { recursive: true });
      await world.call('NodeStageVolume', { volume_id: id, staging_target_path: staging, volume_capability: cap });
      await world.call('NodePublishVolume', {
        volume_id: id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: cap,
      });
      return { id, device, staging, target };
    }
    const expandReq = (v: { id: string; target: string; staging: string }, bytes: number, cap?: object) => ({
      volume_id: v.id,
      volume_path: v.target,
      staging_target_path: v.staging,
      capacity_range: { required_bytes: String(bytes) },
      volume_capability: cap ?? null,
    });

    it('grows an xfs filesystem after the simulator extends the volume, answering the device size', async () => {
      const v = await published(w, fsCap('xfs'));
      const before = (await fsStats(v.target)).totalBytes;
      await w.extend(v.id, v.device, 2);
      const res = await w.call('NodeExpandVolume', expandReq(v, 2 * GIB, fsCap('xfs')));
      expect(String(res.capacity_bytes)).toBe(String(2 * GIB));
      expect((await fsStats(v.target)).totalBytes).toBeGreaterThan(before + 0.9 * GIB);
      // Called twice: already full size is a no-op.
      await expect(w.call('NodeExpandVolume', expandReq(v, 2 * GIB))).resolves.toMatchObject({
        capacity_bytes: String(2 * GIB),
      });
    });

    it('grows ext4 online, or says it needs CAP_SYS_RESOURCE where the sandbox lacks it', async () => {
      const v = await published(w, fsCap('ext4'));
      await w.extend(v.id, v.device, 2);
      const call = w.call('NodeExpandVolume', expandReq(v, 2 * GIB));
      if (hasCapSysResource()) {
        await expect(call).resolves.toMatchObject({ capacity_bytes: String(2 * GIB) });
        expect((await fsStats(v.target)).totalBytes).toBeGreaterThan(1.5 * GIB);
      } else {
        const { code, details } = await codeOf(call);
        expect(code).toBe('FAILED_PRECONDITION');
        expect(details).toContain('CAP_SYS_RESOURCE');
      }
      expect(w.calls.some((c) => c.cmd === 'resize2fs')).toBe(true);
    });

    it('answers FAILED_PRECONDITION when the device is still smaller than required_bytes', async () => {
      const v = await published(w, fsCap('xfs'));
      const { code, details } = await codeOf(w.call('NodeExpandVolume', expandReq(v, 3 * GIB)));
      expect(code).toBe('FAILED_PRECONDITION');
      expect(details).toContain(String(3 * GIB));
    });

    it('rescans the device first with rescan-on-resize', async () => {
      const v = await published(rescanWorld, fsCap('xfs'));
      const before = rescanWorld.calls.length;
      expect((await codeOf(rescanWorld.call('NodeExpandVolume', expandReq(v, 3 * GIB)))).code).toBe(
        'FAILED_PRECONDITION',
      );
      expect(rescanWorld.calls.slice(before).some((c) => c.cmd === 'losetup' && c.args[0] === '-c')).toBe(true);
    });

    it('expands a raw block volume without any filesystem step', async () => {
      const v = await published(w, blockCap());
      await w.extend(v.id, v.device, 2);
      const before = w.calls.length;
      const res = await w.call('NodeExpandVolume', expandReq(v, 2 * GIB, blockCap()));
      expect(String(res.capacity_bytes)).toBe(String(2 * GIB));
      expect(w.calls.slice(before).filter((c) => /resize2fs|xfs_growfs/.test(c.cmd))).toEqual([]);
    });

    it('reports plausible byte and inode usage of a filesystem volume, and a normal condition', async () => {
      const v = await published(w, fsCap('ext4'));
      const req = { volume_id: v.id, volume_path: v.target, staging_target_path: v.staging };
      const first = await w.call('NodeGetVolumeStats', req);
      await writeFile(`${v.target}/blob`, Buffer.alloc(8 * MiB, 1));
      await execFile('sync', []);
      const second = await w.call('NodeGetVolumeStats', req);
      const bytes = second.usage.find((u: { unit: string }) => u.unit === 'BYTES');
      const inodes = second.usage.find((u: { unit: string }) => u.unit === 'INODES');
      expect(Number(bytes.total)).toBeGreaterThan(0.8 * GIB);
      expect(Number(bytes.total)).toBeLessThanOrEqual(GIB);
      expect(Number(bytes.used) + Number(bytes.available)).toBeLessThanOrEqual(Number(bytes.total));
      const firstUsed = Number(first.usage.find((u: { unit: string }) => u.unit === 'BYTES').used);
      expect(Number(bytes.used) - firstUsed).toBeGreaterThanOrEqual(7 * MiB);
      expect(Number(inodes.total)).toBeGreaterThan(1000);
      expect(Number(inodes.used)).toBeGreaterThan(0);
      expect(second.volume_condition).toEqual({ abnormal: false, message: expect.any(String) });
    });

    it('reports the total bytes of a raw block volume', async () => {
      const v = await published(w, blockCap());
      const res = await w.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: v.target });
      expect(res.usage).toEqual([expect.objectContaining({ unit: 'BYTES', total: String(GIB) })]);
      expect(res.volume_condition.abnormal).toBe(false);
    });

    it('reports abnormal when the staging mount is removed underneath the volume', async () => {
      const v = await published(w, fsCap('ext4'));
      await execFile('umount', [v.staging]);
      const viaTarget = await w.call('NodeGetVolumeStats', {
        volume_id: v.id,
        volume_path: v.target,
        staging_target_path: v.staging,
      });
      expect(viaTarget.volume_condition).toMatchObject({ abnormal: true, message: expect.stringContaining(v.staging) });
      const viaStaging = await w.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: v.staging });
      expect(viaStaging.volume_condition).toMatchObject({
        abnormal: true,
        message: expect.stringMatching(/no longer a mount/),
      });
    });

    it('reports abnormal when the filesystem went read-only under a read-write publish', async () => {
      const v = await published(w, fsCap('ext4'));
      await execFile('mount', ['-o', 'remount,ro', v.staging]);
      const res = await w.call('NodeGetVolumeStats', {
        volume_id: v.id,
        volume_path: v.target,
        staging_target_path: v.staging,
      });
      expect(res.volume_condition).toMatchObject({ abnormal: true, message: expect.stringMatching(/read-only/) });
    });

    it('reports abnormal when the volume is detached under its mounts', async () => {
      const v = await published(w, fsCap('ext4'));
      await w.clients!.nova.detachVolume(w.sim!.localServerId, v.id);
      await waitGone(`${w.byIdDir}`, v.id);
      const res = await w.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: v.target });
      expect(res.volume_condition).toMatchObject({ abnormal: true, message: expect.stringMatching(/gone/) });
    });
  },
);

async function waitGone(byIdDir: string, volumeId: string): Promise<void> {
  const { findDeviceLink } = await import('../../src/mount/devices');
  for (let i = 0; i < 500 && (await findDeviceLink(volumeId, byIdDir)); i++)
    await new Promise((r) => setTimeout(r, 20));
}
