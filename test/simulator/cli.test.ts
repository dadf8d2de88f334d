/** `cinder-csi-plugin simulator`: flags, the printed URL, the 0600 cloud.conf, and a clean stop on SIGTERM. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSimulatorCommand } from '../../src/simulator/cli';
import { call, waitFor } from './client';

describe('simulator cli', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-cli-'));
    out = [];
    err = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the URL, writes a 0600 cloud.conf that authenticates, and returns 0 on SIGTERM', async () => {
    const conf = join(dir, 'cloud.conf');
    const instance = '11111111-2222-3333-4444-555555555555';
    const run = runSimulatorCommand([
      '--cloud-conf-out',
      conf,
      '--instance-id',
      instance,
      '--availability-zone',
      'az1',
      '--delay-scale',
      '0',
      '--log-level',
      'silent',
    ]);
    await waitFor(() => existsSync(conf) && out.some((l) => l.startsWith('cloud.conf:')), 5000, 'cloud.conf');
    expect((await stat(conf)).mode & 0o777).toBe(0o600);
    const text = await readFile(conf, 'utf8');
    const url = /^simulator: (\S+)$/m.exec(out.join(''))![1];
    expect(text).toContain(`auth-url=${url}/identity/v3`);
    expect(text).toMatch(/^\[Global\]$/m);
    for (const key of [
      'username=demo',
      'password=secret-password',
      'user-domain-name=Default',
      'tenant-name=demo',
      'tenant-domain-name=Default',
      'region=RegionOne',
    ]) {
      expect(text).toContain(key);
    }
    const kv = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => l.split('=', 2)),
    );
    const auth = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: kv.username, domain: { name: kv['user-domain-name'] }, password: kv.password } },
        },
        scope: { project: { name: kv['tenant-name'], domain: { name: kv['tenant-domain-name'] } } },
      },
    };
    expect((await call('POST', `${kv['auth-url']}/auth/tokens`, { body: auth })).status).toBe(201);
    const md = await call('GET', `${url}/metadata/openstack/latest/meta_data.json`);
    expect(md.json).toMatchObject({ uuid: instance, availability_zone: 'az1' });
    process.emit('SIGTERM');
    await expect(run).resolves.toBe(0);
    await expect(call('GET', `${url}/volume/`)).rejects.toThrow();
  });

  it.each([[['--port', 'abc']], [['--delay-scale', '-1']], [['--bogus']], [['--log-level', 'loud']]])(
    'returns 2 with the usage for bad flags %j',
    async (argv) => {
      await expect(runSimulatorCommand(argv)).resolves.toBe(2);
      expect(err.join('')).toContain('Usage: cinder-csi-plugin simulator');
    },
  );

  it('returns 1 when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(runSimulatorCommand(['--port', String(port), '--log-level', 'silent'])).resolves.toBe(1);
      expect(err.join('')).toContain('cannot start');
    } finally {
      blocker.close();
    }
  });
});
