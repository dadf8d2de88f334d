/**
 * Test harness: a real node:http(s) server on 127.0.0.1 with a scripted handler and a request log, a pino
 * sink, and a throwaway CA + server certificate made with openssl (for the TLS tests).
 */
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { execFile } from '../../src/mount/exec';
import { type Logger, createLogger } from '../../src/log';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: SeenRequest, res: http.ServerResponse, n: number) => void;

export interface LocalServer {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startLocalServer(handler: Handler, tls?: { cert: Buffer; key: Buffer }): Promise<LocalServer> {
  const seen: SeenRequest[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(r);
      handler(r, res, seen.length);
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A debug logger whose lines are collected as raw JSON text. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination: sink }), lines };
}

/** A CA and a server certificate for 127.0.0.1/localhost signed by it, written into `dir`. */
export async function makeCertificates(dir: string): Promise<{ caFile: string; cert: Buffer; key: Buffer }> {
  const p = (f: string) => join(dir, f);
  await execFile('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
  ]);
  await execFile('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
  ]);
  await writeFile(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await execFile('openssl', [
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    p('server.pem'),
    '-extfile',
    p('san.ext'),
  ]);
  return { caFile: p('ca.pem'), cert: await readFile(p('server.pem')), key: await readFile(p('server.key')) };
}
