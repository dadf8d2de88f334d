/**
 * The supervisor's input checks and daemon command lines, without mounting anything: request validation,
 * the option allow-lists, argv free of secrets, the credential file's content, records rebuilt from disk
 * and the socket itself (0600, bad requests answered with INVALID_ARGUMENT).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { credentialFileContent, daemonCommand } from '../../src/fuse/mounter-args';
import { MountRecords } from '../../src/fuse/mount-records';
import { validateCredentials, validateMountSpec, type MountSpec } from '../../src/fuse/protocol';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { FuseSupervisor } from '../../src/fuse/supervisor';
import { SOCKET_MODE, SupervisorServer } from '../../src/fuse/supervisor-server';

const KUBELET = '/var/lib/kubelet';
const good = {
  volumeId: 'obj1:s3:b:',
  target: `${KUBELET}/plugins/x/globalmount`,
  mounter: 's3fs',
  provider: 's3',
  bucket: 'b',
  prefix: '',
  endpoint: 'http://127.0.0.1:9000',
  region: 'us-east-1',
  pathStyle: true,
  options: [],
  readOnly: false,
};
const FILES = { credentialFile: '/state/credentials/k', cacheDir: '/state/cache/k' };
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code?: number }).code, message: (e as Error).message };
  }
  throw new Error('expected a failure');
};

describe('validateMountSpec', () => {
  it.each([
    ['mounter not allowed', { mounter: 'sh' }, 'mounter'],
    ['target outside the kubelet dir', { target: '/etc/passwd-dir' }, 'target'],
    ['target escaping with ..', { target: `${KUBELET}/../../etc` }, 'target'],
    ['relative target', { target: 'plugins/x' }, 'target'],
    ['bucket with a colon', { bucket: 'a:b' }, 'bucket'],
    ['prefix without trailing slash', { prefix: 'pvc-1' }, 'prefix'],
    ['endpoint that is not a URL', { endpoint: 'file:///etc' }, 'endpoint'],
    ['endpoint carrying user info', { endpoint: 'http://ak:sk@127.0.0.1:9000' }, 'endpoint'],
    ['swift through s3fs', { provider: 'swift' }, 'mounter'],
    ['umask that is not octal', { umask: '0999' }, 'umask'],
    ['uid that is negative', { uid: -1 }, 'uid'],
  ])('rejects a %s with INVALID_ARGUMENT naming the field', (_n, patch, field) => {
    const r = codeOf(() => validateMountSpec({ ...good, ...patch }, KUBELET));
    expect(r.code).toBe(Status.INVALID_ARGUMENT);
    expect(r.message).toContain(field);
  });

  it('accepts a good spec and fills the defaults', () => {
    expect(validateMountSpec({ ...good, region: '', pathStyle: undefined }, KUBELET)).toMatchObject({
      region: 'us-east-1',
      pathStyle: true,
    });
  });

  it('requires a complete Keystone credential set for swift', () => {
    expect(codeOf(() => validateCredentials({ authUrl: 'http://k', username: 'u' }, 'swift')).code).toBe(
      Status.INVALID_ARGUMENT,
    );
    expect(
      validateCredentials(
        { authUrl: 'http://k', applicationCredentialId: 'i', applicationCredentialSecret: 's' },
        'swift',
      ).kind,
    ).toBe('swift');
  });
});

describe('daemonCommand', () => {
  const spec = (p: Partial<MountSpec>): MountSpec => ({ ...(good as MountSpec), ...p });

  it.each([
    ['s3fs', 'passwd_file=/etc/shadow'],
    ['s3fs', 'url=http://evil'],
    ['rclone', 'config=/root/.rclone.conf'],
    ['rclone', 'vfs-cache-mode=everything'],
    ['s3fs', 'parallel_count=1;rm'],
  ])('%s refuses the option %s', (mounter, option) => {
    const r = codeOf(() => daemonCommand(spec({ mounter: mounter as 's3fs', options: [option] }), FILES));
    expect(r.code).toBe(Status.INVALID_ARGUMENT);
  });

  it.each([
    ['s3fs', 'nomultipart=1'],
    ['rclone', 's3-upload-cutoff=1G;rm'],
    ['rclone', 'vfs-read-chunk-size=on'],
    ['rclone', 'async-read=maybe'],
  ])('%s refuses the speed option with a bad value %s', (mounter, option) => {
    expect(codeOf(() => daemonCommand(spec({ mounter: mounter as 's3fs', options: [option] }), FILES)).code).toBe(
      Status.INVALID_ARGUMENT,
    );
  });

  it('passes the speed options a StorageClass may choose (docs/benchmarks.md) onto the command line', () => {
    const s = daemonCommand(spec({ options: ['multipart_size=1024', 'nomultipart', 'parallel_count=10'] }), FILES);
    expect(s.args).toEqual(expect.arrayContaining(['multipart_size=1024', 'nomultipart', 'parallel_count=10']));
    const r = daemonCommand(
      spec({
        mounter: 'rclone',
        options: ['s3-upload-cutoff=1G', 's3-disable-checksum', 'vfs-read-chunk-size=off', 'vfs-cache-mode=off'],
      }),
      FILES,
    );
    expect(r.args).toEqual(
      expect.arrayContaining([
        '--s3-upload-cutoff=1G',
        '--s3-disable-checksum',
        '--vfs-read-chunk-size=off',
        '--vfs-cache-mode=off',
      ]),
    );
    // The StorageClass's cache mode replaces the default rather than adding a second, conflicting flag.
    expect(r.args.filter((a) => a.startsWith('--vfs-cache-mode'))).toEqual(['--vfs-cache-mode=off']);
  });

  it('sets the measured speed defaults (docs/benchmarks.md) unless the StorageClass sets the same key', () => {
    const oOf = (args: string[]) => args.filter((_, i) => args[i - 1] === '-o');
    expect(oOf(daemonCommand(spec({}), FILES).args)).toEqual(
      expect.arrayContaining(['multipart_size=512', 'parallel_count=2']),
    );
    const s = oOf(daemonCommand(spec({ options: ['multipart_size=64'] }), FILES).args);
    expect(s.filter((o) => o.startsWith('multipart_size'))).toEqual(['multipart_size=64']);
    expect(s).toContain('parallel_count=2');

    // rclone's goes in its config file: a backend flag on argv would rename the remote, and so its cache dir.
    const creds = { kind: 's3' as const, accessKeyId: 'AK', secretAccessKey: 'SK' };
    const rclone = spec({ mounter: 'rclone' });
    expect(daemonCommand(rclone, FILES).args.some((a) => a.startsWith('--s3-'))).toBe(false);
    expect(credentialFileContent(rclone, creds)).toContain('\nupload_cutoff = 512M\n');
    const own = spec({ mounter: 'rclone', options: ['s3-upload-cutoff=5M'] });
    expect(daemonCommand(own, FILES).args.filter((a) => a.startsWith('--s3-upload-cutoff'))).toEqual([
      '--s3-upload-cutoff=5M',
    ]);
    expect(credentialFileContent(own, creds)).not.toContain('upload_cutoff');
    // Swift's backend uploads up to 5 GiB as one object already.
    const swift = { kind: 'swift' as const, authUrl: 'http://k', username: 'u', password: 'p' };
    expect(credentialFileContent(spec({ mounter: 'rclone', provider: 'swift' }), swift)).not.toContain('upload_cutoff');
  });

  it('s3fs: prefix as bucket:/path, ownership options, credentials only by file', () => {
    const c = daemonCommand(
      spec({ prefix: 'pvc-1/', uid: 10, gid: 20, umask: '0007', readOnly: true, options: ['parallel_count=8'] }),
      FILES,
    );
    expect(c.command).toBe('s3fs');
    expect(c.args.slice(0, 3)).toEqual(['b:/pvc-1', good.target, '-f']);
    expect(c.args).toEqual(
      expect.arrayContaining([
        'passwd_file=/state/credentials/k',
        'allow_other',
        'uid=10',
        'gid=20',
        'umask=0007',
        'ro',
        'parallel_count=8',
      ]),
    );
  });

  it('rclone: remote path with prefix, enforced permissions, AWS_CA_BUNDLE removed', () => {
    const c = daemonCommand(
      spec({ mounter: 'rclone', prefix: 'pvc-1/', uid: 10, umask: '0007', options: ['vfs-write-back=0s'] }),
      FILES,
    );
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--config',
        FILES.credentialFile,
        'vol:b/pvc-1/',
        '--allow-other',
        '--default-permissions',
        '--uid',
        '10',
        '--vfs-write-back=0s',
      ]),
    );
    expect('AWS_CA_BUNDLE' in c.env && c.env.AWS_CA_BUNDLE === undefined).toBe(true);
  });

  it('puts the secret in the credential file, not on argv', () => {
    const creds = { kind: 's3' as const, accessKeyId: 'AK', secretAccessKey: 'SECRETVALUE' };
    for (const mounter of ['s3fs', 'rclone'] as const) {
      expect(daemonCommand(spec({ mounter }), FILES).args.join(' ')).not.toContain('SECRETVALUE');
      expect(credentialFileContent(spec({ mounter }), creds)).toContain('SECRETVALUE');
    }
    expect(credentialFileContent(spec({}), creds)).toBe('b:AK:SECRETVALUE\n');
  });
});

describe('MountRecords', () => {
  it('records are rebuilt from disk by a new instance, 0600, without credentials', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuse-rec-'));
    try {
      const a = new MountRecords(dir);
      await a.init();
      await a.save({ spec: good as MountSpec, pid: 42, restarts: 3 });
      await a.saveCredentials(good.target, 'b:AK:SK\n');
      expect((await stat(a.paths(good.target).record)).mode & 0o777).toBe(0o600);
      expect((await stat(a.paths(good.target).credentials)).mode & 0o777).toBe(0o600);
      const loaded = await new MountRecords(dir).loadAll(() => undefined);
      expect(loaded).toEqual([{ spec: good, pid: 42, restarts: 3, hangs: 0 }]);
      await a.remove(good.target);
      expect(await new MountRecords(dir).loadAll(() => undefined)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SupervisorServer', () => {
  let dir: string;
  let server: SupervisorServer;
  let client: SupervisorClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuse-srv-'));
    const supervisor = new FuseSupervisor({
      stateDir: join(dir, 'state'),
      kubeletDir: join(dir, 'kubelet'),
      log: silentLogger,
    });
    await supervisor.start();
    server = new SupervisorServer({ supervisor, socketPath: join(dir, 's.sock'), log: silentLogger });
    await server.listen();
    client = new SupervisorClient(join(dir, 's.sock'));
    supervisor.stop();
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on a 0600 socket and lists no mounts', async () => {
    expect((await stat(join(dir, 's.sock'))).mode & 0o777).toBe(SOCKET_MODE);
    expect(await client.list()).toEqual([]);
  });

  it.each([
    ['a mounter that is not allowed', { mounter: 'bash' }, 'mounter'],
    ['a target outside the kubelet dir', { target: '/tmp/elsewhere' }, 'target'],
    ['an option outside the allow-list', { options: ['use_cache=/'] }, 'use_cache'],
  ])('answers mount with %s with INVALID_ARGUMENT', async (_n, patch, field) => {
    const spec = { ...good, target: join(dir, 'kubelet', 'plugins', 'v', 'globalmount'), ...patch } as MountSpec;
    await expect(client.mount(spec, { kind: 's3', accessKeyId: 'a', secretAccessKey: 'b' })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: expect.stringContaining(field),
    });
  });

  it('answers garbage and unknown ops with INVALID_ARGUMENT, and unmount of an unknown target with success', async () => {
    expect(await server.handle('not json')).toMatchObject({ ok: false, code: Status.INVALID_ARGUMENT });
    expect(await server.handle('{"op":"exec","cmd":"id"}')).toMatchObject({ ok: false, code: Status.INVALID_ARGUMENT });
    await expect(client.unmount(join(dir, 'kubelet', 'plugins', 'never'))).resolves.toBeUndefined();
  });

  it('a client of a missing socket gets UNAVAILABLE', async () => {
    await expect(new SupervisorClient(join(dir, 'none.sock')).list()).rejects.toMatchObject({
      code: Status.UNAVAILABLE,
    });
  });
});
