/**
 * The plumbing the service modules share: the request context a handler receives, the reply it returns,
 * ApiError for failures, and the error bodies each real service answers with (Keystone's `error` object,
 * the `{"badRequest": {...}}` faults of Cinder and Nova). Also microversion header parsing.
 */
import { STATUS_CODES } from 'node:http';
import type { TokenRecord } from './state';

export type Service = 'keystone' | 'cinder' | 'nova' | 'metadata';
export type Interface = 'public' | 'internal' | 'admin';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RequestContext {
  method: string;
  /** the path after the service prefix, e.g. `/volumes/detail` */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  /** parsed JSON body, or undefined when there was none */
  body: unknown;
  service: Service;
  iface: Interface;
  /** the endpoint this request came in on, e.g. `http://127.0.0.1:4000/internal/volume/v3/<project>` */
  endpoint: string;
  /** the simulator's base URL */
  baseUrl: string;
  params: Record<string, string>;
  token?: TokenRecord;
  /** negotiated microversion, e.g. [3, 42]; [0, 0] for unversioned services */
  microversion: [number, number];
}

/** A failure answered with the service's own error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (m: string): ApiError => new ApiError(400, m);
export const notFound = (m: string): ApiError => new ApiError(404, m);

/** Fault names of Cinder's and Nova's wsgi Fault (`_fault_names`); everything else is computeFault. */
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** The text keystonemiddleware's auth_token answers with, on every service. */
export const AUTH_REQUIRED = 'The request you have made requires authentication.';

/** The JSON body a real service sends with this status and message. */
export function errorBody(service: Service, status: number, message: string, retryAfter?: string): unknown {
  // Keystone itself, and keystonemiddleware in front of Cinder and Nova, answer 401 in Keystone's shape.
  if (service === 'keystone' || status === 401) {
    return { error: { code: status, message, title: STATUS_CODES[status] ?? 'Error' } };
  }
  const name = FAULT_NAMES[status] ?? 'computeFault';
  const fault: Record<string, unknown> = { code: status, message };
  if ((status === 413 || status === 429) && retryAfter !== undefined) fault.retryAfter = retryAfter;
  return { [name]: fault };
}

/** The first value of a header. */
export function header(ctx: Pick<RequestContext, 'headers'>, name: string): string | undefined {
  const v = ctx.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads the microversion a client asked for: `OpenStack-API-Version: <service> X.Y` (comma-separated list),
 * or Nova's legacy `X-OpenStack-Nova-API-Version`. 'latest' is the maximum; absent is the minimum.
 * Out of range → 406, as both services answer.
 */
export function negotiateMicroversion(
  ctx: Pick<RequestContext, 'headers'>,
  serviceType: 'volume' | 'compute',
  min: [number, number],
  max: [number, number],
): [number, number] {
  let asked: string | undefined;
  const generic = header(ctx, 'openstack-api-version');
  if (generic) {
    for (const part of generic.split(',')) {
      const [svc, ver] = part.trim().split(/\s+/);
      if (svc?.toLowerCase() === serviceType && ver) asked = ver;
    }
  }
  if (!asked && serviceType === 'compute') asked = header(ctx, 'x-openstack-nova-api-version');
  if (!asked) return min;
  if (asked.toLowerCase() === 'latest') return max;
  const m = /^(\d+)\.(\d+)$/.exec(asked.trim());
  if (!m)
    throw new ApiError(400, `API Version String ${asked} is of invalid format. Must be of format MajorNum.MinorNum.`);
  const v: [number, number] = [Number(m[1]), Number(m[2])];
  if (compareVersion(v, min) < 0 || compareVersion(v, max) > 0) {
    throw new ApiError(
      406,
      `Version ${asked} is not supported by the API. Minimum is ${min.join('.')} and maximum is ${max.join('.')}.`,
    );
  }
  return v;
}

export function compareVersion(a: [number, number], b: [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/** Whether the request's microversion is at least `v` ("3.42"). */
export function atLeast(ctx: Pick<RequestContext, 'microversion'>, v: string): boolean {
  const [maj, min] = v.split('.').map(Number);
  return compareVersion(ctx.microversion, [maj, min]) >= 0;
}

/** The body as an object, or a 400 naming what was expected. */
export function objectBody(ctx: RequestContext, key: string): Record<string, unknown> {
  const b = ctx.body as Record<string, unknown> | undefined;
  const inner = b && typeof b === 'object' ? b[key] : undefined;
  if (!inner || typeof inner !== 'object' || Array.isArray(inner)) {
    throw badRequest(`Missing required element '${key}' in request body.`);
  }
  return inner as Record<string, unknown>;
}

export function optString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw badRequest(`Invalid input for field/attribute ${key}. Value: ${String(v)}. is not of type 'string'`);
  return v;
}

export function optStringMap(o: Record<string, unknown>, key: string): Record<string, string> {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw badRequest(`Invalid input for field/attribute ${key}: must be an object.`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string')
      throw badRequest(`Invalid input for field/attribute ${key}: value of '${k}' is not a string.`);
    out[k] = val;
  }
  return out;
}

/** Parses Cinder's boolean strings ('true', 'True', '1', 'yes'…) the way oslo's bool_from_string does. */
export function boolish(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return ['1', 't', 'true', 'on', 'y', 'yes'].includes(v.trim().toLowerCase());
  return false;
}

/** One entry of a service's routing table; `pattern` is matched against the path after the service prefix. */
export interface Route {
  method: string;
  pattern: RegExp;
  /** operation name for counters and faults; a function when it depends on the body (volume actions) */
  op: string | ((ctx: RequestContext) => string);
  /** whether a live Keystone token is required (checked after faults) */
  auth: boolean;
  handle(ctx: RequestContext): Reply | Promise<Reply>;
}
