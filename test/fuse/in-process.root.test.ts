/**
 * createFuseMounts: a client of a separate supervisor when a socket is given, else a supervisor inside
 * this process (the demo's mode) with the same validation, mounting, listing and unmounting.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from '../../src/errors';
import { createFuseMounts } from '../../src/fuse/fuse-mounts';
import type { MountSpec } from '../../src/fuse/protocol';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { silentLogger } from '../../src/log';
import { describeIf } from '../helpers/prereq';
import { getObject, startS3rverProcess, waitUntil } from '../helpers/fuse-procs';
import { cleanupUnder } from '../helpers/fuse-world';

describeIf('createFuseMounts', { root: true, fuse: true, commands: ['s3fs', 'fusermount'] }, () => {
  let dir: string;
  let s3: Awaited<ReturnType<typeof startS3rverProcess>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuse-inproc-'));
    s3 = await startS3rverProcess(join(dir, 's3'), ['demo']);
  }, 30_000);
  afterAll(async () => {
    await cleanupUnder(dir);
    await s3?.kill();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('returns a socket client when a supervisor socket is configured', async () => {
    const m = await createFuseMounts({ supervisorSocket: join(dir, 'none.sock'), kubeletDir: dir, log: silentLogger });
    expect(m.service).toBeInstanceOf(SupervisorClient);
  });

  it('runs an in-process supervisor otherwise: mount, list, refuse a bad target, unmount', async () => {
    const kubeletDir = join(dir, 'kubelet');
    const m = await createFuseMounts({ kubeletDir, stateDir: join(dir, 'state'), log: silentLogger });
    try {
      const target = join(kubeletDir, 'plugins', 'demo', 'globalmount');
      const spec: MountSpec = {
        volumeId: 'obj1:s3:demo:',
        target,
        mounter: 's3fs',
        provider: 's3',
        bucket: 'demo',
        prefix: '',
        endpoint: s3.endpoint,
        region: 'us-east-1',
        pathStyle: true,
        options: [],
        readOnly: false,
      };
      const creds = { kind: 's3' as const, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
      await expect(m.service.mount({ ...spec, target: join(dir, 'outside') }, creds)).rejects.toMatchObject({
        code: Status.INVALID_ARGUMENT,
      });
      await m.service.mount(spec, creds);
      await writeFile(join(target, 'demo.txt'), 'demo');
      await waitUntil('object', async () => (await getObject(s3.endpoint, 'demo', 'demo.txt')) ?? undefined, 10_000);
      expect(await m.service.list()).toMatchObject([{ target, state: 'alive', restarts: 0 }]);
      await m.service.unmount(target);
      expect(await m.service.list()).toEqual([]);
      expect(await readdir(join(dir, 'state', 'credentials'))).toEqual([]);
    } finally {
      m.stop();
    }
  });
});
