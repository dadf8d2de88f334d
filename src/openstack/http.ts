/**
 * The one HTTP layer under the OpenStack clients: timeouts, TLS, User-Agent, a debug line and a
 * metrics event per attempt, retries only where repeating is safe, Retry-After, cancellation by AbortSignal,
 * and the single re-authentication after a 401. Service bodies and URLs belong to keystone/cinder/nova.ts.
 */
import { readFileSync } from 'node:fs';
import { createTransport, type HttpTransport, type TransportResponse } from './http-transport';
import { type Logger, silentLogger } from '../log';
import { OpenStackError, type RequestContext, errorFromAbort, errorFromResponse, errorFromTransport } from './errors';
import { abortableSleep, raceAbort } from './abort';
import { VERSION } from '../version';

/** Bound on one attempt (connect + answer), in milliseconds. */
export const HTTP_TIMEOUT_MS = 30_000;
/** First backoff before a retry, in milliseconds; doubled (RETRY_FACTOR) per retry, jittered, capped. */
export const RETRY_INITIAL_MS = 100;
export const RETRY_FACTOR = 2;
/** Retries after the first attempt. */
export const RETRY_MAX_RETRIES = 3;
export const RETRY_MAX_DELAY_MS = 2_000;
/** Longest Retry-After we honour, in milliseconds; a larger value is clamped to it. */
export const RETRY_AFTER_MAX_MS = 30_000;
/** The product token of the reference driver, kept so cloud operators' log filters still match. */
export const USER_AGENT_PRODUCT = 'cinder-csi-plugin';
const PACKAGE_VERSION: string = VERSION;

const CONNECTION_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
]);
/** Methods whose repetition cannot create a second resource. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'DELETE']);

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One attempt, as reported to the metrics hook. `status` is absent when no answer came. */
export interface RequestEvent {
  service: string;
  operation: string;
  method: HttpMethod;
  status?: number;
  durationMs: number;
  /** 0 for the first attempt, then 1, 2… for retries and the re-authenticated repeat. */
  attempt: number;
  /** Short reason when the attempt failed (HTTP status text or transport code); never a body. */
  error?: string;
}

export interface RetryOptions {
  initialMs: number;
  factor: number;
  maxRetries: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

export interface HttpOptions {
  /** Bound on one attempt, ms; default HTTP_TIMEOUT_MS. */
  timeoutMs?: number;
  /** PEM CA bundle path (cloud.conf ca-file), read once here; a missing file throws at construction. */
  caFile?: string;
  /** Skip server certificate verification (cloud.conf tls-insecure). */
  tlsInsecure?: boolean;
  certFile?: string;
  keyFile?: string;
  /** `--user-agent` values, prepended to `cinder-csi-plugin/<version>` the way gophercloud's Prepend does. */
  userAgentExtra?: readonly string[];
  /** Defaults to package.json's version. */
  version?: string;
  /** false: ignore HTTP(S)_PROXY (the metadata service must be reached directly). Default: the environment's proxy. */
  proxy?: false;
  retry?: Partial<RetryOptions>;
  logger?: Logger;
  /** Called after every attempt; the metrics module plugs in here. Exceptions from it are ignored. */
  onRequest?: (e: RequestEvent) => void;
  /** Injected for tests of waits; must reject when the signal fires. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** [0, 1) for backoff jitter. */
  random?: () => number;
  now?: () => number;
}

/** Where a request's X-Auth-Token comes from; keystone.ts implements it. */
export interface TokenSource {
  token(signal?: AbortSignal): Promise<string>;
  /** Drops `token` if it is still the cached one (a 401 proved it dead); other tokens are left alone. */
  invalidate(token: string): void;
}

export interface HttpRequest {
  service: string;
  /** Resource and verb, e.g. `volume.create`; used in logs, metrics and errors. */
  operation: string;
  method: HttpMethod;
  url: string;
  params?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal;
  /** Present for service calls; absent for Keystone's own token request and the metadata service. */
  auth?: TokenSource;
  /** Overrides the client's per-attempt timeout, ms. */
  timeoutMs?: number;
  /** A POST/PUT that may be repeated like a GET (Keystone's token create: a spare token harms nothing). */
  idempotent?: boolean;
}

export interface HttpResponse<T> {
  status: number;
  data: T;
  headers: Record<string, string | undefined>;
  requestId?: string;
}

type Attempt = { response: TransportResponse } | { error: unknown };

/** Builds the User-Agent the reference sends: the last `--user-agent` first, then `cinder-csi-plugin/<v>`. */
export function buildUserAgent(extra: readonly string[] = [], version = PACKAGE_VERSION): string {
  return [...extra].reverse().concat(`${USER_AGENT_PRODUCT}/${version}`).join(' ');
}

/**
 * Seconds or an HTTP-date (RFC 9110 §10.2.3) to milliseconds from `now`, clamped to [0, maxMs];
 * undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined, now: number, maxMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), maxMs);
}

export class HttpClient {
  readonly userAgent: string;
  private readonly transport: HttpTransport;
  private readonly timeoutMs: number;
  private readonly retry: RetryOptions;
  private readonly log: Logger;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly opts: HttpOptions = {}) {
    this.userAgent = buildUserAgent(opts.userAgentExtra, opts.version);
    this.retry = {
      initialMs: RETRY_INITIAL_MS,
      factor: RETRY_FACTOR,
      maxRetries: RETRY_MAX_RETRIES,
      maxDelayMs: RETRY_MAX_DELAY_MS,
      maxRetryAfterMs: RETRY_AFTER_MAX_MS,
      ...opts.retry,
    };
    this.log = opts.logger ?? silentLogger;
    this.sleep = opts.sleep ?? abortableSleep;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? HTTP_TIMEOUT_MS;
    this.transport = createTransport({
      proxy: opts.proxy,
      headers: { 'User-Agent': this.userAgent, Accept: 'application/json' },
      tls: {
        ca: opts.caFile ? readFileSync(opts.caFile) : undefined,
        cert: opts.certFile ? readFileSync(opts.certFile) : undefined,
        key: opts.keyFile ? readFileSync(opts.keyFile) : undefined,
        rejectUnauthorized: !opts.tlsInsecure,
      },
    });
  }

  /**
   * Sends one logical request. Resolves with a 2xx answer; otherwise rejects with OpenStackError
   * (kind by status; UNAVAILABLE for transport failures; DEADLINE_EXCEEDED/CANCELLED when `signal` fires,
   * including during a backoff sleep). GET/HEAD/DELETE are retried on connection errors, 5xx and 429;
   * POST/PUT/PATCH only on 429 and ECONNREFUSED (never sent), unless marked `idempotent`. A 401 on any
   * method with `auth` re-authenticates once and repeats once.
   */
  async request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    const ctx: RequestContext = {
      service: req.service,
      operation: req.operation,
      method: req.method,
      path: pathOf(req.url),
    };
    // An id of "." or ".." survives encodeURIComponent and the URL parser resolves it away: GET /volumes/.
    // would list volumes. No OpenStack resource has such an id, so it is the 404 the service would give.
    if (hasDotSegment(req.url)) {
      throw new OpenStackError({ ...ctx, kind: 'not-found', serviceMessage: 'an id of "." or ".." names no resource' });
    }
    let reauthenticated = false;
    let retries = 0;
    for (let attempt = 0; ; attempt++) {
      if (req.signal?.aborted) throw errorFromAbort(ctx, req.signal);
      const token = req.auth ? await this.tokenFor(req, ctx) : undefined;
      const outcome = await this.attempt(req, ctx, token, attempt);
      if ('response' in outcome) {
        const res = outcome.response;
        const requestId = headerOf(res, 'x-openstack-request-id') ?? headerOf(res, 'x-compute-request-id');
        if (res.status >= 200 && res.status < 300) {
          return { status: res.status, data: res.data as T, headers: flatHeaders(res), requestId };
        }
        if (res.status === 401 && req.auth && token !== undefined && !reauthenticated) {
          // The token died (expired, revoked); the request never reached the service's logic.
          reauthenticated = true;
          req.auth.invalidate(token);
          continue;
        }
        const error = errorFromResponse(ctx, res.status, res.data, requestId);
        const delay = this.retryDelay(req, res.status, undefined, retries, headerOf(res, 'retry-after'));
        if (delay === undefined) throw error;
        retries++;
        await this.pause(delay, req, ctx);
        continue;
      }
      if (req.signal?.aborted) throw errorFromAbort(ctx, req.signal);
      const code = transportCode(outcome.error);
      const error = errorFromTransport(ctx, transportReason(code, outcome.error), outcome.error);
      const delay = this.retryDelay(req, undefined, code, retries, undefined);
      if (delay === undefined) throw error;
      retries++;
      await this.pause(delay, req, ctx);
    }
  }

  private async tokenFor(req: HttpRequest, ctx: RequestContext): Promise<string> {
    try {
      return await raceAbort(req.auth!.token(req.signal), req.signal);
    } catch (e) {
      if (req.signal?.aborted) throw errorFromAbort(ctx, req.signal);
      throw e;
    }
  }

  private async attempt(
    req: HttpRequest,
    ctx: RequestContext,
    token: string | undefined,
    attempt: number,
  ): Promise<Attempt> {
    const started = this.now();
    const headers: Record<string, string> = { ...req.headers };
    if (token !== undefined) headers['X-Auth-Token'] = token;
    if (req.body !== undefined) headers['Content-Type'] = 'application/json';
    let outcome: Attempt;
    try {
      const response = await this.transport.send({
        method: req.method,
        url: req.url,
        params: req.params,
        headers,
        body: req.body,
        signal: req.signal,
        timeoutMs: req.timeoutMs ?? this.timeoutMs,
      });
      outcome = { response };
    } catch (error) {
      outcome = { error };
    }
    const durationMs = this.now() - started;
    const status = 'response' in outcome ? outcome.response.status : undefined;
    const failed = status === undefined || status >= 400;
    const error = !failed
      ? undefined
      : status !== undefined
        ? `HTTP ${status}`
        : transportCode((outcome as { error: unknown }).error);
    const requestId = 'response' in outcome ? headerOf(outcome.response, 'x-openstack-request-id') : undefined;
    this.log.debug(
      {
        service: ctx.service,
        operation: ctx.operation,
        method: ctx.method,
        path: ctx.path,
        status,
        durationMs,
        attempt,
        requestId,
        error,
      },
      'openstack request',
    );
    try {
      this.opts.onRequest?.({
        service: ctx.service,
        operation: ctx.operation,
        method: req.method,
        status,
        durationMs,
        attempt,
        error,
      });
    } catch {
      // A broken metrics hook must not fail the cloud call.
    }
    return outcome;
  }

  /** Milliseconds to wait before retry number `retries + 1`, or undefined when this failure is final. */
  private retryDelay(
    req: HttpRequest,
    status: number | undefined,
    code: string | undefined,
    retries: number,
    retryAfter: string | undefined,
  ): number | undefined {
    if (retries >= this.retry.maxRetries) return undefined;
    const safe = SAFE_METHODS.has(req.method) || req.idempotent === true;
    const retryable =
      status === 429 || // rate limiting rejects before any work is done, for every method
      (status !== undefined && status >= 500 && safe) ||
      (code !== undefined && (code === 'ECONNREFUSED' || (safe && CONNECTION_ERROR_CODES.has(code))));
    if (!retryable) return undefined;
    if (status === 429 || status === 503) {
      const ms = parseRetryAfter(retryAfter, this.now(), this.retry.maxRetryAfterMs);
      if (ms !== undefined) return ms;
    }
    const base = Math.min(this.retry.maxDelayMs, this.retry.initialMs * this.retry.factor ** retries);
    // Equal jitter: half fixed, half random, so clients that failed together do not retry together.
    return base / 2 + (base / 2) * this.random();
  }

  private async pause(ms: number, req: HttpRequest, ctx: RequestContext): Promise<void> {
    this.log.debug(
      { service: ctx.service, operation: ctx.operation, delayMs: Math.round(ms) },
      'openstack request retry',
    );
    try {
      await this.sleep(ms, req.signal);
    } catch (e) {
      if (req.signal?.aborted) throw errorFromAbort(ctx, req.signal);
      throw e;
    }
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0];
  }
}

function headerOf(res: TransportResponse, name: string): string | undefined {
  const v: unknown = res.headers?.[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined;
}

function flatHeaders(res: TransportResponse): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(res.headers ?? {}))
    out[k.toLowerCase()] = v === undefined || v === null ? undefined : String(v);
  return out;
}

/** The code plus the library's message when it adds something ("unable to verify the first certificate"). */
function transportReason(code: string, error: unknown): string {
  const message = (error as { message?: unknown })?.message;
  if (typeof message !== 'string' || !message || message === code) return code;
  return message.includes(code) ? message : `${code}: ${message}`;
}

/** The errno-like code of a transport failure (ECONNRESET, ECONNREFUSED, ETIMEDOUT…), or a short message. */
export function transportCode(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  if (typeof e?.code === 'string' && e.code !== 'ERR_BAD_RESPONSE' && e.code !== 'ERR_BAD_REQUEST') {
    return e.code;
  }
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  if (typeof e?.message === 'string' && /socket hang up/i.test(e.message)) return 'ECONNRESET';
  return typeof e?.message === 'string' ? e.message.slice(0, 200) : 'unknown transport error';
}

/** True when the URL's path has a `.` or `..` segment, literal or percent-encoded (WHATWG URL resolves both). */
export function hasDotSegment(url: string): boolean {
  // Every such segment starts right after a slash; most URLs have none, and skip the parse.
  if (!/\/(\.|%2e)/i.test(url)) return false;
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').split(/[?#]/, 1)[0];
  return path.split('/').some((s) => /^(\.|%2e){1,2}$/i.test(s));
}
