/**
 * What the scale and node benchmarks share: the real `bin/cinder-csi-plugin` as a child process, its memory
 * and CPU read from /proc, a fresh-channel Probe loop, and the small statistics the tables print.
 * Neither bench measures in its own process what belongs to the plugin's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { callUnary, loadCsiProto, type CsiClient } from '../src/csi/proto';

/** The repository root from dist/bench (built) or bench/ (ts-node style runs). */
export const REPO_ROOT = [join(__dirname, '..', '..'), join(__dirname, '..')].find((d) =>
  existsSync(join(d, 'bin', 'cinder-csi-plugin')),
)!;
const CLI = join(REPO_ROOT, 'bin', 'cinder-csi-plugin');
/** Kernel clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every Linux this runs on). */
const CLK_TCK = 100;

export interface PluginProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Wall ms from spawn() to now, on the same clock as `spawnedAt`. */
  readonly spawnedAt: bigint;
  /** stderr collected so far (the plugin logs there at warn and above). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The node flags the image runs the plugin with: those between "node" and the launcher in the Dockerfile's
 * ENTRYPOINT, so the benches measure the process as deployed.
 */
export function imageNodeFlags(): string[] {
  const line = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').match(/^ENTRYPOINT (\[.*\])$/m);
  if (!line) throw new Error('Dockerfile has no exec-form ENTRYPOINT');
  return flagsOf(JSON.parse(line[1]) as string[]);
}

/**
 * The node flags of the node DaemonSet's plugin container: its `command` when the manifest overrides the
 * ENTRYPOINT (it adds --no-opt), else the image's.
 */
export function nodePluginNodeFlags(): string[] {
  const file = join(REPO_ROOT, 'manifests', 'cinder-csi-plugin', 'cinder-csi-nodeplugin.yaml');
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map(
    (d) =>
      d.toJS() as {
        kind?: string;
        spec?: { template?: { spec?: { containers?: Array<{ name: string; command?: unknown }> } } };
      },
  );
  const daemonSet = docs.find((d) => d?.kind === 'DaemonSet');
  const container = daemonSet?.spec?.template?.spec?.containers?.find(
    (c: { name: string }) => c.name === 'cinder-csi-plugin',
  );
  if (!container) throw new Error(`${file}: no DaemonSet container cinder-csi-plugin`);
  return Array.isArray(container.command) ? flagsOf(container.command as string[]) : imageNodeFlags();
}

/** `["node", ...flags, "/app/bin/cinder-csi-plugin"]` to the flags. */
function flagsOf(argv: readonly string[]): string[] {
  if (argv[0] !== 'node' || !argv[argv.length - 1]?.endsWith('/bin/cinder-csi-plugin'))
    throw new Error(`not "node <flags> <launcher>": ${JSON.stringify(argv)}`);
  return argv.slice(1, -1);
}

/**
 * Starts `node <flags> bin/cinder-csi-plugin <args>` (the built CLI; run `npm run build` first); flags default
 * to the image's. BENCH_NODE_ARGS (space-separated, e.g. `--trace-gc` or `--cpu-prof`) is added for diagnosis;
 * the plugin's stdout then goes to ours.
 */
export function spawnPlugin(args: readonly string[], nodeFlags: readonly string[] = imageNodeFlags()): PluginProcess {
  const spawnedAt = process.hrtime.bigint();
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const nodeArgs = [...nodeFlags, ...extra];
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], {
    stdio: ['ignore', extra.length ? 'inherit' : 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (err.length < 64 * 1024) err += b.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    pid: child.pid!,
    spawnedAt,
    stderr: () => err,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * VmRSS and VmHWM (peak RSS) of a live process, in MiB, and VmRSS split into anonymous memory (heaps, stacks)
 * and file pages (the node binary and libraries as far as they were touched).
 */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return {
    rssMiB: kb('VmRSS') / 1024,
    hwmMiB: kb('VmHWM') / 1024,
    anonMiB: kb('RssAnon') / 1024,
    fileMiB: kb('RssFile') / 1024,
  };
}

/** CPU time (user + system) a live process has used so far, ms. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/**
 * A client on its own subchannel: grpc-js shares subchannels per address across channels, and one that
 * failed to connect waits out a reconnect backoff (1 s first) that a new channel would otherwise inherit.
 */
export function freshClient(kind: 'Identity' | 'Controller' | 'Node', endpoint: string): CsiClient {
  return new (loadCsiProto().csi[kind])(endpoint, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
}

/**
 * Polls Probe until it answers ready, each try on a fresh channel, as fast as the socket allows: waits for
 * the socket file with a 1 ms stat loop (cheap for the two cores the plugin shares), then retries every 1 ms.
 * Resolves with the ms from spawn to the answer. Rejects after `limitMs` or if the process exits.
 */
export async function probeUntilReady(p: PluginProcess, socketPath: string, limitMs = 30_000): Promise<number> {
  const endpoint = `unix://${socketPath}`;
  const deadline = Date.now() + limitMs;
  const pause = () => new Promise((r) => setTimeout(r, 1));
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`plugin exited (${p.child.exitCode}): ${p.stderr().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`no Probe answer within ${limitMs} ms: ${p.stderr().slice(-2000)}`);
    if (!existsSync(socketPath)) {
      await pause();
      continue;
    }
    const client = freshClient('Identity', endpoint);
    try {
      const res = await callUnary<{ ready: { value: boolean } | null }>(
        client,
        'Probe',
        {},
        { deadline: Date.now() + 1000 },
      );
      // A Probe that answers "not ready" is an answer, but not the one kubelet's liveness waits for.
      if (res.ready === null || res.ready.value) return Number(process.hrtime.bigint() - p.spawnedAt) / 1e6;
    } catch {
      // Socket bound but not yet served: try again.
    } finally {
      client.close();
    }
    await pause();
  }
}

/** The q-quantile (0..1) of `values` by the nearest-rank method; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (values: readonly number[]) => quantile(values, 0.5);

export const pad = (s: string | number, n: number) => String(s).padEnd(n);
