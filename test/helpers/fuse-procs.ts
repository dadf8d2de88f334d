/**
 * Separate processes for the FUSE tests: s3rver (out of the jest process, so a FUSE call blocked in a test
 * can never starve the server it waits for), the FUSE supervisor and a node plugin, the last two running our
 * TypeScript through a small transpile-on-load hook (no ts-node here). Logs go to files the tests can read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { TS_HOOK } from './ts-hook';

const ROOT = join(__dirname, '..', '..');
/** Loading typescript and transpiling the imports takes a few seconds on 2 cores. */
const START_WAIT_MS = 30_000;

export interface Proc {
  proc: ChildProcess;
  pid: number;
  exited: Promise<void>;
  /** SIGKILLs the process and waits for it. */
  kill(): Promise<void>;
}

function track(proc: ChildProcess): Proc {
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    pid: proc.pid!,
    exited,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = START_WAIT_MS,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a test helper script (TypeScript) with `argv`, stdout+stderr appended to `logFile`; `prefix` e.g. unshare. */
export function spawnTs(script: string, argv: string[], logFile: string, prefix: string[] = []): Proc {
  const fd = openSync(logFile, 'a', 0o600);
  const cmd = [...prefix, process.execPath, '-e', TS_HOOK, join(__dirname, script), ...argv];
  const proc = spawn(cmd[0], cmd.slice(1), { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return track(proc);
}

/**
 * s3rver in its own process on `address` (127.0.0.1; kube-loopback's pod bridge where pods must reach it), data in
 * `dir`. Creates `buckets` (s3rver accepts unsigned requests).
 */
export async function startS3rverProcess(
  dir: string,
  buckets: string[],
  address = '127.0.0.1',
): Promise<Proc & { endpoint: string }> {
  const script = `const S3rver = require('s3rver');
new S3rver({ address: ${JSON.stringify(address)}, port: 0, silent: true, directory: ${JSON.stringify(dir)}, vhostBuckets: false })
  .run().then((a) => process.stdout.write('port:' + a.port + '\\n'));`;
  const proc = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  const p = track(proc);
  const port = await until('s3rver port', () => /port:(\d+)/.exec(out)?.[1]);
  const endpoint = `http://${address}:${port}`;
  for (const b of buckets) await fetch(`${endpoint}/${b}`, { method: 'PUT' });
  return { ...p, endpoint };
}

/** Writes one object without signing (s3rver allows it); used for prefix markers and fixtures. */
export async function putObject(endpoint: string, bucket: string, key: string, body: string): Promise<void> {
  const res = await fetch(`${endpoint}/${bucket}/${key}`, { method: 'PUT', body });
  if (!res.ok) throw new Error(`PUT ${bucket}/${key}: ${res.status}`);
}

/** Reads one object, or undefined on 404. */
export async function getObject(endpoint: string, bucket: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${endpoint}/${bucket}/${key}`);
  return res.status === 404 ? undefined : res.text();
}

/** A supervisor process and a client for its socket. */
export interface SupervisorProc extends Proc {
  client: SupervisorClient;
}

/** Starts `cinder-csi-plugin fuse-supervisor` (from source) and waits until it answers `list`. */
export async function startSupervisorProcess(o: {
  socket: string;
  stateDir: string;
  kubeletDir: string;
  logFile: string;
}): Promise<SupervisorProc> {
  const p = spawnTs(
    'fuse-supervisor-child.ts',
    ['--socket', o.socket, '--state-dir', o.stateDir, '--kubelet-dir', o.kubeletDir],
    o.logFile,
  );
  const client = new SupervisorClient(o.socket, 5_000);
  await until('supervisor socket', async () => {
    if (p.proc.exitCode !== null) throw new Error(`supervisor exited: ${readFileSync(o.logFile, 'utf8').slice(-500)}`);
    if (!existsSync(o.socket)) return undefined;
    return client.list().then(
      () => true,
      () => undefined,
    );
  });
  return { ...p, client };
}

/** Pids of every process whose command line mentions `needle` (FUSE daemons of a test dir). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Waits until `check` returns a value (polling every 50 ms), up to `ms`. */
export const waitUntil = until;
