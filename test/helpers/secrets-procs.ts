/**
 * Real processes for the reliability suites: the plugin (all three services) and the FUSE supervisor run
 * from source as children with their output in files, an s3rver child that also accepts a key pair of
 * the test's choosing, and the probes that look for a credential wherever it could leak (process argv
 * and environment, files under a directory tree).
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { callUnary, makeClient } from '../../src/csi/proto';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { spawnTs, waitUntil, type Proc } from './fuse-procs';

const ROOT = join(__dirname, '..', '..');
/** Transpiling the whole plugin on load takes several seconds on two busy cores. */
const PLUGIN_START_MS = 60_000;
/** Files above this are skipped by the content scan: see filesContaining. */
export const MAX_SCANNED_FILE_BYTES = 16 * 1024 * 1024;

export interface PluginProc extends Proc {
  socket: string;
  logFile: string;
  /** Every line the process wrote so far (stdout and stderr). */
  log(): string;
  /** True while the process has not exited. */
  alive(): boolean;
}

/** Starts the plugin with `args` (which must include `--endpoint unix://<socket>`) and waits until Probe answers. */
export async function startPluginProcess(socket: string, args: string[], logFile: string): Promise<PluginProc> {
  const p = spawnTs('secrets-plugin-child.ts', args, logFile);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const alive = () => p.proc.exitCode === null && p.proc.signalCode === null;
  const client = makeClient('Identity', `unix://${socket}`);
  try {
    await waitUntil(
      'plugin Probe',
      async () => {
        if (!alive()) throw new Error(`plugin exited: ${log().slice(-1500)}`);
        if (!existsSync(socket)) return undefined;
        return callUnary(client, 'Probe', {}, { deadline: Date.now() + 2_000 }).then(
          () => true,
          () => undefined,
        );
      },
      PLUGIN_START_MS,
    );
  } finally {
    client.close();
  }
  return { ...p, socket, logFile, log, alive };
}

export interface SupervisorChild extends Proc {
  client: SupervisorClient;
  log(): string;
}

/** The `fuse-supervisor` subcommand (from source, through the same child script) at log level `level`. */
export async function startSupervisorChild(o: {
  socket: string;
  stateDir: string;
  kubeletDir: string;
  logFile: string;
  level?: string;
}): Promise<SupervisorChild> {
  const args = [
    'fuse-supervisor',
    '--socket',
    o.socket,
    '--state-dir',
    o.stateDir,
    '--kubelet-dir',
    o.kubeletDir,
    '--log-level',
    o.level ?? 'debug',
  ];
  const p = spawnTs('secrets-plugin-child.ts', args, o.logFile);
  const client = new SupervisorClient(o.socket, 5_000);
  const log = () => (existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8') : '');
  await waitUntil(
    'supervisor socket',
    async () => {
      if (p.proc.exitCode !== null) throw new Error(`supervisor exited: ${log().slice(-800)}`);
      if (!existsSync(o.socket)) return undefined;
      return client.list().then(
        () => true,
        () => undefined,
      );
    },
    PLUGIN_START_MS,
  );
  return { ...p, client, log };
}

/**
 * s3rver in its own process that accepts `accessKey`/`secretKey` besides its built-in pair: s3rver keeps
 * key pairs in a registry on its account model, so the child adds one before it starts listening.
 */
export async function startS3rverWithKeys(
  dir: string,
  accessKey: string,
  secretKey: string,
): Promise<Proc & { endpoint: string }> {
  const script = `const S3rver = require('s3rver');
require('s3rver/lib/models/account').DUMMY_ACCOUNT.createKeyPair(process.env.AK, process.env.SK);
new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)}, vhostBuckets: false })
  .run().then((a) => process.stdout.write('port:' + a.port + '\\n'));`;
  // The keys travel in this child's environment, not its argv, so the ps probes never see them there.
  const proc = spawn(process.execPath, ['-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AK: accessKey, SK: secretKey },
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const port = await waitUntil('s3rver port', () => /port:(\d+)/.exec(out)?.[1]);
  return {
    proc,
    pid: proc.pid!,
    exited,
    endpoint: `http://127.0.0.1:${port}`,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** `ps -eo pid,args` of every process, as one text (the view any user of the node has). */
export function psArgs(): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ps', ['-eo', 'pid,args', '--no-headers', '-ww'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += String(d)));
    p.once('error', reject);
    p.once('exit', () => resolve(out));
  });
}

/** The environment of a process as `KEY=value` lines, or '' once it is gone. */
export function environOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').join('\n');
  } catch {
    return '';
  }
}

/** Every regular file under `dir` (not following symlinks, not crossing into `skip` paths). */
export function filesUnder(dir: string, skip: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // vanished, or a dead FUSE mount
    }
    for (const n of names) {
      const p = join(d, n);
      if (skip(p)) continue;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The files under `dir` (up to MAX_SCANNED_FILE_BYTES each) whose content holds any of `needles`, with the needle found. */
export function filesContaining(
  dir: string,
  needles: readonly string[],
  skip?: (path: string) => boolean,
): Array<{ path: string; needle: string }> {
  const hits: Array<{ path: string; needle: string }> = [];
  for (const p of filesUnder(dir, skip)) {
    let text: string;
    try {
      // Disk images (loop-device backing files, sparse and gigabytes large) hold volume data, not ours.
      if (statSync(p).size > MAX_SCANNED_FILE_BYTES) continue;
      text = readFileSync(p, 'latin1');
    } catch {
      continue;
    }
    for (const n of needles) if (text.includes(n)) hits.push({ path: p, needle: n });
  }
  return hits;
}
