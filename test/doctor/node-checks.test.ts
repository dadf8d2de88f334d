/** The doctor's node checks and flag parsing, on temp files and canned mountinfo (no root needed). */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/config/flags';
import { compareMicroversions, versionRoot } from '../../src/doctor/cloud-checks';
import { parseDoctorArgs } from '../../src/doctor/doctor-command';
import {
  checkDevices,
  checkKubeletPropagation,
  checkMetadata,
  checkSupervisorSocket,
  checkTools,
  holdingMount,
  OPTIONAL_TOOLS,
} from '../../src/doctor/node-checks';
import { parseMountInfo } from '../../src/mount/mountinfo';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'doctor-node-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mountinfo = (text: string) => {
  const p = join(dir, 'mountinfo');
  writeFileSync(p, text);
  return p;
};

describe('checkKubeletPropagation', () => {
  it('passes when the mount holding the directory is shared', async () => {
    const kubelet = join(dir, 'kubelet');
    mkdirSync(kubelet);
    const p = mountinfo(
      `22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n30 22 8:2 / ${dir} rw shared:7 - ext4 /dev/sda2 rw\n`,
    );
    const r = await checkKubeletPropagation(kubelet, { mountInfoPath: p });
    expect(r).toMatchObject({ status: 'pass', message: expect.stringContaining('shared:7') });
  });

  it('fails with a Bidirectional hint when the holding mount is private, even if / is shared', async () => {
    const p = mountinfo(`22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n30 22 8:2 / ${dir} rw - ext4 /dev/sda2 rw\n`);
    const r = await checkKubeletPropagation(dir, { mountInfoPath: p });
    expect(r).toMatchObject({ status: 'fail', hint: expect.stringContaining('Bidirectional') });
  });

  it('fails when the directory does not exist', async () => {
    const r = await checkKubeletPropagation(join(dir, 'absent'), { mountInfoPath: mountinfo('') });
    expect(r).toMatchObject({ status: 'fail', message: expect.stringContaining('not a directory') });
  });
});

describe('holdingMount', () => {
  const mounts = parseMountInfo(
    '1 0 8:1 / / rw - ext4 a rw\n2 1 8:2 / /var rw - ext4 b rw\n3 1 8:3 / /var/lib rw - ext4 c rw\n',
  );
  it.each([
    ['/var/lib/kubelet', 'c'],
    ['/var/library', 'b'],
    ['/var', 'b'],
    ['/home', 'a'],
  ])('%s is on %s', (path, source) => expect(holdingMount(mounts, path)?.source).toBe(source));
});

describe('checkTools', () => {
  it('fails for a missing required tool and warns for a missing optional one', async () => {
    const results = await checkTools({ commandExists: async (c) => c !== 'mkfs.ext4' && c !== 'rclone' });
    expect(results[0]).toMatchObject({ id: 'node.tools.required', status: 'fail', message: 'missing: mkfs.ext4' });
    expect(results[1]).toMatchObject({
      id: 'node.tools.optional',
      status: 'warn',
      message: expect.stringContaining('rclone'),
    });
    expect(OPTIONAL_TOOLS).toEqual(expect.arrayContaining(['s3fs', 'fusermount', 'xfs_growfs', 'udevadm']));
  });
});

describe('checkDevices', () => {
  it('fails without the by-id directory and warns without /dev/fuse', async () => {
    const [byId, fuse] = await checkDevices(join(dir, 'by-id'), { fuseDevice: join(dir, 'fuse') });
    expect(byId).toMatchObject({ status: 'fail', hint: expect.any(String) });
    expect(fuse).toMatchObject({ status: 'warn', hint: expect.any(String) });
  });
});

describe('checkMetadata', () => {
  it('warns when the source gives no availability zone', async () => {
    const id = '7e1bcb3e-0f2a-4d43-9d7e-2a8c2d7e4c11';
    const m = await checkMetadata({ get: async () => ({ uuid: id, devices: [], source: 'cloudInit' }) });
    expect(m).toMatchObject({ nodeId: id, from: 'cloudInit', result: { status: 'warn' } });
  });
});

describe('checkSupervisorSocket', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const serve = async (path: string, answer: object) => {
    server = createServer((sock) => sock.once('data', () => sock.end(`${JSON.stringify(answer)}\n`)));
    await new Promise<void>((r) => server!.listen(path, () => r()));
  };

  it('fails when nothing listens on the socket', async () => {
    expect(await checkSupervisorSocket(join(dir, 'absent.sock'))).toMatchObject({
      status: 'fail',
      hint: expect.any(String),
    });
  });

  it('passes when the supervisor answers list with live mounts', async () => {
    const path = join(dir, 'supervisor.sock');
    await serve(path, {
      ok: true,
      mounts: [{ volumeId: 'v', target: '/t', mounter: 's3fs', state: 'alive', restarts: 0 }],
    });
    expect(await checkSupervisorSocket(path)).toMatchObject({
      status: 'pass',
      message: expect.stringContaining('1 mounts (1 alive'),
    });
  });

  it('warns when a mount is dead', async () => {
    const path = join(dir, 'supervisor.sock');
    await serve(path, {
      ok: true,
      mounts: [{ volumeId: 'v', target: '/t', mounter: 'rclone', state: 'dead', restarts: 3 }],
    });
    expect((await checkSupervisorSocket(path)).status).toBe('warn');
  });
});

describe('parseDoctorArgs', () => {
  it('reads every flag, repeated lists and bare booleans', () => {
    const o = parseDoctorArgs([
      '--cloud-config=/a',
      '--cloud-config',
      '/b',
      '--cloud-name',
      'x',
      '--node-id',
      'n1',
      '--metadata-url=http://m',
      '--by-id-dir',
      '/d',
      '--kubelet-dir',
      '/k',
      '--supervisor-socket',
      '/s',
      '--json',
      '--skip-node',
      '--skip-cloud=false',
    ]);
    expect(o).toEqual({
      cloudConfig: ['/a', '/b'],
      cloudNames: ['x'],
      nodeId: 'n1',
      metadataUrl: 'http://m',
      byIdDir: '/d',
      kubeletDir: '/k',
      supervisorSocket: '/s',
      json: true,
      skipNode: true,
      skipCloud: false,
    });
  });

  it("defaults to the plugin's paths and the [Global] cloud", () => {
    expect(parseDoctorArgs([])).toMatchObject({
      cloudNames: [''],
      byIdDir: '/dev/disk/by-id',
      kubeletDir: '/var/lib/kubelet',
      json: false,
    });
  });

  it.each([[['--bogus']], [['--node-id']], [['stray']], [['--json=maybe']]])('rejects %j with a UsageError', (argv) => {
    expect(() => parseDoctorArgs(argv)).toThrow(UsageError);
  });
});

describe('microversions', () => {
  it.each([
    ['3.70', '3.42', 1],
    ['3.9', '3.42', -1],
    ['3.42', '3.42', 0],
    ['2.60', '2.93', -1],
  ])('compares %s with %s', (a, b, sign) => expect(Math.sign(compareMicroversions(a, b))).toBe(sign));

  it.each([
    ['cinder', 'https://c/volume/v3/abc', 'https://c/volume/v3/'],
    ['cinder', 'https://c:8776/v3', 'https://c:8776/v3/'],
    ['nova', 'https://n/compute/v2.1', 'https://n/compute/v2.1/'],
    ['nova', 'https://n:8774/v2.1/abc', 'https://n:8774/v2.1/'],
  ] as const)('the %s version root of %s is %s', (svc, url, root) => expect(versionRoot(svc, url)).toBe(root));
});

describe('cinder-csi-plugin doctor (CLI entry)', () => {
  it('answers a bad flag with exit code 2 and an empty run with 0', async () => {
    const { main } = await import('../../src/cli');
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await main(['doctor', '--bogus'])).toBe(2);
      expect(String(err.mock.calls[0][0])).toContain('--bogus');
      expect(await main(['doctor', '--skip-cloud', '--skip-node'])).toBe(0);
      expect(String(out.mock.calls.at(-1)?.[0])).toContain('0 passed, 0 warnings, 0 failed');
    } finally {
      err.mockRestore();
      out.mockRestore();
    }
  });
});
