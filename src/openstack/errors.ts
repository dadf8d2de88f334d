/**
 * The typed error of the OpenStack clients: what failed (service, operation, method, path), how (HTTP status,
 * the service's own message, request id) and the gRPC code we suggest for it. Handlers may override the code
 * where an RPC changes its meaning (DeleteVolume treats NOT_FOUND as success). Never holds a token or password.
 */
import { CodedError, Status } from '../errors';

/** Why a call failed, independent of the service that said it. */
export type OpenStackErrorKind =
  | 'bad-request' // 400 about the request itself → INVALID_ARGUMENT
  | 'invalid-state' // 400 "Invalid volume: status must be available" → FAILED_PRECONDITION
  | 'unauthorized' // 401 after the one re-authentication → UNAUTHENTICATED
  | 'forbidden' // 403 → PERMISSION_DENIED
  | 'not-found' // 404 → NOT_FOUND
  | 'conflict' // 409 → FAILED_PRECONDITION
  | 'over-limit' // 413, or a quota/limit message on 400/403 → RESOURCE_EXHAUSTED
  | 'rate-limited' // 429 after the retries → UNAVAILABLE (transient; RESOURCE_EXHAUSTED means "no capacity" in CSI)
  | 'unavailable' // 5xx, refused/reset connection, per-attempt timeout → UNAVAILABLE
  | 'deadline' // the caller's AbortSignal fired → DEADLINE_EXCEEDED
  | 'cancelled' // the caller's AbortSignal fired with a CANCELLED reason → CANCELLED
  | 'endpoint-not-found' // the catalog lacks the service/region/interface → FAILED_PRECONDITION
  | 'unexpected'; // anything else (405, 406 unsupported microversion, malformed body) → INTERNAL

const CODE_OF_KIND: Record<OpenStackErrorKind, Status> = {
  'bad-request': Status.INVALID_ARGUMENT,
  'invalid-state': Status.FAILED_PRECONDITION,
  unauthorized: Status.UNAUTHENTICATED,
  forbidden: Status.PERMISSION_DENIED,
  'not-found': Status.NOT_FOUND,
  conflict: Status.FAILED_PRECONDITION,
  'over-limit': Status.RESOURCE_EXHAUSTED,
  'rate-limited': Status.UNAVAILABLE,
  unavailable: Status.UNAVAILABLE,
  deadline: Status.DEADLINE_EXCEEDED,
  cancelled: Status.CANCELLED,
  'endpoint-not-found': Status.FAILED_PRECONDITION,
  unexpected: Status.INTERNAL,
};

/** Longest service message (or non-JSON body excerpt) kept in an error. */
const SERVICE_MESSAGE_MAX_CHARS = 500;

// Cinder answers 400 InvalidVolume/InvalidSnapshot for wrong states ("Volume status must be available",
// "Invalid volume: Volume ... is in in-use state"); those are preconditions, not bad arguments.
const INVALID_STATE_RE =
  /status must be|must be in|invalid (volume|snapshot|backup)\b|is in .* state|in-use|is attached|is busy/i;
const OVER_LIMIT_RE = /quota|exceeds? allowed|maximum (allowed )?number|limit exceeded/i;

/** Where a request went: enough to find it in the service's logs, nothing secret. */
export interface RequestContext {
  service: string;
  operation: string;
  method: string;
  /** URL path only; the query string is dropped. */
  path: string;
}

export interface OpenStackErrorInit extends RequestContext {
  kind: OpenStackErrorKind;
  status?: number;
  requestId?: string;
  serviceMessage?: string;
  /** What went wrong when there is no service message (connection reset, timeout…). */
  reason?: string;
  /** Overrides the code suggested by `kind` (a CodedError abort reason carries its own). */
  code?: Status;
  cause?: unknown;
}

export class OpenStackError extends CodedError {
  readonly kind: OpenStackErrorKind;
  readonly service: string;
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly status?: number;
  readonly requestId?: string;
  readonly serviceMessage?: string;

  constructor(init: OpenStackErrorInit) {
    super(init.code ?? CODE_OF_KIND[init.kind], formatMessage(init), { cause: init.cause });
    this.name = 'OpenStackError';
    this.kind = init.kind;
    this.service = init.service;
    this.operation = init.operation;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.requestId = init.requestId;
    this.serviceMessage = init.serviceMessage;
  }
}

function formatMessage(i: OpenStackErrorInit): string {
  const what = `${i.service} ${i.operation} (${i.method} ${i.path})`;
  const detail = i.serviceMessage ?? i.reason ?? i.kind;
  const status = i.status !== undefined ? `HTTP ${i.status}: ` : '';
  const req = i.requestId ? ` [request ${i.requestId}]` : '';
  return `${what} failed: ${status}${detail}${req}`;
}

export function isOpenStackError(e: unknown, kind?: OpenStackErrorKind): e is OpenStackError {
  return e instanceof OpenStackError && (kind === undefined || e.kind === kind);
}

/** True for a 404 from any service: DeleteVolume and ControllerUnpublishVolume treat it as done. */
export const isNotFound = (e: unknown): boolean => isOpenStackError(e, 'not-found');

/**
 * The service's own message and fault name from an error body:
 * Cinder/Nova `{"itemNotFound": {"message": "...", "code": 404}}` (also badRequest, overLimit, forbidden,
 * conflictingRequest, computeFault), Keystone `{"error": {"message": "...", "title": "..."}}`.
 * A non-JSON body (a proxy's HTML page) is kept as a trimmed excerpt.
 */
export function parseServiceFault(data: unknown): { fault?: string; message?: string } {
  if (typeof data === 'string') {
    const text = data
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    return text ? { message: text.slice(0, SERVICE_MESSAGE_MAX_CHARS) } : {};
  }
  if (data && typeof data === 'object') {
    for (const [fault, value] of Object.entries(data as Record<string, unknown>)) {
      if (value && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string') {
        const message = (value as { message: string }).message.slice(0, SERVICE_MESSAGE_MAX_CHARS);
        return { fault, message };
      }
    }
  }
  return {};
}

/** Classifies an HTTP error answer (after retries and re-authentication are spent). */
export function errorFromResponse(
  ctx: RequestContext,
  status: number,
  data: unknown,
  requestId?: string,
): OpenStackError {
  const { fault, message } = parseServiceFault(data);
  return new OpenStackError({
    ...ctx,
    kind: kindOfStatus(status, fault, message),
    status,
    requestId,
    serviceMessage: message,
  });
}

function kindOfStatus(status: number, fault?: string, message = ''): OpenStackErrorKind {
  if (status === 429) return 'rate-limited';
  if (fault === 'overLimit' || status === 413) return 'over-limit';
  if (status === 400) {
    if (OVER_LIMIT_RE.test(message)) return 'over-limit';
    return INVALID_STATE_RE.test(message) ? 'invalid-state' : 'bad-request';
  }
  if (status === 401) return 'unauthorized';
  if (status === 403) return OVER_LIMIT_RE.test(message) ? 'over-limit' : 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status >= 500) return 'unavailable';
  return 'unexpected';
}

/** A request that never got an answer: refused, reset, timed out. */
export function errorFromTransport(ctx: RequestContext, reason: string, cause?: unknown): OpenStackError {
  return new OpenStackError({ ...ctx, kind: 'unavailable', reason, cause });
}

/**
 * The caller's signal fired. A CodedError reason (the gRPC server's) gives its own code; any other reason
 * (AbortSignal.timeout's TimeoutError, a bare abort()) means the deadline passed: DEADLINE_EXCEEDED.
 */
export function errorFromAbort(ctx: RequestContext, signal: AbortSignal): OpenStackError {
  const reason: unknown = signal.reason;
  if (reason instanceof CodedError) {
    const kind = reason.code === Status.CANCELLED ? 'cancelled' : 'deadline';
    return new OpenStackError({ ...ctx, kind, code: reason.code, reason: `cancelled: ${reason.details}` });
  }
  return new OpenStackError({ ...ctx, kind: 'deadline', reason: 'deadline exceeded before an answer' });
}
