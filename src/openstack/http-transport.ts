/**
 * Sends one HTTP request and reads the whole answer: no retries, auth or classification (http.ts does those).
 * Two implementations of the one job. Without a proxy in the environment, node:http directly: axios costs ~20 %
 * of the controller's CPU per OpenStack call and ~7 MiB of RSS in the node plugin (docs/benchmarks.md). With
 * HTTP(S)_PROXY / ALL_PROXY set, axios, which implements proxying, CONNECT tunnels and NO_PROXY as operators
 * expect from the environment.
 */
import type { AxiosInstance, AxiosRequestConfig } from 'axios';
import http from 'node:http';
import https from 'node:https';

export interface TransportRequest {
  method: string;
  url: string;
  params?: Record<string, string | number | boolean | undefined>;
  headers: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  /** Bound on the whole attempt: connect, send, answer. */
  timeoutMs: number;
}

export interface TransportResponse {
  status: number;
  /** Lower-case names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON when the body is JSON, else the text ('' for none). */
  data: unknown;
}

export interface HttpTransport {
  /** Resolves with any status; rejects only when no answer came (errno-style `code`, ETIMEDOUT for the bound). */
  send(req: TransportRequest): Promise<TransportResponse>;
}

export interface TransportOptions {
  /** false: never use a proxy, whatever the environment says (the metadata service is link-local). */
  proxy?: false;
  /** Headers every request carries (User-Agent, Accept); a request's own headers win. */
  headers: Record<string, string>;
  tls: https.AgentOptions;
  env?: NodeJS.ProcessEnv;
}

/** The environment variables axios' proxy-from-env reads; any of them set means "go through a proxy". */
const PROXY_VARIABLES = [
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'npm_config_http_proxy',
  'npm_config_https_proxy',
  'npm_config_proxy',
];

/** Whether the environment names a proxy (checked once per client: the environment does not change at run time). */
export function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return PROXY_VARIABLES.some((v) => !!(env[v] || env[v.toUpperCase()]));
}

export function createTransport(o: TransportOptions): HttpTransport {
  return o.proxy !== false && proxyConfigured(o.env) ? new ProxyTransport(o) : new DirectTransport(o);
}

/**
 * Loads what the transport will need before the first request, so the first CreateVolume does not pay for it:
 * axios only when a proxy is configured (node:http is loaded with this module).
 */
export async function preloadTransport(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (proxyConfigured(env)) await import('axios');
}

/** Text to JSON when it parses, the text otherwise (an HTML error page from a load balancer). */
function parseBody(text: string): unknown {
  if (text === '') return '';
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** What node:http rejects with when a request's signal fires: the callers look at the signal, not at this. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('the request was aborted', { cause: signal.reason }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

/** Connections kept open between requests, for plain HTTP and for TLS with the cloud's CA and client certificate. */
function keepAliveAgents(tls: https.AgentOptions): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  return { httpAgent: new http.Agent({ keepAlive: true }), httpsAgent: new https.Agent({ keepAlive: true, ...tls }) };
}

class DirectTransport implements HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly o: TransportOptions) {
    ({ httpAgent: this.httpAgent, httpsAgent: this.httpsAgent } = keepAliveAgents(o.tls));
  }

  send(r: TransportRequest): Promise<TransportResponse> {
    const url = new URL(r.url);
    for (const [k, v] of Object.entries(r.params ?? {})) if (v !== undefined) url.searchParams.append(k, String(v));
    const body = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
    const headers: Record<string, string> = { ...this.o.headers, ...r.headers };
    if (body) headers['Content-Length'] = String(body.length);
    const secure = url.protocol === 'https:';
    const signal = r.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      const finish = (e: Error | undefined, res?: TransportResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (e) reject(e);
        else resolve(res!);
      };
      // One listener of our own rather than node:http's `signal` option, which hooks a stream-end watcher
      // (half a dozen listeners) onto every request: ~4 % of the controller's CPU in a burst of attaches.
      const onAbort = () => req.destroy(abortError(signal!));
      const req = (secure ? https : http).request(
        url,
        { method: r.method, headers, agent: secure ? this.httpsAgent : this.httpAgent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            finish(undefined, {
              status: res.statusCode ?? 0,
              headers: res.headers,
              data: parseBody(Buffer.concat(chunks).toString('utf8')),
            }),
          );
          res.on('error', (e) => finish(e));
          // Closed before 'end': the connection dropped mid-answer (after 'end', finish has already settled).
          res.on('close', () => {
            if (!res.complete) finish(Object.assign(new Error('the answer was cut off'), { code: 'ECONNRESET' }));
          });
        },
      );
      const timer = setTimeout(
        () => req.destroy(Object.assign(new Error(`no answer within ${r.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
        r.timeoutMs,
      );
      req.on('error', (e) => finish(e));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
  }
}

class ProxyTransport implements HttpTransport {
  private axios?: Promise<AxiosInstance>;
  private readonly config: AxiosRequestConfig;

  constructor(o: TransportOptions) {
    this.config = {
      ...keepAliveAgents(o.tls),
      // Every status comes back as a response; classification and retries are http.ts's.
      validateStatus: () => true,
      maxRedirects: 0,
      headers: { ...o.headers },
    };
  }

  async send(r: TransportRequest): Promise<TransportResponse> {
    this.axios ??= import('axios').then((m) => m.default.create(this.config));
    try {
      const res = await (
        await this.axios
      ).request({
        method: r.method,
        url: r.url,
        params: r.params,
        headers: r.headers,
        data: r.body,
        signal: r.signal,
        timeout: r.timeoutMs,
      });
      return { status: res.status, headers: res.headers as TransportResponse['headers'], data: res.data };
    } catch (e) {
      throw withErrno(e);
    }
  }
}

/** axios reports its own timeout as ECONNABORTED "timeout of N ms exceeded": the same ETIMEDOUT as the direct path. */
function withErrno(e: unknown): unknown {
  const x = e as { code?: unknown; message?: unknown };
  if (x?.code === 'ECONNABORTED' && typeof x.message === 'string' && x.message.includes('timeout'))
    x.code = 'ETIMEDOUT';
  return e;
}
