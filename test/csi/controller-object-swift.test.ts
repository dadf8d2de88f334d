/**
 * Object volumes against the real Swift of openstack-loopback, through the Controller gRPC socket:
 * the native API with the demo cloud.conf (Keystone token, catalog `object-store`), and Swift's S3 API with
 * the demo EC2 credentials. Both modes each. Locally skipped without the loopback; fails under CI=true.
 */
import { readFileSync } from 'node:fs';
import type * as Minio from 'minio';
import {
  describeOpenStack,
  itName,
  loopbackAuth,
  loopbackClients,
  LOOPBACK_DIR,
  type CountingClients,
} from '../helpers/openstack-loopback';
import { codeOf } from '../helpers/sim-controller';
import { SwiftObjectStore, QUOTA_HEADER } from '../../src/object/swift-store';
import { GIB, type ObjectWorld, listKeys, objectReq, s3Client, startObjectWorld } from './controller-object-world';

const signal = () => AbortSignal.timeout(20_000);

describeOpenStack('object volumes on openstack-loopback Swift (native API)', () => {
  let clients: CountingClients;
  let w: ObjectWorld;
  let store: SwiftObjectStore;
  let shared: string;
  const base = async () => clients.keystone.endpoint(['object-store']);
  beforeAll(async () => {
    clients = loopbackClients(loopbackAuth());
    w = await startObjectWorld({ swift: new Map([['', clients]]), pageSize: 4 });
    store = new SwiftObjectStore({ keystone: clients.keystone, http: clients.http });
    shared = itName('obj', 'shared');
    await clients.http.request({
      service: 'swift',
      operation: 'test.container.create',
      method: 'PUT',
      url: `${await base()}/${shared}`,
      auth: clients.keystone,
    });
  });
  afterAll(async () => {
    await store.deletePrefix(shared, '', signal()).catch(() => undefined);
    await store.deleteBucket(shared, signal()).catch(() => undefined);
    await w.close();
  });

  it('creates a container per volume with capacity, quota and ownership metadata, and deletes it', async () => {
    const name = itName('obj', 'sw-b');
    const r = await w.call('CreateVolume', objectReq(name, { provider: 'swift' }, {}, 2));
    expect(r.volume.volume_id).toBe(`obj1:swift:${name}:`);
    expect(r.volume.volume_context).toMatchObject({
      backend: 'object',
      provider: 'swift',
      bucket: name,
      prefix: '',
      mounter: 'rclone',
    });
    expect(r.volume.volume_context.endpoint).toBeUndefined();
    expect((await w.call('CreateVolume', objectReq(name, { provider: 'swift' }, {}, 2))).volume.volume_id).toBe(
      r.volume.volume_id,
    );
    expect(await store.bucketOwner(name, signal())).toBe(name);
    const head = await clients.http.request({
      service: 'swift',
      operation: 'test.head',
      method: 'HEAD',
      url: `${await base()}/${name}`,
      auth: clients.keystone,
    });
    expect(head.headers[QUOTA_HEADER.toLowerCase()]).toBe(String(2 * GIB));
    const grown = await w.call('ControllerExpandVolume', {
      volume_id: r.volume.volume_id,
      capacity_range: { required_bytes: String(3 * GIB) },
    });
    expect(grown.capacity_bytes).toBe(String(3 * GIB));
    expect((await w.call('ControllerGetVolume', { volume_id: r.volume.volume_id })).volume.capacity_bytes).toBe(
      String(3 * GIB),
    );
    for (let i = 0; i < 9; i++) {
      await clients.http.request({
        service: 'swift',
        operation: 'test.put',
        method: 'PUT',
        url: `${await base()}/${name}/d/${i}`,
        body: 'x',
        auth: clients.keystone,
      });
    }
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id });
    expect(await store.bucketExists(name, signal())).toBe(false);
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id });
  });

  it('creates a prefix in an existing container and deletes only its objects', async () => {
    const name = itName('obj', 'sw-p');
    const r = await w.call('CreateVolume', objectReq(name, { provider: 'swift', bucket: shared }, {}));
    expect(r.volume.volume_id).toBe(`obj1:swift:${shared}:${name}/`);
    expect(await store.getRecord(shared, `${name}/`, signal())).toEqual({
      capacityBytes: BigInt(GIB),
      reclaim: 'delete',
    });
    for (const k of [`${name}/a`, `${name}/b/c`, `${name}-other/keep`]) {
      await clients.http.request({
        service: 'swift',
        operation: 'test.put',
        method: 'PUT',
        url: `${await base()}/${shared}/${k}`,
        body: 'x',
        auth: clients.keystone,
      });
    }
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id });
    expect(await store.getRecord(shared, `${name}/`, signal())).toBeUndefined();
    const left = await clients.http.request<Array<{ name: string }>>({
      service: 'swift',
      operation: 'test.list',
      method: 'GET',
      url: `${await base()}/${shared}`,
      params: { format: 'json', prefix: name },
      auth: clients.keystone,
    });
    expect(left.data.map((o) => o.name)).toEqual([`${name}-other/keep`]);
  });

  it('answers INVALID_ARGUMENT naming secrets.cloud for a cloud that is not configured', async () => {
    const e = await codeOf(
      w.call('CreateVolume', objectReq(itName('obj', 'sw-x'), { provider: 'swift' }, { cloud: 'nope' })),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('secrets.cloud');
  });
});

describeOpenStack('object volumes on openstack-loopback Swift (S3 API, EC2 credentials)', () => {
  let w: ObjectWorld;
  let c: Minio.Client;
  let secrets: Record<string, string>;
  let shared: string;
  beforeAll(async () => {
    const ec2 = JSON.parse(readFileSync(`${LOOPBACK_DIR}/ec2.json`, 'utf8')) as {
      access: string;
      secret: string;
      s3_endpoint: string;
      s3_region: string;
    };
    secrets = { accessKeyID: ec2.access, secretAccessKey: ec2.secret, endpoint: ec2.s3_endpoint };
    c = s3Client(ec2.s3_endpoint, ec2.access, ec2.secret, ec2.s3_region);
    w = await startObjectWorld({ pageSize: 5 });
    shared = itName('obj', 's3-shared');
    await c.makeBucket(shared, ec2.s3_region);
  });
  afterAll(async () => {
    const keys = await listKeys(c, shared).catch(() => [] as string[]);
    if (keys.length) await c.removeObjects(shared, keys).catch(() => undefined);
    await c.removeBucket(shared).catch(() => undefined);
    await w.close();
  });

  it('creates and deletes a bucket-mode volume', async () => {
    const name = itName('obj', 's3-b');
    const r = await w.call('CreateVolume', objectReq(name, {}, secrets));
    expect(r.volume.volume_id).toBe(`obj1:s3:${name}:`);
    expect(await c.bucketExists(name)).toBe(true);
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.putObject(name, `f/${i}`, Buffer.from('x'))));
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id, secrets });
    expect(await c.bucketExists(name)).toBe(false);
  });

  it('creates and deletes a prefix-mode volume', async () => {
    const name = itName('obj', 's3-p');
    const r = await w.call('CreateVolume', objectReq(name, { bucket: shared }, secrets));
    expect(r.volume.volume_id).toBe(`obj1:s3:${shared}:${name}/`);
    await Promise.all(Array.from({ length: 7 }, (_, i) => c.putObject(shared, `${name}/f${i}`, Buffer.from('x'))));
    await c.putObject(shared, 'keep/me', Buffer.from('x'));
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id, secrets });
    expect(await listKeys(c, shared)).toEqual(['keep/me']);
  });

  it('answers UNAUTHENTICATED or PERMISSION_DENIED for a wrong secret key, without echoing it', async () => {
    const wrong = 'not-the-secret-0123456789';
    const e = await codeOf(
      w.call('CreateVolume', objectReq(itName('obj', 's3-w'), {}, { ...secrets, secretAccessKey: wrong })),
    );
    expect(['UNAUTHENTICATED', 'PERMISSION_DENIED']).toContain(e.code);
    expect(e.details).not.toContain(wrong);
    expect(w.logText()).not.toContain(wrong);
    expect(w.logText()).not.toContain(secrets.secretAccessKey);
  });
});
