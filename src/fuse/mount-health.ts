/**
 * Is a FUSE mount serving? The mount table alone cannot tell (a dead daemon's mount stays listed), and
 * `stat` may answer from a cached root inode, so liveness is a statfs, which always reaches the daemon
 * (ACK's IsNotLiveMountPoint). Also: waiting for a fresh mount, and finding and redoing the bind mounts
 * of a dead one, since remounting the source does not repair existing binds (object-storage-csi.md §3c).
 */
import { readFile, statfs } from 'node:fs/promises';
import { messageOf } from '../errors';
import type { ToolDeps } from '../mount/block-device';
import { bindMount, unmount } from '../mount/mounter';
import { mountsAt, readMountInfo, type MountInfo } from '../mount/mountinfo';

/** A statfs that takes longer than this counts as "unresponsive" (a hung daemon blocks it). */
export const PROBE_TIMEOUT_MS = 3_000;
/** How often a starting mount is polled. */
export const READY_POLL_MS = 100;
/** Mounts stacked on one path beyond this mean something keeps remounting it; stop detaching. */
const MAX_STACKED = 32;
/** How much of a failed daemon's log goes into the error. */
const LOG_TAIL_CHARS = 600;

/** Errnos of a FUSE mount whose daemon is gone (ENOTCONN -107) or broke the connection. */
const DEAD_ERRNOS = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO']);

export type Health = { state: 'alive' } | { state: 'dead' | 'unresponsive'; reason: string };

/** The topmost FUSE mount at `target`, if any. */
export async function fuseMountAt(target: string): Promise<MountInfo | undefined> {
  const at = mountsAt(await readMountInfo(), target);
  const top = at[at.length - 1];
  return top && top.fsType.startsWith('fuse') ? top : undefined;
}

/** Probes the mount at `target`: dead when not a FUSE mount or statfs fails with a dead-daemon errno. */
export async function probeMount(target: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Health> {
  if (!(await fuseMountAt(target))) return { state: 'dead', reason: `nothing is mounted at ${target}` };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  try {
    const res = await Promise.race([statfs(target).then(() => 'ok' as const), timeout]);
    if (res === 'timeout') return { state: 'unresponsive', reason: `statfs ${target} took over ${timeoutMs} ms` };
    return { state: 'alive' };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (DEAD_ERRNOS.has(code)) return { state: 'dead', reason: `the FUSE daemon is gone (${code})` };
    return { state: 'dead', reason: `statfs ${target}: ${messageOf(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits until a FUSE mount at `target` answers statfs, or `exited` settles (the daemon gave up), or
 * `timeoutMs` passes. Throws an Error carrying the tail of `logFile` when the mount never came up.
 */
export async function waitForMount(target: string, exited: Promise<unknown>, logFile: string, timeoutMs: number): Promise<void> {
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
