/**
 * The one place that runs an external command to completion (long-lived FUSE daemons are started by
 * src/fuse/spawn.ts, on the same rules). Commands are argv arrays, never shell strings, so
 * nothing a user controls is ever interpreted by a shell. Secrets never go on argv (they would show in
 * `ps`): callers pass them through `input` (stdin), `env` or a 0600 file. Errors name the command and
 * carry trimmed stderr, never the argument list.
 */
import { execFile as nodeExecFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { CodedError, Status } from '../errors';

/** Default bound on one command; mkfs of a large device and fsck are the slow ones. */
export const EXEC_DEFAULT_TIMEOUT_MS = 120_000;
const STDERR_KEEP_CHARS = 2000;

export interface ExecOptions {
  timeoutMs?: number;
  /** Data written to the command's stdin. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Exit codes that are not failures (fsck returns 1 after fixing errors, blkid 2 when nothing found). */
  okCodes?: readonly number[];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** A command failed: exit code, signal, timeout or missing binary. Suggests the gRPC code to answer with. */
export class ExecError extends CodedError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    reason: string,
    code: Status = Status.INTERNAL,
  ) {
    super(code, `${command} ${reason}${stderr ? `: ${stderr}` : ''}`);
    this.name = 'ExecError';
  }
}

/** Runs one command as an argv array and resolves with its output; rejects with ExecError. */
export type Exec = (command: string, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

export const execFile: Exec = (command, args, opts = {}) =>
  new Promise((resolve, reject) => {
    const okCodes = opts.okCodes ?? [0];
    const child = nodeExecFile(
      command,
      [...args],
      {
        timeout: opts.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS,
        env: opts.env ?? process.env,
        signal: opts.signal,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        const trimmed = (stderr ?? '').trim().slice(-STDERR_KEEP_CHARS);
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string };
        if (e.code === 'ENOENT') {
          return reject(new ExecError(command, null, '', 'is not installed', Status.FAILED_PRECONDITION));
        }
        if (e.name === 'AbortError') {
          return reject(new ExecError(command, null, trimmed, 'was cancelled', Status.DEADLINE_EXCEEDED));
        }
        if (typeof e.code === 'number' && okCodes.includes(e.code)) {
          return resolve({ stdout, stderr, code: e.code });
        }
        if (e.killed || e.signal) {
          return reject(new ExecError(command, null, trimmed, `was killed (${e.signal ?? 'timeout'})`));
        }
        const code = typeof e.code === 'number' ? e.code : null;
        reject(new ExecError(command, code, trimmed, `exited with code ${code}`));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });

/** Whether a command can be found on PATH (or at an absolute path), without running it. */
export async function commandExists(command: string, pathEnv = process.env.PATH ?? ''): Promise<boolean> {
  const candidates = command.includes('/')
    ? [command]
    : [...pathEnv.split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean).map((d) => `${d}/${command}`);
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}
