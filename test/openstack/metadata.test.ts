import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from '../../src/errors';
import { type MetadataSource } from '../../src/config/types';
import { type Exec, ExecError, type ExecOptions } from '../../src/mount/exec';
import { type KubeNode, MetadataClient, type MetadataDeps } from '../../src/openstack/metadata';
import { type LocalServer, closedPort, json, startLocalServer } from './local-server';

const UUID = '0b3c3f6e-7a4e-4c55-9c8a-4d1f0a2b3c4d';
const OTHER_UUID = '11111111-2222-4333-8444-555555555555';
const META = {
  uuid: UUID,
  name: 'node-1',
  availability_zone: 'nova-az1',
  devices: [{ type: 'disk', bus: 'scsi', serial: 'vol-1', address: '0:0:1:0' }],
};

let dir: string;
let server: LocalServer | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'os-meta-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function metadata(
  searchOrder: MetadataSource[],
  extra: Partial<MetadataDeps> = {},
  requestTimeoutMs = 2000,
): MetadataClient {
  return new MetadataClient({
    options: { searchOrder, requestTimeoutMs },
    cloudInitInstanceIdPath: join(dir, 'missing-instance-id'),
    ...extra,
  });
}

async function configDriveTree(root: string, meta: object = META): Promise<string> {
  await mkdir(join(root, 'openstack/latest'), { recursive: true });
  await writeFile(join(root, 'openstack/latest/meta_data.json'), JSON.stringify(meta));
  return root;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; message: string };
  }
  throw new Error('expected a failure');
}

describe('MetadataClient', () => {
  it('reads uuid, AZ and devices from the metadata service', async () => {
    server = await startLocalServer((r, res) =>
      r.url === '/openstack/latest/meta_data.json' ? json(res, 200, META) : json(res, 404, {}),
    );
    const m = await metadata(['metadataService'], { metadataUrl: server.url }).get();
    expect(m).toEqual({
      uuid: UUID,
      name: 'node-1',
      availabilityZone: 'nova-az1',
      devices: META.devices,
      source: 'metadataService',
    });
  });

  it('reads an already-mounted config drive directory', async () => {
    const m = await metadata(['configDrive'], { configDriveDir: await configDriveTree(join(dir, 'cd')) }).get();
    expect(m.uuid).toBe(UUID);
    expect(m.source).toBe('configDrive');
  });

  it('mounts the config-2 device read-only, falling back from iso9660 to vfat, and unmounts it', async () => {
    const fixture = await configDriveTree(join(dir, 'fixture'));
    const device = join(dir, 'config-2');
    await writeFile(device, '');
    const calls: string[][] = [];
    const exec: Exec = async (cmd, args, _opts?: ExecOptions) => {
      calls.push([cmd, ...args]);
      if (cmd === 'mount' && args[1] === 'iso9660')
        throw new ExecError('mount', 32, 'wrong fs type', 'exited with code 32');
      if (cmd === 'mount') await cp(fixture, args[args.length - 1], { recursive: true });
      if (cmd === 'umount') await rm(join(args[0], 'openstack'), { recursive: true });
      return { stdout: '', stderr: '', code: 0 };
    };
    const tmp = join(dir, 'tmp');
    await mkdir(tmp);
    const m = await metadata(['configDrive'], { exec, configDriveByLabelPath: device, tmpDir: tmp }).get();
    expect(m.uuid).toBe(UUID);
    const mountDir = calls[0][calls[0].length - 1];
    expect(calls).toEqual([
      ['mount', '-t', 'iso9660', '-o', 'ro', device, mountDir],
      ['mount', '-t', 'vfat', '-o', 'ro', device, mountDir],
      ['umount', mountDir],
    ]);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('asks blkid for the config-2 label when /dev/disk/by-label has none, and says so when blkid finds nothing', async () => {
    const calls: string[][] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push([cmd, ...args]);
      return { stdout: '', stderr: '', code: 2 };
    };
    const e = await codeOf(metadata(['configDrive'], { exec, configDriveByLabelPath: join(dir, 'none') }).get());
    expect(calls).toEqual([['blkid', '-l', '-t', 'LABEL=config-2', '-o', 'device']]);
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/configDrive: no device labelled config-2/);
  });

  it('reads the cloud-init instance-id file', async () => {
    const path = join(dir, 'instance-id');
    await writeFile(path, `${UUID}\n`);
    const m = await metadata(['cloudInit'], { cloudInitInstanceIdPath: path }).get();
    expect(m).toMatchObject({ uuid: UUID, source: 'cloudInit', availabilityZone: undefined });
  });

  it('reads the instance id from the Node providerID and the AZ from its zone label', async () => {
    const node: KubeNode = {
      metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'az-k8s' } },
      spec: { providerID: `openstack:///${UUID}` },
    };
    const asked: string[] = [];
    const getNode = async (name: string) => {
      asked.push(name);
      return node;
    };
    const m = await metadata(['kubernetes'], { kubernetes: { nodeName: 'n1', getNode } }).get();
    expect(m).toMatchObject({ uuid: UUID, availabilityZone: 'az-k8s', source: 'kubernetes' });
    expect(asked).toEqual(['n1']);
  });

  it('rejects an EC2-style instance id and uses the next source', async () => {
    const path = join(dir, 'instance-id');
    await writeFile(path, 'i-0123456789abcdef0\n');
    server = await startLocalServer((_r, res) => json(res, 200, { ...META, uuid: OTHER_UUID }));
    const m = await metadata(['cloudInit', 'metadataService'], {
      cloudInitInstanceIdPath: path,
      metadataUrl: server.url,
    }).get();
    expect(m).toMatchObject({ uuid: OTHER_UUID, source: 'metadataService' });
  });

  it('follows the search order: the first source that answers wins', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, { ...META, uuid: OTHER_UUID }));
    const cd = await configDriveTree(join(dir, 'cd'));
    expect(
      (await metadata(['configDrive', 'metadataService'], { configDriveDir: cd, metadataUrl: server.url }).get())
        .source,
    ).toBe('configDrive');
    expect(
      (await metadata(['metadataService', 'configDrive'], { configDriveDir: cd, metadataUrl: server.url }).get())
        .source,
    ).toBe('metadataService');
  });

  it('times out against a metadata service that never answers', async () => {
    server = await startLocalServer(() => undefined);
    const started = Date.now();
    const e = await codeOf(metadata(['metadataService'], { metadataUrl: server.url }, 200).get());
    expect(Date.now() - started).toBeLessThan(1500);
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/metadataService: .*ETIMEDOUT/);
  });

  it('lists what every source said when none answers', async () => {
    const port = await closedPort();
    const e = await codeOf(
      metadata(['cloudInit', 'metadataService', 'kubernetes'], { metadataUrl: `http://127.0.0.1:${port}` }).get(),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/cloudInit: .*ENOENT/);
    expect(e.message).toMatch(/metadataService: .*ECONNREFUSED/);
    expect(e.message).toMatch(/kubernetes: not configured/);
  });

  it('caches the first success and shares one lookup among concurrent callers', async () => {
    server = await startLocalServer((_r, res) => setTimeout(() => json(res, 200, META), 50));
    const client = metadata(['metadataService'], { metadataUrl: server.url });
    const all = await Promise.all([client.get(), client.get(), client.get()]);
    expect(new Set(all.map((m) => m.uuid))).toEqual(new Set([UUID]));
    await client.get();
    expect(server.seen).toHaveLength(1);
  });

  it('retries the lookup after a failure instead of caching it', async () => {
    server = await startLocalServer((_r, res, n) => (n === 1 ? json(res, 500, {}) : json(res, 200, META)));
    const client = metadata(['metadataService'], { metadataUrl: server.url });
    await expect(client.get()).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    await expect(client.get()).resolves.toMatchObject({ uuid: UUID });
  });

  it('stops waiting when the caller deadline passes', async () => {
    server = await startLocalServer(() => undefined);
    const e = await codeOf(
      metadata(['metadataService'], { metadataUrl: server.url }, 5000).get(AbortSignal.timeout(100)),
    );
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
  });
});
