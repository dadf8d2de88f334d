/**
 * A real local S3 server for the demo and the tests: s3rver (an npm devDependency: Koa + filesystem store)
 * in-process on 127.0.0.1 with an ephemeral port and a fresh temp dir per instance. s3rver checks SigV4
 * signatures against its one key pair. Not for production: it is here so one machine can play the cloud.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** s3rver's fixed credentials (it accepts only this pair). */
export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET_KEY = 'S3RVER';

/** A running s3rver: `endpoint` is `http://127.0.0.1:<port>`, path-style, any region. */
export interface S3TestServer {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  /** The temp dir holding the server's buckets (removed by stop()). */
  directory: string;
  /** The server's own process, when it runs in one (startS3ServerProcess). */
  pid?: number;
  /** Closes the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** The part of s3rver's (untyped) API this helper uses. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

interface FilesystemStoreProto {
  deleteObject(bucket: string, key: string): Promise<void>;
  __cinderCsiPatched?: boolean;
}

/**
 * s3rver 3.7.1's FilesystemStore.deleteObject removes emptied parent directories with a readdirSync that
 * throws ENOENT when a concurrent delete (one multi-object DELETE runs them in parallel) removed the
 * directory first, answering 500. Treat that as done: the object itself is gone.
 */
function patchDeleteRace(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const proto = (require('s3rver/lib/stores/filesystem') as { prototype: FilesystemStoreProto }).prototype;
  if (proto.__cinderCsiPatched) return;
  const original = proto.deleteObject;
  proto.deleteObject = async function (this: unknown, bucket: string, key: string) {
    try {
      await original.call(this, bucket, key);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
  };
  proto.__cinderCsiPatched = true;
}

/** Starts s3rver on 127.0.0.1:0 in a new temp dir. */
export async function startS3Server(): Promise<S3TestServer> {
  // s3rver ships no type declarations; the cast names the two methods we call.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver') as S3rverCtor;
  patchDeleteRace();
  const directory = mkdtempSync(join(tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Path-style only: virtual-host parsing would treat '127.0.0.1' labels as bucket names.
    vhostBuckets: false,
  });
  const address = await server.run();
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    accessKey: S3RVER_ACCESS_KEY,
    secretKey: S3RVER_SECRET_KEY,
    directory,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Keep-alive sockets from SDK agents would hold close() open; drop them.
      server.httpServer?.closeAllConnections?.();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** How long a stopping server process may take before it is killed. */
const STOP_GRACE_MS = 5_000;

/**
 * s3rver in a process of its own. Whoever reads or writes a FUSE mount of it must not share an event loop or a
 * libuv thread pool with it: s3rver does some of its file I/O synchronously and the rest on the pool, so a
 * FUSE call blocked in the caller (the demo's pods, the bench's reads) can starve the very server s3fs waits
 * on, and s3fs then sits out its read/write timeout and retries (minutes). Run from dist/ (the demo, benches).
 */
export async function startS3ServerProcess(): Promise<S3TestServer> {
  const child = fork(join(__dirname, 'local-s3-server.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = await new Promise<{ endpoint: string; directory: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { endpoint: string; directory: string }));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`the local S3 server exited (${code ?? signal}) before it listened: ${stderr.trim()}`)),
    );
  });
  let stopping: Promise<void> | undefined;
  return {
    ...started,
    accessKey: S3RVER_ACCESS_KEY,
    secretKey: S3RVER_SECRET_KEY,
    pid: child.pid,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (child.connected) child.send('stop');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
        rmSync(started.directory, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
