/**
 * Runs test/helpers/node-crash-child.ts in a separate Node process (TypeScript transpiled on load by a
 * tiny require hook, as no ts-node is installed) and lets a test wait for a line it prints, then SIGKILL it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TS_HOOK } from './ts-hook';

const CHILD = join(__dirname, 'node-crash-child.ts');
/** Loading typescript and transpiling the imports takes a second or two. */
const LINE_WAIT_MS = 30_000;


export interface StageChild {
  proc: ChildProcess;
  /** Resolves with the first output line starting with one of `prefixes`. */
  waitForLine(...prefixes: string[]): Promise<string>;
  /** SIGKILLs the child and waits for it to be gone. */
  kill(): Promise<void>;
}

export interface StageChildArgs {
  volumeId: string;
  byIdDir: string;
  stagingPath: string;
  callsFile: string;
  pauseAfter?: string;
}

/** Starts the child; it runs until it pauses, finishes or is killed. */
export function startStageChild(args: StageChildArgs): StageChild {
  const proc = spawn(process.execPath, ['-e', TS_HOOK, CHILD, JSON.stringify(args)], {
    cwd: join(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (err += String(d)));
  return {
    proc,
    waitForLine: (...prefixes) =>
      new Promise((resolve, reject) => {
        const end = Date.now() + LINE_WAIT_MS;
        const tick = () => {
          const line = out.split('\n').find((l) => prefixes.some((p) => l.startsWith(p)));
          if (line !== undefined) return resolve(line);
          if (proc.exitCode !== null || Date.now() > end) {
            return reject(new Error(`child gave no ${prefixes.join('|')} line; stdout: ${out} stderr: ${err}`));
          }
          setTimeout(tick, 20);
        };
        tick();
      }),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
