/**
 * The `--http-endpoint` listener: `/metrics` (Prometheus text) and `/healthz` on node:http. Health is what the
 * caller says about the CSI server (serving or not); it never calls the cloud, so a slow Keystone cannot make
 * kubelet restart the plugin. Starting and stopping it is main.ts's job.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../config/flags';
import type { Logger } from '../log';
import { silentLogger } from '../log';

/** How long stop() lets an in-progress scrape finish before closing its connection, ms. */
export const METRICS_STOP_GRACE_MS = 2_000;

export interface MetricsHttpOptions {
  /** `--http-endpoint`: `:9809` (all interfaces) or `host:port`; port 0 picks a free one. */
  endpoint: string;
  /** The Prometheus text and its content type. */
  metrics: { text(): Promise<string>; readonly contentType: string };
  /** True while the CSI server is serving; /healthz answers 503 otherwise. */
  isServing: () => boolean | Promise<boolean>;
  log?: Logger;
}

export interface MetricsHttpServer {
  /** `http://host:port` actually bound. */
  readonly url: string;
  /** Stops listening; an in-progress scrape gets METRICS_STOP_GRACE_MS. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/** Parses `--http-endpoint` (`:9809`, `0.0.0.0:9809`, `[::1]:9809`). Throws UsageError naming the flag. */
export function parseHttpEndpoint(endpoint: string): { host?: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]*):(\d{1,5})$/.exec(endpoint);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`flag --http-endpoint: "${endpoint}" is not host:port or :port`);
  const host = m[1].replace(/^\[|\]$/g, '');
  return { host: host || undefined, port: Number(m[2]) };
}

/** Binds the endpoint and serves until stop(). Rejects when the address cannot be bound. */
export async function startMetricsServer(opts: MetricsHttpOptions): Promise<MetricsHttpServer> {
  const { host, port } = parseHttpEndpoint(opts.endpoint);
  const log = (opts.log ?? silentLogger).child({ component: 'metrics-http' });
  const server = createServer((req, res) => {
    void route(opts, req, res).catch((e: unknown) => {
      log.warn({ err: e, path: req.url }, 'metrics endpoint request failed');
      if (!res.headersSent) reply(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  log.info({ url }, 'metrics endpoint listening');
  let stopped: Promise<void> | undefined;
  return {
    url,
    stop: () => (stopped ??= closeServer(server)),
  };
}

async function route(opts: MetricsHttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'method not allowed\n');
  if (path === '/metrics') return reply(res, 200, opts.metrics.contentType, await opts.metrics.text());
  if (path === '/healthz') {
    const serving = await opts.isServing();
    return serving ? reply(res, 200, 'text/plain', 'ok') : reply(res, 503, 'text/plain', 'CSI server is not serving');
  }
  reply(res, 404, 'text/plain', 'not found: try /metrics or /healthz\n');
}

function reply(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function closeServer(server: Server): Promise<void> {
  const timer = setTimeout(() => server.closeAllConnections(), METRICS_STOP_GRACE_MS);
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearTimeout(timer);
}
