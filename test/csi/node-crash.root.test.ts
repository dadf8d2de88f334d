import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMountPoint } from '../../src/mount/mountinfo';
import { describeIf } from '../helpers/prereq';
import { startStageChild, type StageChildArgs } from '../helpers/node-crash';
import { fsCap, startNodeWorld, waitFor, type NodeWorld } from '../helpers/node-world';

const mkfsLines = async (file: string) =>
  (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('mkfs'));

describeIf(
  'Staging survives a SIGKILL at any step',
  { root: true, loop: true, commands: ['mkfs.ext4', 'e2fsck', 'blkid', 'losetup', 'mount', 'umount'] },
  () => {
    let w: NodeWorld;
    beforeAll(async () => {
      w = await startNodeWorld({ simulator: true });
    });
    afterAll(() => w.close());

    /** Runs the child until it prints one of the outcome lines; kills it when it paused. */
    async function run(base: StageChildArgs, pauseAfter?: string): Promise<string> {
      const child = startStageChild({ ...base, pauseAfter });
      try {
        return await child.waitForLine(pauseAfter === 'wait' ? 'paused:wait' : 'paused:', 'done:', 'error:');
      } finally {
        await child.kill();
      }
    }

    it('restages after kills during the device wait, just after mkfs and just after mount: one mkfs, data intact', async () => {
      const sim = w.sim!;
      const cloud = w.clients!;
      const vol = await cloud.cinder.createVolume({ name: 'crash', size: 1 });
      await waitFor('available', async () => (sim.getVolume(vol.id)?.status === 'available' ? true : undefined));
      const staging = w.path('plugins/pv-crash/globalmount');
      const base: StageChildArgs = {
        volumeId: vol.id,
        byIdDir: w.byIdDir,
        stagingPath: staging,
        callsFile: join(w.dir, 'calls.log'),
      };

      // 1. Killed while waiting for a device that is not attached yet: nothing to undo.
      expect(await run(base, 'wait')).toBe('paused:wait');
      await cloud.nova.attachVolume(sim.localServerId, vol.id);
      await waitFor('loop device', async () => sim.getVolume(vol.id)?.devicePath);

      // 2. Killed right after mkfs, before the mount.
      expect(await run(base, 'mkfs')).toMatch(/^paused:mkfs/);
      expect(await isMountPoint(staging)).toBe(false);

      // 3. The rerun finds the filesystem, mounts it (no mkfs) and is killed right after the mount.
      expect(await run(base, 'mount')).toBe('paused:mount');
      expect(await isMountPoint(staging)).toBe(true);
      await writeFile(`${staging}/written-between-crashes.txt`, 'survives');

      // 4. A rerun with the mount left behind sees it staged already.
      const done = await run(base);
      expect(done).toMatch(/^done:/);
      expect(JSON.parse(done.slice('done:'.length))).toMatchObject({ alreadyStaged: true, formatted: false });

      // 5. Unstaged, killed once more just after mounting, then staged through the socket by the real handler.
      await w.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: staging });
      expect(await run(base, 'mount')).toBe('paused:mount');
      const before = w.calls.length;
      await w.call('NodeStageVolume', {
        volume_id: vol.id,
        staging_target_path: staging,
        volume_capability: fsCap('ext4'),
      });
      expect(w.calls.slice(before).filter((c) => c.cmd.startsWith('mkfs'))).toEqual([]);

      expect(await readFile(`${staging}/written-between-crashes.txt`, 'utf8')).toBe('survives');
      expect(await mkfsLines(base.callsFile)).toHaveLength(1);
    });
  },
);
