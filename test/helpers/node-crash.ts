/**
 * Runs TypeScript test children in separate Node processes (transpiled on load by a tiny require hook, as
 * no ts-node is installed) and lets a test wait for a line one prints, then SIGKILL it: alone, or with its
 * whole process group (the children it spawned), as when a container dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TS_HOOK } from './ts-hook';

const STAGE_CHILD = join(__dirname, 'node-crash-child.ts');
/** Loading typescript and transpiling the imports takes a second or two. */
const LINE_WAIT_MS = 30_000;

export interface TsChild {
  proc: ChildProcess;
  /** Resolves with the first output line starting with one of `prefixes`. */
  waitForLine(...prefixes: string[]): Promise<string>;
  /** Everything printed so far (stdout, then stderr). */
  output(): string;
  /** SIGKILLs the child (with `group`, its whole process group) and waits for it to be gone. */
  kill(opts?: { group?: boolean }): Promise<void>;
  /** Resolves when the child has exited. */
  exited: Promise<void>;
}

/**
 * Starts `script` (a .ts file) with `args` in a new process group, so a group kill reaches what it spawned
 * and nothing of the test runner's.
 */
export function startTsChild(script: string, args: string[]): TsChild {
  const proc = spawn(process.execPath, ['-e', TS_HOOK, script, ...args], {
    cwd: join(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (err += String(d)));
  return {
    proc,
    exited,
    output: () => `${out}${err}`,
    waitForLine: (...prefixes) =>
      new Promise((resolve, reject) => {
        const end = Date.now() + LINE_WAIT_MS;
        const tick = () => {
          const line = out.split('\n').find((l) => prefixes.some((p) => l.startsWith(p)));
          if (line !== undefined) return resolve(line);
          if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > end) {
            return reject(new Error(`child gave no ${prefixes.join('|')} line; stdout: ${out} stderr: ${err}`));
          }
          setTimeout(tick, 20);
        };
        tick();
      }),
    async kill(opts = {}) {
      if (opts.group && proc.pid !== undefined) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          // the group is already empty
        }
      } else if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
      }
      await exited;
    },
  };
}

/** The stage child's interface (kept for test/csi/node-crash.root.test.ts). */
export type StageChild = TsChild;

export interface StageChildArgs {
  volumeId: string;
  byIdDir: string;
  stagingPath: string;
  callsFile: string;
  pauseAfter?: string;
}

/** Starts the stage child; it runs until it pauses, finishes or is killed. */
export function startStageChild(args: StageChildArgs): StageChild {
  return startTsChild(STAGE_CHILD, [JSON.stringify(args)]);
}
