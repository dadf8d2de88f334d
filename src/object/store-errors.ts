/**
 * Turns S3 client failures into CodedErrors with the code the CSI RPC should answer, and races provider
 * calls against the RPC's AbortSignal. Messages name the provider, operation and bucket, never a key:
 * any text taken from the provider is scrubbed of the secret first, in case a server echoes it.
 */
import { CodedError, Status, messageOf } from '../errors';

/** Socket-level failures that mean "the endpoint is not there or not answering". */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
/** S3 error codes by the gRPC code they mean for us (AWS S3 API reference, "Error responses"). */
const S3_CODES: Record<string, Status> = {
  InvalidAccessKeyId: Status.UNAUTHENTICATED,
  SignatureDoesNotMatch: Status.UNAUTHENTICATED,
  AuthorizationHeaderMalformed: Status.UNAUTHENTICATED,
  AccessDenied: Status.PERMISSION_DENIED,
  AllAccessDisabled: Status.PERMISSION_DENIED,
  NoSuchBucket: Status.NOT_FOUND,
  NoSuchKey: Status.NOT_FOUND,
  NotFound: Status.NOT_FOUND,
  InvalidBucketName: Status.INVALID_ARGUMENT,
  BucketAlreadyExists: Status.ALREADY_EXISTS,
  BucketAlreadyOwnedByYou: Status.ALREADY_EXISTS,
  BucketNotEmpty: Status.FAILED_PRECONDITION,
  TooManyBuckets: Status.RESOURCE_EXHAUSTED,
  QuotaExceeded: Status.RESOURCE_EXHAUSTED,
  InternalError: Status.UNAVAILABLE,
  ServiceUnavailable: Status.UNAVAILABLE,
  SlowDown: Status.UNAVAILABLE,
};

/** Where a provider call went, for messages. */
export interface StoreCall {
  provider: 's3' | 'swift';
  operation: string;
  bucket: string;
  /** Redacted from every message built here. */
  secret?: string;
}

/** The CodedError for a failed S3 call; a CodedError passes through unchanged. */
export function s3Failure(e: unknown, call: StoreCall): CodedError {
  if (e instanceof CodedError) return e;
  const err = e as { code?: unknown; name?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  const where = `${call.provider} ${call.operation} of bucket "${call.bucket}"`;
  const said = scrub(messageOf(e), call.secret);
  if (TRANSPORT_CODES.has(code))
    return new CodedError(Status.UNAVAILABLE, `${where}: endpoint unreachable (${code})`, { cause: e });
  if (err?.name === 'InvalidBucketNameError')
    return new CodedError(Status.INVALID_ARGUMENT, `${where}: invalid bucket name`, { cause: e });
  const mapped = S3_CODES[code];
  if (mapped === Status.UNAUTHENTICATED || mapped === Status.PERMISSION_DENIED) {
    // Say which key pair was refused without quoting it; the provider's text is not needed to act on it.
    return new CodedError(mapped, `${where}: the provider rejected the credentials (${code})`, { cause: e });
  }
  if (mapped === undefined && /HTTP status:? 5\d\d/.test(said))
    return new CodedError(Status.UNAVAILABLE, `${where}: ${said}`, { cause: e });
  if (mapped !== undefined) return new CodedError(mapped, `${where}: ${code}: ${said}`, { cause: e });
  return new CodedError(Status.INTERNAL, `${where} failed: ${code ? `${code}: ` : ''}${said}`, { cause: e });
}

/** `text` with every occurrence of `secret` replaced. */
export function scrub(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('[redacted]') : text;
}

/**
 * Runs `op`, answering DEADLINE_EXCEEDED as soon as `signal` fires (the S3 client takes no AbortSignal;
 * the abandoned request finishes or fails on its own and its result is dropped).
 */
export async function withSignal<T>(signal: AbortSignal, what: string, op: () => Promise<T>): Promise<T> {
  if (signal.aborted) throw deadline(what);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(deadline(what));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([op(), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function deadline(what: string): CodedError {
  return new CodedError(Status.DEADLINE_EXCEEDED, `${what}: deadline reached before the object store answered`);
}
