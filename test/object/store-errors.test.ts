/** Mapping of S3 client failures to CSI codes, and the secret kept out of every message. */
import { CodedError, Status } from '../../src/errors';
import { s3Failure, scrub, withSignal } from '../../src/object/store-errors';

const call = { provider: 's3' as const, operation: 'bucket.create', bucket: 'b-1', secret: 'sekret-123' };
const err = (props: Record<string, unknown>, message = 'boom') => Object.assign(new Error(message), props);

describe('s3Failure', () => {
  it.each([
    [err({ code: 'ECONNREFUSED' }), Status.UNAVAILABLE],
    [err({ code: 'ENOTFOUND' }), Status.UNAVAILABLE],
    [err({ code: 'InvalidAccessKeyId' }), Status.UNAUTHENTICATED],
    [err({ code: 'SignatureDoesNotMatch' }, 'calculated with sekret-123'), Status.UNAUTHENTICATED],
    [err({ code: 'AccessDenied' }), Status.PERMISSION_DENIED],
    [err({ code: 'NoSuchBucket' }), Status.NOT_FOUND],
    [err({ code: 'InvalidBucketName' }), Status.INVALID_ARGUMENT],
    [err({ name: 'InvalidBucketNameError' }), Status.INVALID_ARGUMENT],
    [err({ code: 'BucketAlreadyOwnedByYou' }), Status.ALREADY_EXISTS],
    [err({ code: 'SlowDown' }), Status.UNAVAILABLE],
    [err({}, 'Request failed after 0 retries: Error: Retryable HTTP status: 503'), Status.UNAVAILABLE],
    [err({ code: 'Weird' }, 'odd sekret-123'), Status.INTERNAL],
  ])('maps %s to code %s and names the bucket without the secret', (e, code) => {
    const out = s3Failure(e, call);
    expect(out.code).toBe(code);
    expect(out.details).toContain('"b-1"');
    expect(out.details).not.toContain('sekret-123');
  });

  it('passes a CodedError through', () => {
    const e = new CodedError(Status.ABORTED, 'x');
    expect(s3Failure(e, call)).toBe(e);
  });
});

describe('scrub and withSignal', () => {
  it('replaces every occurrence of the secret', () => expect(scrub('a s b s', 's')).toBe('a [redacted] b [redacted]'));

  it('answers DEADLINE_EXCEEDED when the signal fires before the operation ends', async () => {
    const ac = new AbortController();
    const p = withSignal(ac.signal, 'slow op', () => new Promise((r) => setTimeout(r, 5_000).unref()));
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
  });
});
