import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodedError, Status } from '../../src/errors';
import {
  HttpClient,
  type HttpOptions,
  type RequestEvent,
  type TokenSource,
  buildUserAgent,
  parseRetryAfter,
} from '../../src/openstack/http';
import { abortableSleep } from '../../src/openstack/abort';
import { createTransport } from '../../src/openstack/http-transport';
import { type LocalServer, captureLogger, closedPort, json, makeCertificates, startLocalServer } from './local-server';
import { openStackFailure } from '../helpers/openstack-failure';

const FAST_RETRY = { initialMs: 1, maxDelayMs: 5 };

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function client(extra: HttpOptions = {}): HttpClient {
  return new HttpClient({ retry: FAST_RETRY, ...extra });
}

const failure = openStackFailure;

/** A token source handing out tok-1, tok-2… and recording invalidations. */
function tokens(): TokenSource & { issued: number; invalidated: string[] } {
  const t = {
    issued: 0,
    invalidated: [] as string[],
    current: undefined as string | undefined,
    async token() {
      if (!t.current) t.current = `tok-${++t.issued}`;
      return t.current;
    },
    invalidate(token: string) {
      t.invalidated.push(token);
      if (t.current === token) t.current = undefined;
    },
  };
  return t;
}

describe('HttpClient', () => {
  it('sends the reference User-Agent with --user-agent values prepended, last one first', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, {}));
    await client({ userAgentExtra: ['first/1', 'second/2'], version: '9.9.9' }).request({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: server.url,
    });
    expect(server.seen[0].headers['user-agent']).toBe('second/2 first/1 cinder-csi-plugin/9.9.9');
    expect(buildUserAgent([], '1.0.0')).toBe('cinder-csi-plugin/1.0.0');
  });

  it('retries a GET answered 500 and returns the later success', async () => {
    server = await startLocalServer((_r, res, n) =>
      n < 3 ? json(res, 500, { computeFault: { message: 'boom' } }) : json(res, 200, { ok: true }),
    );
    const res = await client().request<{ ok: boolean }>({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: server.url,
    });
    expect(res.data.ok).toBe(true);
    expect(server.seen).toHaveLength(3);
  });

  it('gives up on a GET after the maximum retries with UNAVAILABLE and the service message', async () => {
    server = await startLocalServer((_r, res) =>
      json(res, 502, { badGateway: { message: 'upstream down' } }, { 'x-openstack-request-id': 'req-abc' }),
    );
    const e = await failure(
      client().request({
        service: 'cinder',
        operation: 'volume.get',
        method: 'GET',
        url: `${server.url}/v3/p/volumes/x?a=b`,
      }),
    );
    expect(server.seen).toHaveLength(4);
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.status).toBe(502);
    expect(e.requestId).toBe('req-abc');
    expect(e.message).toContain('upstream down');
    expect(e.message).toContain('/v3/p/volumes/x');
    expect(e.message).not.toContain('a=b');
  });

  it('never repeats a POST answered 500', async () => {
    server = await startLocalServer((_r, res) => json(res, 500, { computeFault: { message: 'boom' } }));
    const e = await failure(
      client().request({
        service: 'cinder',
        operation: 'volume.create',
        method: 'POST',
        url: server.url,
        body: { volume: {} },
      }),
    );
    expect(server.seen).toHaveLength(1);
    expect(e.code).toBe(Status.UNAVAILABLE);
  });

  it('never repeats a POST whose connection was reset, but retries a GET', async () => {
    server = await startLocalServer((_r, res, n) => (n <= 2 ? res.socket?.destroy() : json(res, 200, {})));
    const e = await failure(
      client().request({ service: 's', operation: 'o', method: 'POST', url: server.url, body: {} }),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/ECONNRESET/);
    expect(server.seen).toHaveLength(1);
    await client().request({ service: 's', operation: 'o', method: 'GET', url: server.url });
    expect(server.seen).toHaveLength(3);
  });

  it('reports a refused connection as UNAVAILABLE after retrying', async () => {
    const port = await closedPort();
    const events: RequestEvent[] = [];
    const e = await failure(
      client({ onRequest: (ev) => events.push(ev) }).request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: `http://127.0.0.1:${port}/`,
      }),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toContain('ECONNREFUSED');
    expect(events.map((ev) => ev.attempt)).toEqual([0, 1, 2, 3]);
    expect(events.every((ev) => ev.status === undefined && ev.error === 'ECONNREFUSED')).toBe(true);
  });

  it('honours Retry-After seconds on a 429, also for a POST', async () => {
    server = await startLocalServer((_r, res, n) =>
      n === 1 ? json(res, 429, { overLimit: { message: 'slow down' } }, { 'Retry-After': '1' }) : json(res, 202, {}),
    );
    const started = Date.now();
    await client().request({ service: 's', operation: 'o', method: 'POST', url: server.url, body: {} });
    const waited = Date.now() - started;
    expect(server.seen).toHaveLength(2);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(3000);
  });

  it('parses Retry-After as seconds or an HTTP-date and caps it', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now, 30_000)).toBe(3000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now, 30_000)).toBe(10_000);
    expect(parseRetryAfter('3600', now, 30_000)).toBe(30_000);
    expect(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now, 30_000)).toBe(0);
    expect(parseRetryAfter('soon', now, 30_000)).toBeUndefined();
  });

  it('backs off exponentially with jitter between GET retries', async () => {
    server = await startLocalServer((_r, res) => json(res, 503, {}));
    const slept: number[] = [];
    const http = new HttpClient({ random: () => 1, sleep: async (ms) => void slept.push(ms) });
    await failure(http.request({ service: 's', operation: 'o', method: 'GET', url: server.url }));
    expect(slept).toEqual([100, 200, 400]);
  });

  it('re-authenticates once after a 401 and repeats the request with the new token', async () => {
    server = await startLocalServer((r, res) =>
      r.headers['x-auth-token'] === 'tok-1' ? json(res, 401, { error: { message: 'expired' } }) : json(res, 202, {}),
    );
    const auth = tokens();
    await client().request({
      service: 'cinder',
      operation: 'volume.create',
      method: 'POST',
      url: server.url,
      body: {},
      auth,
    });
    expect(server.seen.map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-2']);
    expect(auth.invalidated).toEqual(['tok-1']);
  });

  it('stops after one re-authentication when every token is refused', async () => {
    server = await startLocalServer((_r, res) =>
      json(res, 401, { error: { message: 'The request you have made requires authentication.' } }),
    );
    const auth = tokens();
    const e = await failure(
      client().request({ service: 'cinder', operation: 'volume.get', method: 'GET', url: server.url, auth }),
    );
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(e.message).toContain('requires authentication');
    expect(server.seen).toHaveLength(2);
    expect(auth.issued).toBe(2);
    expect(e.message).not.toContain('tok-');
  });

  it('cancels a request the server never answers when the signal fires, as DEADLINE_EXCEEDED, closing its connection', async () => {
    let closed: Promise<void> | undefined;
    server = await startLocalServer((_r, res) => {
      closed = new Promise((resolve) => res.on('close', () => resolve()));
    });
    const started = Date.now();
    const e = await failure(
      client().request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: server.url,
        signal: AbortSignal.timeout(150),
      }),
    );
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(server.seen).toHaveLength(1);
    // The abandoned request does not keep its connection: the server sees it go.
    await closed;
  });

  it('sends nothing for a signal that fired before the request', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, {}));
    const ac = new AbortController();
    ac.abort(new CodedError(Status.CANCELLED, 'gone'));
    const e = await failure(
      client().request({ service: 's', operation: 'o', method: 'GET', url: server.url, signal: ac.signal }),
    );
    expect(e.code).toBe(Status.CANCELLED);
    expect(server.seen).toHaveLength(0);
    // The transport itself refuses too (a caller of its own may not check first).
    const t = createTransport({ headers: {}, tls: {}, env: {} });
    await expect(
      t.send({ method: 'GET', url: server.url, headers: {}, signal: ac.signal, timeoutMs: 1000 }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(server.seen).toHaveLength(0);
  });

  it('answers CANCELLED when the signal reason is a CANCELLED CodedError', async () => {
    server = await startLocalServer(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new CodedError(Status.CANCELLED, 'client went away')), 50);
    const e = await failure(
      client().request({ service: 's', operation: 'o', method: 'GET', url: server.url, signal: ac.signal }),
    );
    expect(e.code).toBe(Status.CANCELLED);
  });

  it('interrupts a Retry-After wait when the deadline passes', async () => {
    server = await startLocalServer((_r, res) => json(res, 503, {}, { 'Retry-After': '20' }));
    const started = Date.now();
    const e = await failure(
      new HttpClient({ sleep: abortableSleep }).request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: server.url,
        signal: AbortSignal.timeout(200),
      }),
    );
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(server.seen).toHaveLength(1);
  });

  it('reports every attempt to the metrics hook and logs the request id but never the token', async () => {
    server = await startLocalServer((_r, res, n) =>
      json(res, n === 1 ? 500 : 200, {}, { 'x-openstack-request-id': `req-${n}` }),
    );
    const { logger, lines } = captureLogger();
    const events: RequestEvent[] = [];
    const auth = tokens();
    await client({ logger, onRequest: (e) => events.push(e) }).request({
      service: 'cinder',
      operation: 'volume.get',
      method: 'GET',
      url: server.url,
      auth,
    });
    expect(
      events.map(({ service, operation, method, status, attempt }) => ({
        service,
        operation,
        method,
        status,
        attempt,
      })),
    ).toEqual([
      { service: 'cinder', operation: 'volume.get', method: 'GET', status: 500, attempt: 0 },
      { service: 'cinder', operation: 'volume.get', method: 'GET', status: 200, attempt: 1 },
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
    const log = lines.join('');
    expect(log).toContain('req-2');
    expect(log).not.toContain('tok-1');
  });
});

describe('HttpClient TLS', () => {
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'os-tls-'));
    certs = await makeCertificates(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('rejects a server certificate from an unknown CA', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, {}), certs);
    const e = await failure(client().request({ service: 's', operation: 'o', method: 'GET', url: server.url }));
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/CERT|certificate/i);
  });

  it('trusts a server certificate signed by the CA in ca-file', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, { ok: 1 }), certs);
    const res = await client({ caFile: certs.caFile }).request<{ ok: number }>({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: server.url,
    });
    expect(res.data.ok).toBe(1);
  });

  it('skips verification with tls-insecure', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, {}), certs);
    await expect(
      client({ tlsInsecure: true }).request({ service: 's', operation: 'o', method: 'GET', url: server.url }),
    ).resolves.toMatchObject({ status: 200 });
  });
});

describe('HttpClient transport', () => {
  const PROXY_ENV = [
    'http_proxy',
    'HTTP_PROXY',
    'https_proxy',
    'HTTPS_PROXY',
    'all_proxy',
    'ALL_PROXY',
    'no_proxy',
    'NO_PROXY',
  ];
  let saved: Record<string, string | undefined>;
  let proxy: LocalServer | undefined;
  beforeEach(() => {
    saved = Object.fromEntries(PROXY_ENV.map((k) => [k, process.env[k]]));
    for (const k of PROXY_ENV) delete process.env[k];
  });
  afterEach(async () => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    await proxy?.close();
    proxy = undefined;
  });

  /** A forward proxy: answers what it was asked for (absolute-form request target) itself, and records it. */
  async function startProxy(): Promise<LocalServer> {
    return startLocalServer((r, res) => json(res, 200, { via: 'proxy', target: r.url }));
  }

  it('bounds one attempt by the timeout and retries a GET, then reports UNAVAILABLE naming ETIMEDOUT', async () => {
    server = await startLocalServer(() => undefined);
    const e = await failure(
      client({ timeoutMs: 100, retry: { ...FAST_RETRY, maxRetries: 1 } }).request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: server.url,
      }),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/ETIMEDOUT/);
    expect(server.seen).toHaveLength(2);
  });

  it('reports an answer cut off mid-body as ECONNRESET and retries the GET', async () => {
    server = await startLocalServer((_r, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '1000' });
      res.write('{"volumes": [');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const e = await failure(
      client({ retry: { ...FAST_RETRY, maxRetries: 1 } }).request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: server.url,
      }),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/ECONNRESET/);
    expect(server.seen).toHaveLength(2);
  });

  it('encodes params into the query, sends the body as JSON and keeps a non-JSON answer as text', async () => {
    server = await startLocalServer((_r, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    const e = await failure(
      client({ retry: { maxRetries: 0 } }).request({
        service: 's',
        operation: 'o',
        method: 'POST',
        url: `${server.url}/v/x?a=1`,
        params: { name: 'pvc a&b', limit: 5, skip: undefined },
        body: { v: { size: 1 } },
      }),
    );
    expect(server.seen[0].url).toBe('/v/x?a=1&name=pvc+a%26b&limit=5');
    expect(JSON.parse(server.seen[0].body)).toEqual({ v: { size: 1 } });
    expect(server.seen[0].headers['content-type']).toBe('application/json');
    expect(e.message).toContain('bad gateway');
  });

  it('goes through the proxy HTTP_PROXY names, and straight to the service when proxy is false', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, { via: 'direct' }));
    proxy = await startProxy();
    process.env.HTTP_PROXY = proxy.url;
    const through = await client().request<{ via: string; target: string }>({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: `${server.url}/v3/volumes`,
      params: { limit: 1 },
    });
    expect(through.data).toEqual({ via: 'proxy', target: `${server.url}/v3/volumes?limit=1` });
    const direct = await client({ proxy: false }).request<{ via: string }>({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: `${server.url}/v3/volumes`,
    });
    expect(direct.data.via).toBe('direct');
    expect(server.seen).toHaveLength(1);
  });

  it('honours NO_PROXY for the service host when a proxy is set', async () => {
    server = await startLocalServer((_r, res) => json(res, 200, { via: 'direct' }));
    proxy = await startProxy();
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '127.0.0.1';
    const res = await client().request<{ via: string }>({
      service: 's',
      operation: 'o',
      method: 'GET',
      url: server.url,
    });
    expect(res.data.via).toBe('direct');
    expect(proxy.seen).toHaveLength(0);
  });

  it('reports a proxy that does not answer in time as ETIMEDOUT, like the direct path', async () => {
    proxy = await startLocalServer(() => undefined);
    process.env.HTTP_PROXY = proxy.url;
    const e = await failure(
      client({ timeoutMs: 100, retry: { maxRetries: 0 } }).request({
        service: 's',
        operation: 'o',
        method: 'GET',
        url: 'http://192.0.2.1/v3',
      }),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/ETIMEDOUT/);
  });
});
