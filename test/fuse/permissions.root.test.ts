/**
 * uid/gid/umask and fsGroup on object volumes, checked as two different non-root users through
 * `setpriv`: the owner may read and write, another uid is refused (s3fs enforces modes itself, rclone
 * through --default-permissions), and an fsGroup member gets in through the group.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { objCap, runAs, S3_SECRETS, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';

const OWNER = 1500;
const OTHER = 1600;
const FS_GROUP = 1700;

describeIf(
  'object volume permissions',
  { root: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount', 'setpriv'] },
  () => {
    let w: FuseWorld;
    beforeAll(async () => {
      w = await startFuseWorld(['perm-s3fs', 'perm-rclone', 'grp-s3fs', 'grp-rclone']);
      // The temp dirs are 0700; the users under test must be able to walk to the mounts.
      await chmod(w.dir, 0o755);
      await chmod(w.kubeletDir, 0o755);
    }, 60_000);
    afterAll(async () => {
      await w?.close();
    }, 60_000);

    /** Stages and publishes, opening every directory above the target for traversal. */
    async function publish(
      mounter: string,
      bucket: string,
      context: Record<string, string>,
      group = '',
    ): Promise<string> {
      const base = { volume_id: `obj1:s3:${bucket}:`, volume_capability: objCap('MULTI_NODE_MULTI_WRITER', group) };
      const staging = w.path(`plugins/${bucket}/globalmount`);
      const ctx = { backend: 'object', provider: 's3', endpoint: w.s3.endpoint, mounter, ...context };
      await w.call('NodeStageVolume', {
        ...base,
        staging_target_path: staging,
        volume_context: ctx,
        secrets: S3_SECRETS,
      });
      const target = w.path(`pods/${bucket}/mount`);
      await w.call('NodePublishVolume', {
        ...base,
        staging_target_path: staging,
        target_path: target,
        volume_context: ctx,
      });
      for (const d of ['pods', `pods/${bucket}`]) await chmod(w.path(d), 0o755);
      return target;
    }

    it.each(['s3fs', 'rclone'])('%s: uid/gid/umask give the owner access and refuse another uid', async (mounter) => {
      const target = await publish(mounter, `perm-${mounter}`, {
        uid: String(OWNER),
        gid: String(OWNER),
        umask: '0007',
      });
      const file = join(target, 'owned.txt');
      expect(await runAs(OWNER, ['sh', '-c', 'echo mine > "$0" && cat "$0"', file])).toMatchObject({
        code: 0,
        out: 'mine\n',
      });
      const denied = await runAs(OTHER, ['sh', '-c', 'cat "$0"', file]);
      expect(denied.code).not.toBe(0);
      expect(denied.out).toMatch(/Permission denied/);
      expect((await runAs(OTHER, ['sh', '-c', 'echo x > "$0"', join(target, 'intruder.txt')])).code).not.toBe(0);
    });

    // A pod's processes get the fsGroup as a supplementary group (their gid is runAsGroup). rclone leaves the
    // check to the kernel (--default-permissions), which sees supplementary groups: members in, others out.
    // s3fs checks access itself against the primary gid and /etc/group only, so there an fsGroup sets the group
    // and leaves the mode open (S3FS_FSGROUP_DEFAULT_UMASK): members get in, and so does anyone else who can
    // reach the mount (only the pods it is bound into).
    it.each(['s3fs', 'rclone'])(
      '%s: volume_mount_group (fsGroup) lets a pod process in through its supplementary group',
      async (mounter) => {
        const target = await publish(mounter, `grp-${mounter}`, {}, String(FS_GROUP));
        await writeFile(join(target, 'seed.txt'), 'seed');
        const member = [
          'setpriv',
          `--reuid=${OTHER}`,
          `--regid=${OTHER}`,
          `--groups=${FS_GROUP}`,
          'sh',
          '-c',
          'echo member > "$0" && cat "$0"',
          join(target, 'm.txt'),
        ];
        const { execAsync } = await import('../helpers/fuse-world');
        expect((await execAsync(member[0], member.slice(1))).stdout).toBe('member\n');
        const { stat } = await import('node:fs/promises');
        expect((await stat(join(target, 'm.txt'))).gid).toBe(FS_GROUP);
        const outsider = await runAs(OWNER, ['sh', '-c', 'cat "$0"', join(target, 'seed.txt')]);
        expect(outsider.code === 0).toBe(mounter === 's3fs');
      },
    );
  },
);
