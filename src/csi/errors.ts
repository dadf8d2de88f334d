/** The gRPC code factories of src/errors.ts, under the names the CSI handlers import. */
export {
  CodedError as CsiError,
  invalidArgument,
  notFound,
  alreadyExists,
  failedPrecondition,
  resourceExhausted,
  outOfRange,
  aborted,
  unavailable,
  unimplemented,
  deadlineExceeded,
  internal,
} from '../errors';
