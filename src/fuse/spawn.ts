/**
 * Starting long-lived FUSE daemons so they outlive whoever started them: argv only (no shell), a new
 * session (a group kill of the supervisor does not reach them), stdin closed and stdout/stderr appended to
 * a log file (a pipe owned by a dying parent kills rclone with SIGPIPE at its next log line; measured).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** Mode of daemon log files: they name buckets and paths, not secrets, but are nobody else's business. */
export const DAEMON_LOG_MODE = 0o600;

export interface SpawnDetachedOptions {
  /** Variables to add; a key set to undefined is removed from the inherited environment. */
  env?: NodeJS.ProcessEnv;
  /** Appended to (created 0600) with the daemon's stdout and stderr. */
  logFile: string;
  cwd?: string;
}

/** A started daemon. `exited` resolves with its exit code or signal; never rejects. */
export interface DetachedProcess {
  pid: number;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `command` detached in its own session with stdio on `logFile`. The caller's event loop is not
 * held open by it (unref). Throws when the process cannot be started (ENOENT for a missing binary).
 */
export async function spawnDetached(
  command: string,
  args: readonly string[],
  opts: SpawnDetachedOptions,
): Promise<DetachedProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const fd = openSync(opts.logFile, 'a', DAEMON_LOG_MODE);
  try {
    const child = spawn(command, [...args], { detached: true, stdio: ['ignore', fd, fd], env, cwd: opts.cwd ?? '/' });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    child.unref();
    return { pid: child.pid!, child, exited };
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
}

/** Whether a process with this pid exists (signal 0). */
export function isProcessAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
