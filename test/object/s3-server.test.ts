// Smoke test of the shared s3rver helper with the minio client: the server signs, stores and stops.
import * as Minio from 'minio';
import { startS3Server, type S3TestServer } from '../helpers/s3-server';

describe('startS3Server', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(async () => s3.stop());

  it('serves buckets and objects to a signing client', async () => {
    const u = new URL(s3.endpoint);
    const c = new Minio.Client({
      endPoint: u.hostname,
      port: Number(u.port),
      useSSL: false,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      pathStyle: true,
      region: 'us-east-1',
    });
    await c.makeBucket('smoke', 'us-east-1');
    await c.putObject('smoke', 'a/b.txt', Buffer.from('hi'));
    expect(await c.bucketExists('smoke')).toBe(true);
    const stream = await c.getObject('smoke', 'a/b.txt');
    const chunks: Buffer[] = [];
    for await (const ch of stream) chunks.push(ch as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hi');
  });
});
