/** Object volumes through the real Controller gRPC socket against s3rver (a real S3 server over HTTP). */
import { createServer } from 'node:net';
import type * as Minio from 'minio';
import { codeOf, createReq, startControllerWorld } from '../helpers/sim-controller';
import { startS3Server, type S3TestServer } from '../helpers/s3-server';
import { bucketNameFor } from '../../src/object/names';
import { S3ObjectStore } from '../../src/object/s3-store';
import {
  GIB,
  MOUNT_RWX,
  type ObjectWorld,
  listKeys,
  objectReq,
  readText,
  s3Client,
  startObjectWorld,
} from './controller-object-world';

let s3: S3TestServer;
let w: ObjectWorld;
let c: Minio.Client;
let secrets: Record<string, string>;
beforeAll(async () => {
  s3 = await startS3Server();
  c = s3Client(s3.endpoint, s3.accessKey, s3.secretKey);
  secrets = { accessKeyID: s3.accessKey, secretAccessKey: s3.secretKey, endpoint: s3.endpoint };
  // A small page proves DeleteVolume pages through the listing.
  w = await startObjectWorld({ pageSize: 7 });
});
afterAll(async () => {
  await w.close();
  await s3.stop();
});

const create = (name: string, params: Record<string, string> = {}, gib = 1, sec = secrets) =>
  w.call('CreateVolume', objectReq(name, params, sec, gib));
const put = (bucket: string, key: string, body = 'x') => c.putObject(bucket, key, Buffer.from(body));

describe('CreateVolume with backend: object (bucket mode)', () => {
  it('creates a bucket named from the PV name and returns an obj1 id and the volume_context', async () => {
    const r = await create('pvc-bucket-1', { uid: '1000', mountOptions: 'ro' });
    expect(r.volume.volume_id).toBe('obj1:s3:pvc-bucket-1:');
    expect(r.volume.capacity_bytes).toBe(String(GIB));
    expect(r.volume.volume_context).toEqual({
      backend: 'object',
      provider: 's3',
      bucket: 'pvc-bucket-1',
      prefix: '',
      endpoint: s3.endpoint,
      region: 'us-east-1',
      pathStyle: 'true',
      mounter: 's3fs',
      mountOptions: 'ro',
      uid: '1000',
      capacityBytes: String(GIB),
    });
    expect(await c.bucketExists('pvc-bucket-1')).toBe(true);
    expect(await readText(c, 'pvc-bucket-1', '.cinder-csi/capacity')).toBe(String(GIB));
    expect(await readText(c, 'pvc-bucket-1', '.cinder-csi/owner')).toBe('pvc-bucket-1');
  });

  it('returns the same volume when called twice', async () => {
    const a = await create('pvc-twice');
    const b = await create('pvc-twice');
    expect(b.volume.volume_id).toBe(a.volume.volume_id);
    expect(b.volume.capacity_bytes).toBe(a.volume.capacity_bytes);
  });

  it('returns ALREADY_EXISTS when the name exists with another capacity', async () => {
    await create('pvc-resize-clash', {}, 1);
    const e = await codeOf(create('pvc-resize-clash', {}, 2));
    expect(e.code).toBe('ALREADY_EXISTS');
  });

  it('gives a long or odd PV name a valid, stable bucket name', async () => {
    const name = `PVC_${'x'.repeat(80)}`;
    const r = await create(name);
    const bucket = bucketNameFor(name);
    expect(bucket.length).toBeLessThanOrEqual(63);
    expect(r.volume.volume_id).toBe(`obj1:s3:${bucket}:`);
    expect((await create(name)).volume.volume_id).toBe(r.volume.volume_id);
  });

  it('refuses (ALREADY_EXISTS) a name whose bucket exists but was not created by the driver, and never deletes it', async () => {
    await c.makeBucket('pvc-foreign', 'us-east-1');
    await put('pvc-foreign', 'precious.txt');
    expect((await codeOf(create('pvc-foreign'))).code).toBe('ALREADY_EXISTS');
    await w.call('DeleteVolume', { volume_id: 'obj1:s3:pvc-foreign:', secrets });
    expect(await listKeys(c, 'pvc-foreign')).toEqual(['precious.txt']);
  });
});

describe('CreateVolume with backend: object (prefix mode)', () => {
  beforeAll(async () => {
    await c.makeBucket('shared', 'us-east-1');
  });

  it('creates a prefix in the given bucket and records the capacity under it', async () => {
    const r = await create('pvc-p1', { bucket: 'shared' }, 3);
    expect(r.volume.volume_id).toBe('obj1:s3:shared:pvc-p1/');
    expect(r.volume.volume_context).toMatchObject({
      bucket: 'shared',
      prefix: 'pvc-p1/',
      capacityBytes: String(3 * GIB),
    });
    expect(await readText(c, 'shared', 'pvc-p1/.cinder-csi/capacity')).toBe(String(3 * GIB));
    expect((await create('pvc-p1', { bucket: 'shared' }, 3)).volume.volume_id).toBe(r.volume.volume_id);
  });

  it('answers FAILED_PRECONDITION naming parameters.bucket when the bucket does not exist', async () => {
    const e = await codeOf(create('pvc-p-missing', { bucket: 'no-such-bucket' }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toContain('parameters.bucket');
  });

  it('DeleteVolume removes every object under the prefix, page by page, and nothing else', async () => {
    const id = (await create('pvc-p-del', { bucket: 'shared' })).volume.volume_id;
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => put('shared', `pvc-p-del/dir/f${String(i).padStart(2, '0')}`)),
    );
    await put('shared', 'pvc-p-del-neighbour/keep.txt');
    await put('shared', 'other/keep.txt');
    await w.call('DeleteVolume', { volume_id: id, secrets });
    expect(await listKeys(c, 'shared', 'pvc-p-del/')).toEqual([]);
    expect(await listKeys(c, 'shared', 'pvc-p-del-neighbour/')).toEqual(['pvc-p-del-neighbour/keep.txt']);
    expect(await listKeys(c, 'shared', 'other/')).toEqual(['other/keep.txt']);
    expect(await c.bucketExists('shared')).toBe(true);
    // Called twice: already gone is success.
    await w.call('DeleteVolume', { volume_id: id, secrets });
  });

  it("DeleteVolume leaves a prefix without the driver's record alone", async () => {
    await put('shared', 'static-pv/data.bin');
    await w.call('DeleteVolume', { volume_id: 'obj1:s3:shared:static-pv/', secrets });
    expect(await listKeys(c, 'shared', 'static-pv/')).toEqual(['static-pv/data.bin']);
  });
});

describe('DeleteVolume of object volumes', () => {
  it('empties and removes the bucket it created (more objects than one page)', async () => {
    const id = (await create('pvc-del-bucket')).volume.volume_id;
    await Promise.all(Array.from({ length: 20 }, (_, i) => put('pvc-del-bucket', `d/${i}`)));
    await w.call('DeleteVolume', { volume_id: id, secrets });
    expect(await c.bucketExists('pvc-del-bucket')).toBe(false);
    await w.call('DeleteVolume', { volume_id: id, secrets });
  });

  it('finishes a CreateVolume and a DeleteVolume cut short after the bucket was made (no record yet)', async () => {
    const st = new S3ObjectStore({
      endpoint: s3.endpoint,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: 'us-east-1',
      pathStyle: true,
    });
    await st.createBucket('pvc-crashed', 'pvc-crashed', AbortSignal.timeout(5_000));
    const r = await create('pvc-crashed');
    expect(r.volume.capacity_bytes).toBe(String(GIB));
    await st.createBucket('pvc-crashed-2', 'pvc-crashed-2', AbortSignal.timeout(5_000));
    await w.call('DeleteVolume', { volume_id: 'obj1:s3:pvc-crashed-2:', secrets });
    expect(await c.bucketExists('pvc-crashed-2')).toBe(false);
  });

  it('keeps the data with reclaimData: retain (bucket and prefix mode)', async () => {
    const b = (await create('pvc-retain', { reclaimData: 'retain' })).volume.volume_id;
    await put('pvc-retain', 'data.txt');
    await w.call('DeleteVolume', { volume_id: b, secrets });
    expect(await listKeys(c, 'pvc-retain')).toContain('data.txt');
    const p = (await create('pvc-retain-p', { bucket: 'shared', reclaimData: 'retain' })).volume.volume_id;
    await put('shared', 'pvc-retain-p/data.txt');
    await w.call('DeleteVolume', { volume_id: p, secrets });
    expect(await listKeys(c, 'shared', 'pvc-retain-p/')).toContain('pvc-retain-p/data.txt');
  });

  it('needs an endpoint from the secret when the controller has no default (the id does not carry it)', async () => {
    const id = (await create('pvc-no-ep', {})).volume.volume_id;
    const e = await codeOf(
      w.call('DeleteVolume', { volume_id: id, secrets: { accessKeyID: s3.accessKey, secretAccessKey: s3.secretKey } }),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('secrets.endpoint');
  });
});

describe('ControllerExpandVolume of object volumes', () => {
  it('updates the capacity record and needs no node expansion', async () => {
    const id = (await create('pvc-grow')).volume.volume_id;
    const r = await w.call('ControllerExpandVolume', {
      volume_id: id,
      capacity_range: { required_bytes: String(5 * GIB) },
      secrets,
      volume_capability: MOUNT_RWX,
    });
    expect(r).toEqual({ capacity_bytes: String(5 * GIB), node_expansion_required: false });
    expect(await readText(c, 'pvc-grow', '.cinder-csi/capacity')).toBe(String(5 * GIB));
    // A retried CreateVolume must now ask for the new size.
    expect((await create('pvc-grow', {}, 5)).volume.capacity_bytes).toBe(String(5 * GIB));
    // Smaller than now: success with the current size.
    const again = await w.call('ControllerExpandVolume', {
      volume_id: id,
      capacity_range: { required_bytes: String(GIB) },
      secrets,
    });
    expect(again.capacity_bytes).toBe(String(5 * GIB));
  });

  it('answers NOT_FOUND for a volume without a record', async () => {
    const e = await codeOf(
      w.call('ControllerExpandVolume', {
        volume_id: 'obj1:s3:shared:nothing-here/',
        capacity_range: { required_bytes: String(GIB) },
        secrets,
      }),
    );
    expect(e.code).toBe('NOT_FOUND');
  });
});

describe('Publish, validate and snapshots of object volumes', () => {
  it('publishes and unpublishes without Nova or secrets, with an empty publish_context', async () => {
    const id = (await create('pvc-pub')).volume.volume_id;
    const r = await w.call('ControllerPublishVolume', {
      volume_id: id,
      node_id: 'any-node',
      volume_capability: MOUNT_RWX,
    });
    expect(r.publish_context).toEqual({});
    await w.call('ControllerUnpublishVolume', { volume_id: id, node_id: 'any-node' });
  });

  it('confirms every mount access mode and refuses block in ValidateVolumeCapabilities', async () => {
    const id = (await create('pvc-validate')).volume.volume_id;
    const caps = ['SINGLE_NODE_WRITER', 'MULTI_NODE_READER_ONLY', 'MULTI_NODE_MULTI_WRITER'].map((mode) => ({
      mount: { fs_type: '', mount_flags: [] },
      access_mode: { mode },
    }));
    const ok = await w.call('ValidateVolumeCapabilities', { volume_id: id, volume_capabilities: caps, secrets });
    expect(ok.confirmed.volume_capabilities).toHaveLength(3);
    const no = await w.call('ValidateVolumeCapabilities', {
      volume_id: id,
      volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      secrets,
    });
    expect(no.confirmed).toBeFalsy();
    expect(no.message).toContain('block');
  });

  it('refuses CreateSnapshot of an object volume naming source_volume_id', async () => {
    const e = await codeOf(w.call('CreateSnapshot', { name: 'snap-1', source_volume_id: 'obj1:s3:pvc-pub:', secrets }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('source_volume_id');
  });
});

describe('backend: block beside object volumes', () => {
  it('still creates a Cinder volume for backend: block, and routes its UUID to Cinder', async () => {
    const sim = await startControllerWorld();
    try {
      const r = await sim.call('CreateVolume', createReq('pvc-block-backend', { parameters: { backend: 'block' } }));
      expect(r.volume.volume_id).toMatch(/^[0-9a-f-]{36}$/);
      await sim.call('DeleteVolume', { volume_id: r.volume.volume_id });
      expect(sim.sim.getVolume(r.volume.volume_id)).toBeUndefined();
    } finally {
      await sim.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('CreateVolume with bad object input', () => {
  const WRONG_SECRET = 'wrong-secret-9f8e7d6c5b4a';
  it.each([
    ['an unknown provider', { provider: 'gcs' }, undefined, 'INVALID_ARGUMENT', 'parameters.provider'],
    ['a bad bucket name', { bucket: 'Bad_Bucket' }, undefined, 'INVALID_ARGUMENT', 'parameters.bucket'],
    ['an unknown parameter', { bukket: 'x' }, undefined, 'INVALID_ARGUMENT', 'parameters.bukket'],
    ['an unknown backend', { backend: 'tape' }, undefined, 'INVALID_ARGUMENT', 'parameters.backend'],
    ['a bad reclaimData', { reclaimData: 'keep' }, undefined, 'INVALID_ARGUMENT', 'parameters.reclaimData'],
    ['swift with s3fs', { provider: 'swift', mounter: 's3fs' }, undefined, 'INVALID_ARGUMENT', 'parameters.mounter'],
    ['a malformed endpoint', { endpoint: 'ftp://x' }, undefined, 'INVALID_ARGUMENT', 'parameters.endpoint'],
    ['no access key', {}, {}, 'INVALID_ARGUMENT', 'secrets.accessKeyID'],
    ['swift without a configured cloud', { provider: 'swift' }, undefined, 'FAILED_PRECONDITION', 'swift'],
  ])('refuses %s', async (_what, params, sec, code, field) => {
    const e = await codeOf(
      create('pvc-bad', params as Record<string, string>, 1, (sec as Record<string, string> | undefined) ?? secrets),
    );
    expect(e.code).toBe(code);
    expect(e.details).toContain(field);
  });

  it('refuses block access with INVALID_ARGUMENT', async () => {
    const req = {
      ...objectReq('pvc-block', {}, secrets),
      volume_capabilities: [{ block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
    };
    const e = await codeOf(w.call('CreateVolume', req));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('volume_capabilities[0].access_type');
  });

  it('answers UNAVAILABLE for an endpoint nobody listens on', async () => {
    const e = await codeOf(create('pvc-closed', { endpoint: `http://127.0.0.1:${await closedPort()}` }));
    expect(e.code).toBe('UNAVAILABLE');
  });

  it('answers UNAUTHENTICATED or PERMISSION_DENIED for wrong keys, without the secret anywhere', async () => {
    const bad = { accessKeyID: 'WRONGKEY', secretAccessKey: WRONG_SECRET, endpoint: s3.endpoint };
    const e = await codeOf(create('pvc-wrong-keys', {}, 1, bad));
    expect(['UNAUTHENTICATED', 'PERMISSION_DENIED']).toContain(e.code);
    expect(e.details).not.toContain(WRONG_SECRET);
    const d = await codeOf(w.call('DeleteVolume', { volume_id: 'obj1:s3:pvc-bucket-1:', secrets: bad }));
    expect(['UNAUTHENTICATED', 'PERMISSION_DENIED']).toContain(d.code);
    expect(w.logText()).not.toContain(WRONG_SECRET);
    expect(w.logText()).not.toContain(s3.secretKey + '"');
  });
});
