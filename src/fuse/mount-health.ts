/**
 * Is a FUSE mount serving? The mount table alone cannot tell (a dead daemon's mount stays listed), and
 * `stat` may answer from a cached root inode, so liveness is a statfs, which always reaches the daemon
 * (ACK's IsNotLiveMountPoint). The statfs runs in a child process (`stat -f`) killed at a deadline, never in
 * this process: a hung daemon (stopped, deadlocked) blocks the caller in the kernel until the connection ends,
 * and a blocked libuv pool thread never comes back, so four probes of a hung mount would stall every fs call
 * of the process. Also: waiting for a fresh mount, ending a hung FUSE connection, and finding and redoing the
 * bind mounts of a dead one, since remounting the source does not repair existing binds (object-storage-csi.md §3c).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { messageOf } from '../errors';
import type { ToolDeps } from '../mount/block-device';
import { execFile, type Exec } from '../mount/exec';
import { bindMount, unmount, type FsStats } from '../mount/mounter';
import { mountsAt, readMountInfo, type MountInfo } from '../mount/mountinfo';

/** A statfs that takes longer than this counts as "unresponsive" (a hung daemon blocks it). */
export const PROBE_TIMEOUT_MS = 3_000;
/** How often a starting mount is polled. */
export const READY_POLL_MS = 100;
/** Mounts stacked on one path beyond this mean something keeps remounting it; stop detaching. */
const MAX_STACKED = 32;
/** How much of a failed daemon's log goes into the error. */
const LOG_TAIL_CHARS = 600;
/** The kernel's FUSE control filesystem (fusectl); absent where it is not mounted (most containers). */
export const FUSE_CONNECTIONS_DIR = '/sys/fs/fuse/connections';

/** Errnos of a FUSE mount whose daemon is gone (ENOTCONN -107) or broke the connection. */
const DEAD_ERRNOS = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO']);
/** The same, as coreutils `stat` prints them (strerror). */
const DEAD_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/Transport endpoint is not connected/, 'ENOTCONN'],
  [/Software caused connection abort/, 'ECONNABORTED'],
  [/Input\/output error/, 'EIO'],
];

export type Health = { state: 'alive'; stats: FsStats } | { state: 'dead' | 'unresponsive'; reason: string };

/** The topmost FUSE mount at `target`, if any. */
export async function fuseMountAt(target: string): Promise<MountInfo | undefined> {
  const at = mountsAt(await readMountInfo(), target);
  const top = at[at.length - 1];
  return top && top.fsType.startsWith('fuse') ? top : undefined;
}

/**
 * Probes the mount at `target`: dead when not a FUSE mount or statfs fails with a dead-daemon errno,
 * unresponsive when statfs does not answer within `timeoutMs`; alive comes with the statfs numbers.
 */
export async function probeMount(target: string, timeoutMs = PROBE_TIMEOUT_MS, exec: Exec = execFile): Promise<Health> {
  if (!(await fuseMountAt(target))) return { state: 'dead', reason: `nothing is mounted at ${target}` };
  try {
    return { state: 'alive', stats: await statfsOutOfProcess(target, timeoutMs, exec) };
  } catch (e) {
    if (e instanceof ProbeTimeout) return { state: 'unresponsive', reason: e.message };
    const msg = messageOf(e);
    const code = (e as NodeJS.ErrnoException).code;
    const dead =
      typeof code === 'string' && DEAD_ERRNOS.has(code) ? code : DEAD_MESSAGES.find(([re]) => re.test(msg))?.[1];
    if (dead) return { state: 'dead', reason: `the FUSE daemon is gone (${dead})` };
    return { state: 'dead', reason: `statfs ${target}: ${msg}` };
  }
}

class ProbeTimeout extends Error {}

/**
 * statfs of `path` by `stat -f` in a child process, SIGKILLed at `timeoutMs`. A FUSE request the daemon has
 * not read yet (a stopped daemon) ends with the kill; one a deadlocked daemon holds keeps the child in the
 * kernel until the connection is aborted, so the answer is raced against a timer of our own as well.
 * Throws ProbeTimeout on the deadline, the command's error otherwise.
 */
export async function statfsOutOfProcess(
  path: string,
  timeoutMs = PROBE_TIMEOUT_MS,
  execTool: Exec = execFile,
): Promise<FsStats> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(`statfs ${path} took over ${timeoutMs} ms`)), timeoutMs + 250);
  });
  try {
    // %S fundamental block size, %b blocks, %f free, %a available to non-root, %c inodes, %d free inodes.
    const run = execTool('stat', ['-f', '-c', '%S %b %f %a %c %d', '--', path], { timeoutMs });
    run.catch(() => undefined);
    const { stdout } = await Promise.race([run, late]).catch((e) => {
      if (/was killed \(SIGKILL\)|was killed \(timeout\)/.test(messageOf(e)))
        throw new ProbeTimeout(`statfs ${path} took over ${timeoutMs} ms`);
      throw e;
    });
    const [bsize, blocks, bfree, bavail, files, ffree] = stdout.trim().split(/\s+/).map(Number);
    if (![bsize, blocks, bfree, bavail, files, ffree].every(Number.isFinite))
      throw new Error(`stat -f printed "${stdout.trim()}"`);
    return {
      totalBytes: blocks * bsize,
      usedBytes: (blocks - bfree) * bsize,
      availableBytes: bavail * bsize,
      totalInodes: files,
      usedInodes: files - ffree,
      freeInodes: ffree,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends the FUSE connection of the mount at `target` through fusectl (`abort`): every request waiting on the
 * daemon fails at once (ECONNABORTED) and later ones too, so the mount can be detached without blocking.
 * For a daemon that a SIGKILL does not end (the pid unknown, or stuck in the kernel). False when fusectl is not
 * mounted here or nothing FUSE is mounted at `target`.
 */
export async function abortFuseConnection(target: string): Promise<boolean> {
  const top = await fuseMountAt(target);
  if (!top) return false;
  // The connection is named after the minor number of the mount's anonymous device.
  const abort = `${FUSE_CONNECTIONS_DIR}/${top.minor}/abort`;
  if (!existsSync(abort)) return false;
  await writeFile(abort, '1');
  return true;
}

/**
 * Waits until a FUSE mount at `target` answers statfs, or `exited` settles (the daemon gave up), or
 * `timeoutMs` passes. Throws an Error carrying the tail of `logFile` when the mount never came up.
 */
export async function waitForMount(
  target: string,
  exited: Promise<unknown>,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const end = Date.now() + timeoutMs;
  for (;;) {
    if ((await probeMount(target)).state === 'alive') return;
    if (gone || Date.now() > end) {
      const why = gone ? 'the daemon exited' : `no mount after ${timeoutMs} ms`;
      throw new Error(`${why}; log: ${await logTail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

async function logTail(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).slice(-LOG_TAIL_CHARS).trim() || '(empty)';
  } catch {
    return '(no log)';
  }
}

/** A bind of a FUSE mount somewhere else (a published target). */
export interface BindOf {
  mountPoint: string;
  readOnly: boolean;
}

/** Bind mounts of the filesystem mounted at `target` (same device number), other than `target` itself. */
export async function bindsOf(target: string): Promise<BindOf[]> {
  const all = await readMountInfo();
  const src = mountsAt(all, target).pop();
  if (!src) return [];
  return all
    .filter((m) => m.major === src.major && m.minor === src.minor && m.mountPoint !== target && m.root === src.root)
    .map((m) => ({ mountPoint: m.mountPoint, readOnly: m.mountOptions.includes('ro') }));
}

/** Replaces each bind with a fresh bind of `target` (read-only kept). Failures are logged, not thrown. */
export async function rebind(deps: ToolDeps, target: string, binds: readonly BindOf[]): Promise<void> {
  for (const b of binds) {
    try {
      await unmount(deps, b.mountPoint, { lazy: true });
      await bindMount(deps, target, b.mountPoint, b.readOnly);
      deps.log.info({ target, bind: b.mountPoint, readOnly: b.readOnly }, 'bind mount redone after daemon restart');
    } catch (e) {
      deps.log.error({ target, bind: b.mountPoint, err: messageOf(e) }, 'cannot redo bind mount');
    }
  }
}

/** Detaches whatever is mounted at `target` lazily; nothing mounted is fine. */
export async function detachLazily(deps: ToolDeps, target: string): Promise<void> {
  for (let i = 0; i < MAX_STACKED && mountsAt(await readMountInfo(), target).length > 0; i++) {
    await unmount(deps, target, { lazy: true });
  }
}
