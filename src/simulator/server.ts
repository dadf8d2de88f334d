/**
 * The HTTP(S) front of the simulator: splits a path into interface prefix, service and rest, finds the
 * route, counts the operation, applies an armed fault, checks the token and microversion, runs the
 * handler and writes the reply with the service's headers and error bodies.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SimEnv } from './env';
import type { Counters, FaultTable } from './faults';
import {
  ApiError,
  AUTH_REQUIRED,
  errorBody,
  header,
  negotiateMicroversion,
  type Interface,
  type Reply,
  type RequestContext,
  type Route,
  type Service,
} from './http-util';
import { CINDER_MAX_VERSION, CINDER_MIN_VERSION, cinderRoutes } from './cinder';
import { keystoneRoutes } from './keystone';
import { metadataRoutes } from './metadata';
import { NOVA_MAX_VERSION, NOVA_MIN_VERSION, novaRoutes } from './nova';

/** Bodies larger than this are refused; the APIs simulated never send more than a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;
const SERVICE_PREFIXES: Record<string, Service> = {
  identity: 'keystone',
  volume: 'cinder',
  compute: 'nova',
  metadata: 'metadata',
};

interface Classified {
  service: Service;
  iface: Interface;
  /** the URL prefix up to and including the service segment, e.g. `/internal/volume` */
  prefix: string;
  rest: string;
}

function classify(pathname: string): Classified | undefined {
  const m = /^(\/(internal|admin))?\/(identity|volume|compute|metadata)(\/.*)?$/.exec(pathname);
  if (!m) return undefined;
  return {
    service: SERVICE_PREFIXES[m[3]],
    iface: (m[2] as Interface | undefined) ?? 'public',
    prefix: `${m[1] ?? ''}/${m[3]}`,
    rest: m[4] ?? '/',
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) reject(new ApiError(413, 'Request is too large.'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface SimServerDeps {
  env: SimEnv;
  counters: Counters;
  faults: FaultTable;
  tls?: { cert: string; key: string };
}

export function createSimServer(deps: SimServerDeps): Server {
  const { env } = deps;
  const routes: Record<Service, Route[]> = {
    keystone: keystoneRoutes(env),
    cinder: cinderRoutes(env),
    nova: novaRoutes(env),
    metadata: metadataRoutes(env),
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(deps, routes, req, res).catch((err: unknown) => {
      env.log.error({ err }, 'simulator: request failed');
      if (!res.headersSent && !res.destroyed)
        send(res, { status: 500, body: { computeFault: { code: 500, message: 'internal' } } }, {});
    });
  };
  return deps.tls ? createHttpsServer({ cert: deps.tls.cert, key: deps.tls.key }, handler) : createHttpServer(handler);
}

async function handle(
  deps: SimServerDeps,
  routes: Record<Service, Route[]>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { env, counters, faults } = deps;
  const url = new URL(req.url ?? '/', 'http://simulator');
  const where = classify(url.pathname);
  const method = req.method ?? 'GET';
  const raw = await readBody(req).catch((e: unknown) => e as ApiError);
  let body: unknown;
  let bodyError: ApiError | undefined = raw instanceof ApiError ? raw : undefined;
  if (raw instanceof Buffer && raw.length > 0) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      bodyError = new ApiError(400, 'Malformed request body');
    }
  }
  const ctx: RequestContext = {
    method,
    path: where?.rest ?? url.pathname,
    query: url.searchParams,
    headers: req.headers,
    body,
    service: where?.service ?? 'nova',
    iface: where?.iface ?? 'public',
    endpoint: '',
    baseUrl: env.baseUrl,
    params: {},
    microversion: [0, 0],
  };
  // HEAD falls back to the GET route when a service has no HEAD of its own, as WSGI frameworks do.
  const candidates = where ? routes[where.service] : [];
  const tries =
    method === 'HEAD'
      ? [candidates.filter((r) => r.method === 'HEAD'), candidates.filter((r) => r.method === 'GET')]
      : [candidates.filter((r) => r.method === method)];
  let route: Route | undefined;
  for (const list of tries) {
    for (const r of list) {
      const m = r.pattern.exec(ctx.path);
      if (m) {
        route = r;
        ctx.params = { ...(m.groups ?? {}) };
        break;
      }
    }
    if (route) break;
  }
  const op = route
    ? typeof route.op === 'function'
      ? route.op(ctx)
      : route.op
    : `${where?.service ?? 'unknown'}.unknown`;
  counters.inc(op);
  if (ctx.service === 'cinder' || ctx.service === 'nova') counters.inc(`interface.${ctx.iface}`);
  ctx.endpoint = endpointOf(env, where, ctx);
  const extraHeaders: Record<string, string> = { 'x-openstack-request-id': `req-${randomUUID()}` };
  // Cinder sends the legacy header as well as Nova (observed on openstack-loopback (Cinder 21/Nova 26)).
  if (ctx.service === 'nova' || ctx.service === 'cinder')
    extraHeaders['x-compute-request-id'] = extraHeaders['x-openstack-request-id'];

  const fault = faults.take(op);
  let dropResponse = false;
  if (fault) {
    env.log.debug({ op, fault }, 'simulator: fault');
    switch (fault.kind) {
      case 'reset':
        req.socket.destroy();
        return;
      case 'delay':
        await env.state.sleep(fault.delayMs ?? 0);
        break;
      case 'revoke-tokens':
        env.state.revokeAllTokens();
        break;
      case 'expire-tokens':
        env.state.expireAllTokens();
        break;
      case 'drop-response':
        dropResponse = true;
        break;
      case 'http-status': {
        const status = fault.status ?? 500;
        const message = status === 401 ? AUTH_REQUIRED : `Injected fault: HTTP ${status}`;
        return send(res, { status, body: errorBody(ctx.service, status, message) }, extraHeaders);
      }
      case 'retry-after': {
        const after = String(fault.retryAfterSeconds ?? 1);
        const body = errorBody(ctx.service, 429, 'This request was rate-limited.', after);
        return send(res, { status: 429, body, headers: { 'Retry-After': after } }, extraHeaders);
      }
    }
  }

  try {
    if (bodyError) throw bodyError;
    if (!route) throw new ApiError(404, 'The resource could not be found.');
    if (route.auth) {
      const token = env.state.liveToken(header(ctx, 'x-auth-token'));
      if (!token || !token.projectId) {
        throw new ApiError(401, AUTH_REQUIRED, { 'WWW-Authenticate': wwwAuthenticate(env) });
      }
      ctx.token = token;
    }
    if (ctx.service === 'cinder') {
      ctx.microversion = negotiateMicroversion(ctx, 'volume', CINDER_MIN_VERSION, CINDER_MAX_VERSION);
      Object.assign(extraHeaders, {
        'OpenStack-API-Version': `volume ${ctx.microversion.join('.')}`,
        Vary: 'OpenStack-API-Version',
      });
    } else if (ctx.service === 'nova') {
      ctx.microversion = negotiateMicroversion(ctx, 'compute', NOVA_MIN_VERSION, NOVA_MAX_VERSION);
      const v = ctx.microversion.join('.');
      Object.assign(extraHeaders, {
        'OpenStack-API-Version': `compute ${v}`,
        'X-OpenStack-Nova-API-Version': v,
        Vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
      });
    }
    const reply = await route.handle(ctx);
    if (dropResponse) return void req.socket.destroy();
    send(res, reply, extraHeaders, method === 'HEAD');
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (dropResponse) return void req.socket.destroy();
    const retry = e.headers['Retry-After'];
    const headers =
      e.status === 401 && ctx.service === 'keystone'
        ? { 'WWW-Authenticate': wwwAuthenticate(env), ...e.headers }
        : e.headers;
    send(res, { status: e.status, body: errorBody(ctx.service, e.status, e.message, retry), headers }, extraHeaders);
  }
}

/**
 * The challenge of every 401, from Keystone itself and from keystonemiddleware in front of Cinder and Nova:
 * the v3 auth URL (observed on openstack-loopback (Cinder 21/Nova 26): `Keystone uri="http://127.0.0.1:5000/v3"`).
 */
function wwwAuthenticate(env: SimEnv): string {
  return `Keystone uri="${env.baseUrl}/identity/v3"`;
}

/** The endpoint URL a client used, as the catalog gave it (links and next-page hrefs are built on it). */
function endpointOf(env: SimEnv, where: Classified | undefined, ctx: RequestContext): string {
  if (!where) return env.baseUrl;
  const base = `${env.baseUrl}${where.prefix}`;
  if (where.service === 'cinder' && ctx.params.project) return `${base}/v3/${ctx.params.project}`;
  if (where.service === 'nova') return `${base}/v2.1`;
  return base;
}

function send(res: ServerResponse, reply: Reply, extra: Record<string, string>, headOnly = false): void {
  if (res.destroyed) return;
  const headers: Record<string, string> = { ...extra, ...(reply.headers ?? {}) };
  let payload: Buffer | undefined;
  if (reply.body !== undefined && reply.status !== 204) {
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    headers['Content-Type'] = typeof reply.body === 'string' ? 'text/plain; charset=UTF-8' : 'application/json';
    payload = Buffer.from(text, 'utf8');
    headers['Content-Length'] = String(payload.length);
  } else if (reply.status !== 204) {
    headers['Content-Length'] = '0';
  }
  res.writeHead(reply.status, headers);
  res.end(headOnly ? undefined : payload);
}
