/**
 * Factories for the gRPC codes CSI handlers answer with, so call sites read like the spec:
 * `throw invalidArgument('volume_id', 'is required')`. Field names are spelled as in the CSI spec.
 */
import { CodedError, Status, messageOf } from '../errors';

export { CodedError as CsiError };

export const invalidArgument = (field: string, problem: string) =>
  new CodedError(Status.INVALID_ARGUMENT, `${field} ${problem}`);
export const notFound = (what: string) => new CodedError(Status.NOT_FOUND, what);
export const alreadyExists = (what: string) => new CodedError(Status.ALREADY_EXISTS, what);
export const failedPrecondition = (what: string) => new CodedError(Status.FAILED_PRECONDITION, what);
export const resourceExhausted = (what: string) => new CodedError(Status.RESOURCE_EXHAUSTED, what);
export const outOfRange = (what: string) => new CodedError(Status.OUT_OF_RANGE, what);
export const aborted = (what: string) => new CodedError(Status.ABORTED, what);
export const unavailable = (what: string) => new CodedError(Status.UNAVAILABLE, what);
export const unimplemented = (what: string) => new CodedError(Status.UNIMPLEMENTED, what);
export const deadlineExceeded = (what: string) => new CodedError(Status.DEADLINE_EXCEEDED, what);
export const internal = (what: string, cause?: unknown) =>
  new CodedError(Status.INTERNAL, cause === undefined ? what : `${what}: ${messageOf(cause)}`, { cause });
