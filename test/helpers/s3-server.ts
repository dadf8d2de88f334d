/** The local S3 server of the demo, for tests: see src/demo/local-s3.ts. */
export { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3Server } from '../../src/demo/local-s3';
export type { S3TestServer } from '../../src/demo/local-s3';
