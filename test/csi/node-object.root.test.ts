/**
 * Object volumes through the Node service, end to end: real s3rver, real s3fs and rclone mounts owned by a
 * separate FUSE supervisor process, binds into several targets (RWX), read-only enforced by the kernel,
 * prefix mode, stats and clean teardown (credential file removed).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { codeOf } from '../helpers/node-world';
import { getObject, putObject, waitUntil } from '../helpers/fuse-procs';
import { objCap, S3_SECRETS, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';
import { readMountInfo } from '../../src/mount/mountinfo';

const MOUNTERS = ['s3fs', 'rclone'] as const;

describeIf(
  'object volume node lifecycle',
  { root: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount'] },
  () => {
    let w: FuseWorld;
    beforeAll(async () => {
      w = await startFuseWorld(['bkt-s3fs', 'bkt-rclone', 'shared']);
    }, 60_000);
    afterAll(async () => {
      await w?.close();
    }, 60_000);

    const ctxFor = (mounter: string, extra: Record<string, string> = {}) => ({
      backend: 'object',
      provider: 's3',
      endpoint: w.s3.endpoint,
      region: 'us-east-1',
      pathStyle: 'true',
      mounter,
      // rclone uploads 5 s after close by default; the bucket check below wants it at once.
      mountOptions: mounter === 'rclone' ? 'vfs-write-back=0s' : '',
      ...extra,
    });

    it.each(MOUNTERS)(
      '%s: stage, publish twice rw and once ro, share data, refuse ro writes, unpublish, unstage',
      async (mounter) => {
        const volume_id = `obj1:s3:bkt-${mounter}:`;
        const staging = w.path(`plugins/obj/${mounter}/globalmount`);
        const stage = {
          volume_id,
          staging_target_path: staging,
          volume_capability: objCap(),
          volume_context: ctxFor(mounter),
          secrets: S3_SECRETS,
        };
        await w.call('NodeStageVolume', stage);
        await w.call('NodeStageVolume', stage); // called twice: idempotent
        const other = { ...stage, volume_context: { ...stage.volume_context, uid: '4242' } };
        expect((await codeOf(w.call('NodeStageVolume', other))).code).toBe('ALREADY_EXISTS');
        const credDir = join(w.stateDir, 'credentials');
        expect((await readdir(credDir)).length).toBe(1);

        const targets = ['a', 'b', 'ro'].map((t) => w.path(`pods/${mounter}-${t}/mount`));
        for (const [i, target_path] of targets.entries()) {
          await w.call('NodePublishVolume', {
            volume_id,
            staging_target_path: staging,
            target_path,
            volume_capability: objCap(),
            readonly: i === 2,
            volume_context: ctxFor(mounter),
          });
        }
        await writeFile(join(targets[0], 'hello.txt'), `from ${mounter}`);
        expect(await readFile(join(targets[1], 'hello.txt'), 'utf8')).toBe(`from ${mounter}`);
        expect(await readFile(join(targets[2], 'hello.txt'), 'utf8')).toBe(`from ${mounter}`);
        await expect(writeFile(join(targets[2], 'nope.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
        await waitUntil(
          'object in bucket',
          async () => (await getObject(w.s3.endpoint, `bkt-${mounter}`, 'hello.txt')) ?? undefined,
          15_000,
        );

        const stats = await w.call('NodeGetVolumeStats', {
          volume_id,
          volume_path: targets[0],
          staging_target_path: staging,
        });
        expect(stats.volume_condition).toMatchObject({ abnormal: false });

        for (const target_path of targets) {
          await w.call('NodeUnpublishVolume', { volume_id, target_path });
          await w.call('NodeUnpublishVolume', { volume_id, target_path }); // twice: nothing to do
          expect(existsSync(target_path)).toBe(false);
        }
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
        expect(await readdir(credDir)).toEqual([]);
        expect((await readMountInfo()).some((m) => m.mountPoint.startsWith(w.kubeletDir))).toBe(false);
      },
    );

    it.each(MOUNTERS)('%s: prefix mode shows only the prefix', async (mounter) => {
      const prefix = `pvc-${mounter}/`;
      await putObject(w.s3.endpoint, 'shared', `${prefix}seed.txt`, 'seed');
      await putObject(w.s3.endpoint, 'shared', 'outside.txt', 'not mine');
      const volume_id = `obj1:s3:shared:${prefix}`;
      const staging = w.path(`plugins/obj/prefix-${mounter}/globalmount`);
      const context = ctxFor(mounter, { bucket: 'shared', prefix });
      await w.call('NodeStageVolume', {
        volume_id,
        staging_target_path: staging,
        volume_capability: objCap(),
        volume_context: context,
        secrets: S3_SECRETS,
      });
      try {
        expect((await readdir(staging)).sort()).toEqual(['seed.txt']);
        await writeFile(join(staging, 'new.txt'), 'in prefix');
        await waitUntil(
          'prefixed object',
          async () => (await getObject(w.s3.endpoint, 'shared', `${prefix}new.txt`)) ?? undefined,
          15_000,
        );
      } finally {
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
      }
    });

    it('a reader-only access mode stages the FUSE mount read-only', async () => {
      const volume_id = 'obj1:s3:bkt-s3fs:';
      const staging = w.path('plugins/rox/globalmount');
      await w.call('NodeStageVolume', {
        volume_id,
        staging_target_path: staging,
        volume_capability: objCap('MULTI_NODE_READER_ONLY'),
        volume_context: ctxFor('s3fs'),
        secrets: S3_SECRETS,
      });
      try {
        expect(await readFile(join(staging, 'hello.txt'), 'utf8')).toBe('from s3fs');
        await expect(writeFile(join(staging, 'ro.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      } finally {
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
      }
    });

    it('NodePublishVolume of an unstaged object volume is FAILED_PRECONDITION', async () => {
      const r = await codeOf(
        w.call('NodePublishVolume', {
          volume_id: 'obj1:s3:bkt-s3fs:',
          staging_target_path: w.path('plugins/none/globalmount'),
          target_path: w.path('pods/none/mount'),
          volume_capability: objCap(),
        }),
      );
      expect(r.code).toBe('FAILED_PRECONDITION');
    });

    it.each([
      ['mounter not allowed', { mounter: 'goofys' }, 'mounter'],
      ['option outside the allow-list', { mountOptions: 'passwd_file=/etc/shadow' }, 'passwd_file'],
      ['bad umask', { umask: '9999' }, 'umask'],
    ])('NodeStageVolume rejects a %s with INVALID_ARGUMENT', async (_name, extra, field) => {
      const r = await codeOf(
        w.call('NodeStageVolume', {
          volume_id: 'obj1:s3:bkt-s3fs:',
          staging_target_path: w.path('plugins/bad/globalmount'),
          volume_capability: objCap(),
          volume_context: ctxFor('s3fs', extra as Record<string, string>),
          secrets: S3_SECRETS,
        }),
      );
      expect(r.code).toBe('INVALID_ARGUMENT');
      expect(r.details).toContain(field);
    });

    it('NodeStageVolume without the secret keys names the missing key', async () => {
      const r = await codeOf(
        w.call('NodeStageVolume', {
          volume_id: 'obj1:s3:bkt-s3fs:',
          staging_target_path: w.path('plugins/nosecret/globalmount'),
          volume_capability: objCap(),
          volume_context: ctxFor('s3fs'),
          secrets: { accessKeyID: 'S3RVER' },
        }),
      );
      expect(r.code).toBe('INVALID_ARGUMENT');
      expect(r.details).toContain('secretAccessKey');
    });

    it('credentials never appear in process arguments or logs', async () => {
      const volume_id = 'obj1:s3:bkt-s3fs:';
      const staging = w.path('plugins/creds/globalmount');
      const secrets = { accessKeyID: 'S3RVER', secretAccessKey: 'S3RVER' };
      await w.call('NodeStageVolume', {
        volume_id,
        staging_target_path: staging,
        volume_capability: objCap(),
        volume_context: ctxFor('s3fs'),
        secrets,
      });
      try {
        const { execAsync } = await import('../helpers/fuse-world');
        const ps = (await execAsync('ps', ['-eo', 'args'])).stdout;
        expect(ps).toContain(staging);
        expect(ps).not.toContain('S3RVER');
        expect(await readFile(w.supervisorLog, 'utf8')).not.toContain('S3RVER');
        for (const f of await readdir(join(w.stateDir, 'logs'))) {
          expect(await readFile(join(w.stateDir, 'logs', f), 'utf8')).not.toContain('S3RVER');
        }
        for (const f of await readdir(join(w.stateDir, 'mounts'))) {
          expect(await readFile(join(w.stateDir, 'mounts', f), 'utf8')).not.toContain('S3RVER');
        }
      } finally {
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
      }
    });
  },
);
