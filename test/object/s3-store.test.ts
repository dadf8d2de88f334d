/** S3ObjectStore against s3rver: ownership mark, records, and paged deletion under a prefix. */
import { startS3Server, type S3TestServer } from '../helpers/s3-server';
import { S3ObjectStore } from '../../src/object/s3-store';
import { listKeys, s3Client } from '../csi/controller-object-world';
import { CodedError, Status } from '../../src/errors';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(() => s3.stop());

const signal = () => AbortSignal.timeout(10_000);
const store = (pageSize?: number) =>
  new S3ObjectStore({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: 'us-east-1',
    pathStyle: true,
    pageSize,
  });

describe('S3ObjectStore', () => {
  it('marks the buckets it creates and reads the mark back', async () => {
    const s = store();
    await s.createBucket('owned-1', 'pvc-owned-1', signal());
    expect(await s.bucketOwner('owned-1', signal())).toBe('pvc-owned-1');
    expect(await s.bucketOwner('no-such-bucket', signal())).toBeUndefined();
    await expect(s.createBucket('owned-1', 'pvc-owned-1', signal())).rejects.toMatchObject({
      code: Status.ALREADY_EXISTS,
    });
  });

  it('writes and reads the volume record with its reclaim policy', async () => {
    const s = store();
    await s.createBucket('rec-1', 'rec-1', signal());
    expect(await s.getRecord('rec-1', 'p/', signal())).toBeUndefined();
    await s.putRecord('rec-1', 'p/', { capacityBytes: 5n * 1024n ** 3n, reclaim: 'retain' }, signal());
    expect(await s.getRecord('rec-1', 'p/', signal())).toEqual({ capacityBytes: 5n * 1024n ** 3n, reclaim: 'retain' });
  });

  it('deletes 30 objects under a prefix in pages of 7, keeping neighbours and the ownership mark', async () => {
    const s = store(7);
    const c = s3Client(s3.endpoint, s3.accessKey, s3.secretKey);
    await s.createBucket('paged', 'paged', signal());
    await Promise.all(Array.from({ length: 30 }, (_, i) => c.putObject('paged', `vol/${i}`, Buffer.from('x'))));
    await c.putObject('paged', 'volume-2/keep', Buffer.from('x'));
    const done = await s.deletePrefix('paged', 'vol/', signal());
    expect(done.deleted).toBe(30);
    expect(done.pages).toBeGreaterThanOrEqual(5);
    expect(await listKeys(c, 'paged')).toEqual(['.cinder-csi/owner', 'volume-2/keep']);
    const all = await s.deletePrefix('paged', '', signal());
    expect(all.deleted).toBe(1);
    await s.deleteBucket('paged', signal());
    expect(await s.bucketExists('paged', signal())).toBe(false);
    await s.deleteBucket('paged', signal());
  });

  it('answers DEADLINE_EXCEEDED once the signal has fired', async () => {
    const e = await store()
      .bucketExists('x-y-z', AbortSignal.abort())
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(CodedError);
    expect((e as CodedError).code).toBe(Status.DEADLINE_EXCEEDED);
  });
});
