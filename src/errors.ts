/**
 * The one error type that crosses layers. Every failure raised by our code carries the gRPC status the CSI
 * spec wants for it, chosen where the failure is understood (OpenStack client, mount layer, handler), so
 * the server wrapper never has to guess. Anything that is not a CodedError is answered as INTERNAL.
 */
import { status } from '@grpc/grpc-js';

export { status as Status };

export class CodedError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(details, options);
    this.name = 'CodedError';
  }
}

export function isCodedError(e: unknown): e is CodedError {
  return e instanceof CodedError;
}

/** The message of any thrown value, for wrapping; never includes a stack. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Factories for the gRPC codes, so call sites read like the CSI spec: `throw invalidArgument('volume_id', 'is
 * required')`. Field names are spelled as in the spec. They live here, not in src/csi, because the backends below
 * the CSI layer raise them where a failure is understood.
 */
export const invalidArgument = (field: string, problem: string) =>
  new CodedError(status.INVALID_ARGUMENT, `${field} ${problem}`);
export const notFound = (what: string) => new CodedError(status.NOT_FOUND, what);
export const alreadyExists = (what: string) => new CodedError(status.ALREADY_EXISTS, what);
export const failedPrecondition = (what: string) => new CodedError(status.FAILED_PRECONDITION, what);
export const resourceExhausted = (what: string) => new CodedError(status.RESOURCE_EXHAUSTED, what);
export const outOfRange = (what: string) => new CodedError(status.OUT_OF_RANGE, what);
export const aborted = (what: string) => new CodedError(status.ABORTED, what);
export const unavailable = (what: string) => new CodedError(status.UNAVAILABLE, what);
export const unimplemented = (what: string) => new CodedError(status.UNIMPLEMENTED, what);
export const deadlineExceeded = (what: string) => new CodedError(status.DEADLINE_EXCEEDED, what);
export const internal = (what: string, cause?: unknown) =>
  new CodedError(status.INTERNAL, cause === undefined ? what : `${what}: ${messageOf(cause)}`, { cause });
