/**
 * The real plugin (src/cli.ts main) as a child process on a unix socket, with a gRPC client for one CSI
 * service, for tests that SIGKILL the driver and start it again; and a /proc scan to see which external
 * command the driver is running, so a test can kill it in the middle of that command.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callUnary, makeClient, type CsiClient, type CsiServiceName } from '../../src/csi/proto';
import { startTsChild, type TsChild } from './node-crash';

const CHILD = join(__dirname, 'crash-plugin-child.ts');
/** Starting takes a few seconds on a busy 2-core machine (longer on the first run, before the transpile cache). */
const START_LIMIT_MS = 60_000;
const POLL_MS = 10;

export interface PluginProcess {
  child: TsChild;

  call<T = any>(rpc: string, req: object, deadlineMs?: number): Promise<T>;
  /** SIGKILL, no drain, as an OOM kill or a node losing power; `group` also kills the commands it runs. */
  kill(opts?: { group?: boolean }): Promise<void>;
}

/** Starts the plugin with `flags` (plus --endpoint) and resolves once Identity.Probe answers on `socket`. */
export async function startPluginProcess(
  socket: string,
  flags: string[],
  service: CsiServiceName,
): Promise<PluginProcess> {
  const child = startTsChild(CHILD, [JSON.stringify([`--endpoint=unix://${socket}`, ...flags])]);
  const main = makeClient(service, `unix://${socket}`);
  const end = Date.now() + START_LIMIT_MS;
  // Ready once Probe answers: the killed plugin's stale socket file refuses connections until replaced.
  for (;;) {
    if (child.proc.exitCode !== null) {
      main.close();
      throw new Error(`plugin exited during start: ${child.output()}`);
    }
    const probe: CsiClient = makeClient('Identity', `unix://${socket}`);
    const ok = await callUnary(probe, 'Probe', {}, { deadline: Date.now() + 500 }).then(
      () => true,
      () => false,
    );
    probe.close();
    if (ok) break;
    if (Date.now() > end) {
      await child.kill();
      main.close();
      throw new Error(`plugin did not serve within ${START_LIMIT_MS} ms: ${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    call: (rpc, req, deadlineMs = 60_000) => callUnary(main, rpc, req, { deadline: Date.now() + deadlineMs }),
    async kill(opts) {
      await child.kill(opts);
      main.close();
    },
  };
}

/** Pids and argv of the running processes whose argv matches `match`. */
export async function findProcesses(
  match: (argv: string[]) => boolean,
): Promise<Array<{ pid: number; argv: string[] }>> {
  const found: Array<{ pid: number; argv: string[] }> = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const raw = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const argv = raw.split('\0').filter(Boolean);
    if (argv.length > 0 && match(argv)) found.push({ pid: Number(name), argv });
  }
  return found;
}

/** Whether a process is still there (and not a zombie). */
export async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 3 is the state; the command name in field 2 is parenthesized and may hold spaces.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat !== '' && state !== 'Z';
}

/** Polls `check` every few ms until it is true; throws after `limitMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
