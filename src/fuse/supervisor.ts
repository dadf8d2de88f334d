/**
 * FuseSupervisor: owns the FUSE daemons of object volumes on this node. It mounts and unmounts on request,
 * records every mount in its state dir so a restarted supervisor adopts live mounts and repairs dead ones,
 * and probes each mount every few seconds, restarting a dead daemon with backoff and redoing its binds. A hung
 * daemon (statfs unanswered within PROBE_TIMEOUT_MS: stopped, deadlocked) is SIGKILLed, which ends its FUSE
 * connection, and then replaced like a dead one; every probe runs out of process (mount-health.ts). New
 * credentials for a mounted volume replace its daemon the same way (s3fs and rclone read them only at start).
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { CodedError, Status, messageOf } from '../errors';
import type { Logger } from '../log';
import { cleanupMountPoint } from '../mount/mounter';
import { execFile, type Exec } from '../mount/exec';
import { findMountByTarget } from '../mount/mountinfo';
import { TARGET_DIR_MODE } from '../mount/node-mounter';
import {
  abortFuseConnection,
  bindsOf,
  detachLazily,
  fuseMountAt,
  probeMount,
  rebind,
  waitForMount,
  type Health,
} from './mount-health';
import { isWorking, readActivity, type DaemonActivity } from './daemon-activity';
import { MountRecords, type MountRecord } from './mount-records';
import { credentialFileContent, daemonCommand } from './mounter-args';
import { requireUnder, validateCredentials, validateMountSpec } from './protocol';
import type { FuseCredentials, MountSpec, MountState, MountStatus } from './protocol';
import { pendingUploads } from './rclone-cache';
import { isProcessAlive, spawnDetached } from './spawn';

/** How often every mount is probed; a dead daemon is noticed within this (the brief asks ≤ 10 s). */
export const LIVENESS_INTERVAL_MS = 2_000;
/**
 * How long into a probe the daemon's activity baseline is read: well before the probe's timeout, so a daemon busy
 * behind the statfs has time to show its work, and after a healthy answer's few ms.
 */
const ACTIVITY_BASELINE_MS = 500;
/** How long a new daemon gets to show a working mount. */
export const MOUNT_READY_TIMEOUT_MS = 20_000;
/** First wait before restarting a daemon again after a failed restart; doubles up to the max. */
export const RESTART_BACKOFF_INITIAL_MS = 1_000;
export const RESTART_BACKOFF_MAX_MS = 60_000;
/** How long a SIGKILLed hung daemon gets to be gone before its FUSE connection is aborted through fusectl. */
const HUNG_KILL_WAIT_MS = 2_000;
/** How long an unmounted daemon gets to exit on its own before SIGTERM, once it has nothing left to upload. */
const DAEMON_EXIT_WAIT_MS = 2_000;
/**
 * How long an unmounted rclone may go on uploading what was written before the unmount: it exits by itself when
 * done, and a SIGTERM would abort the upload (measured, rclone 1.60). Past this the daemon is stopped anyway and
 * its cache, with the files, is kept for the next mount of the volume here.
 */
export const UPLOAD_DRAIN_MAX_MS = 10 * 60_000;
/** How often the cache is read for unfinished uploads while a daemon drains. */
const DRAIN_POLL_MS = 250;

export interface FuseSupervisorOptions {
  stateDir: string;
  /** Every target must lie under it. */
  kubeletDir: string;
  log: Logger;
  exec?: Exec;
  livenessIntervalMs?: number;
}

interface Entry extends MountRecord {
  state: MountState;
  lastError?: string;
  /** Epoch ms before which no restart is tried. */
  retryAt: number;
  backoffMs: number;
  /** Times the daemon was found hung and replaced. */
  hangs: number;
}

/** One per supervisor process (or per in-process fallback in the node plugin). */
export class FuseSupervisor {
  private readonly records: MountRecords;
  private readonly entries = new Map<string, Entry>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private timer?: NodeJS.Timeout;
  private readonly tools: { exec: Exec; log: Logger };

  constructor(private readonly opts: FuseSupervisorOptions) {
    this.records = new MountRecords(opts.stateDir);
    this.tools = { exec: opts.exec ?? execFile, log: opts.log };
  }

  get kubeletDir(): string {
    return this.opts.kubeletDir;
  }

  /** Loads the records, adopts live mounts, repairs dead ones and starts the liveness loop. */
  async start(): Promise<void> {
    await this.records.init();
    const recs = await this.records.loadAll((file, err) =>
      this.opts.log.error({ file, err: messageOf(err) }, 'unreadable mount record skipped'),
    );
    for (const rec of recs) {
      const e: Entry = {
        ...rec,
        state: 'alive',
        retryAt: 0,
        backoffMs: RESTART_BACKOFF_INITIAL_MS,
        hangs: rec.hangs ?? 0,
      };
      this.entries.set(rec.spec.target, e);
      const h = await probeMount(rec.spec.target);
      if (h.state === 'alive') this.opts.log.info({ target: rec.spec.target, pid: rec.pid }, 'adopted live FUSE mount');
      else this.markDead(e, h.reason);
    }
    await this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.opts.livenessIntervalMs ?? LIVENESS_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops probing. Daemons and mounts are left running: that is the point of a supervisor. */
  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Mounts `spec.target` (idempotent for the same spec). Throws INVALID_ARGUMENT for a bad field or option,
   * ALREADY_EXISTS when the target holds another mount; when the daemon does not come up, PERMISSION_DENIED
   * (credentials refused) or UNAVAILABLE (endpoint unreachable) as its log says, else INTERNAL.
   */
  async mount(rawSpec: MountSpec, rawCreds: FuseCredentials): Promise<void> {
    // Validated here too, so the in-process path gets the same checks as the socket.
    const spec = validateMountSpec(rawSpec, this.opts.kubeletDir);
    const creds = validateCredentials(rawCreds, spec.provider);
    return this.locked(spec.target, async () => {
      const files = this.records.paths(spec.target);
      daemonCommand(spec, { credentialFile: files.credentials, cacheDir: files.cacheDir }); // options check first
      const known = this.entries.get(spec.target);
      if (known) {
        if (JSON.stringify(known.spec) !== JSON.stringify(spec)) {
          throw new CodedError(
            Status.ALREADY_EXISTS,
            `${spec.target} is already mounted for ${known.spec.volumeId} with other options`,
          );
        }
        const content = credentialFileContent(spec, creds);
        const rotated = !(await this.records.hasCredentials(spec.target, content));
        if (rotated) await this.records.saveCredentials(spec.target, content);
        const h = await this.probe(known);
        if ((h.state === 'alive' || h.state === 'busy') && !rotated) return;
        await this.restart(known, h.state === 'unresponsive' ? { hung: h.reason } : rotated ? { rotated: true } : {});
        if (known.state !== 'alive')
          throw new CodedError(Status.INTERNAL, `${spec.target}: ${known.lastError ?? 'daemon restart failed'}`);
        return;
      }
      const top = await findMountByTarget(spec.target);
      if (top && !top.fsType.startsWith('fuse')) {
        throw new CodedError(Status.ALREADY_EXISTS, `${spec.target} already holds a ${top.fsType} mount`);
      }
      const existing = await fuseMountAt(spec.target);
      if (existing && (await probeMount(spec.target)).state === 'alive') {
        throw new CodedError(
          Status.ALREADY_EXISTS,
          `${spec.target} already holds a mount this supervisor does not own`,
        );
      }
      if (existing) await detachLazily(this.tools, spec.target);
      await mkdir(spec.target, { recursive: true, mode: TARGET_DIR_MODE });
      await this.records.saveCredentials(spec.target, credentialFileContent(spec, creds));
      const e: Entry = {
        spec,
        restarts: 0,
        hangs: 0,
        state: 'restarting',
        retryAt: 0,
        backoffMs: RESTART_BACKOFF_INITIAL_MS,
      };
      try {
        await this.startDaemon(e);
        e.state = 'alive';
      } catch (err) {
        await detachLazily(this.tools, spec.target).catch(() => undefined);
        await this.records.remove(spec.target);
        const message = `${spec.mounter} could not mount ${spec.bucket}/${spec.prefix}: ${messageOf(err)}`;
        throw new CodedError(daemonFailureCode(message), message);
      }
      this.entries.set(spec.target, e);
      this.opts.log.info(
        { volumeId: spec.volumeId, target: spec.target, mounter: spec.mounter, pid: e.pid },
        'FUSE mount started',
      );
    });
  }

  /**
   * Unmounts `target` (lazily when busy or dead), stops its daemon, removes its credential file and record,
   * and removes the directory. Unknown or already unmounted targets are success.
   */
  async unmount(rawTarget: string): Promise<void> {
    const target = requireUnder(rawTarget, this.opts.kubeletDir, 'target');
    return this.locked(target, async () => {
      const e = this.entries.get(target);
      // Without a record only a FUSE mount is ours to remove: a block volume's mount there is never touched.
      const top = await findMountByTarget(target);
      if (!e && top && !top.fsType.startsWith('fuse')) {
        throw new CodedError(
          Status.FAILED_PRECONDITION,
          `${target} holds a ${top.fsType} mount, not a FUSE mount; not unmounting it`,
        );
      }
      await cleanupMountPoint(this.tools, target, { lazyIfBusy: true });
      const { cacheDir } = this.records.paths(target);
      if (e && isDaemonOf(e.pid, target)) {
        let told = false;
        await stopDaemon(e.pid!, async () => {
          const files = await pendingUploads(cacheDir);
          if (files.length > 0 && !told) {
            told = true;
            // Can outlast the caller's deadline; its retry waits here for this one (per-target lock).
            this.opts.log.info(
              { target, count: files.length },
              'waiting for the daemon to finish uploading before it exits',
            );
          }
          return files;
        });
      }
      const notUploaded = await this.records.remove(target);
      this.entries.delete(target);
      if (notUploaded.length > 0) {
        this.opts.log.error(
          { target, volumeId: e?.spec.volumeId, cacheDir, count: notUploaded.length, files: notUploaded.slice(0, 20) },
          'files written to the volume were not uploaded when its daemon stopped; their cache is kept and the next mount of this volume here uploads them',
        );
      }
      this.opts.log.info({ target, volumeId: e?.spec.volumeId }, 'FUSE mount removed');
    });
  }

  /**
   * Replaces the daemon of the mount at `target` when `rawCreds` differ from the ones it runs with (the same
   * ones: nothing happens). Throws INVALID_ARGUMENT for bad credentials, FAILED_PRECONDITION when this
   * supervisor has no mount there, INTERNAL when the new daemon does not come up.
   */
  async updateCredentials(rawTarget: string, rawCreds: FuseCredentials): Promise<void> {
    const target = requireUnder(rawTarget, this.opts.kubeletDir, 'target');
    return this.locked(target, async () => {
      const e = this.entries.get(target);
      if (!e) throw new CodedError(Status.FAILED_PRECONDITION, `${target} is not a FUSE mount of this supervisor`);
      const content = credentialFileContent(e.spec, validateCredentials(rawCreds, e.spec.provider));
      if (await this.records.hasCredentials(target, content)) return;
      await this.records.saveCredentials(target, content);
      await this.restart(e, { rotated: true });
      if (e.state !== 'alive')
        throw new CodedError(Status.INTERNAL, `${target}: ${e.lastError ?? 'daemon restart failed'}`);
    });
  }

  /** The state of every mount, as of the last probe. */
  list(): MountStatus[] {
    return [...this.entries.values()].map((e) => ({
      volumeId: e.spec.volumeId,
      target: e.spec.target,
      mounter: e.spec.mounter,
      state: e.state,
      restarts: e.restarts,
      hangs: e.hangs,
      lastError: e.lastError,
      pid: e.pid,
    }));
  }

  /**
   * Probes every mount not busy in a request, all at once (a hung one must not delay the others' checks);
   * restarts dead ones whose backoff has passed and replaces hung ones at once.
   */
  async checkAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.check(e)));
  }

  private async check(e: Entry): Promise<void> {
    if (this.locks.has(e.spec.target)) return;
    await this.locked(e.spec.target, async () => {
      if (this.entries.get(e.spec.target) !== e) return; // unmounted meanwhile
      const h = await this.probe(e);
      if (h.state === 'alive') {
        if (e.state !== 'alive') this.opts.log.info({ target: e.spec.target }, 'FUSE mount serves again');
        e.state = 'alive';
        return;
      }
      if (h.state === 'busy') {
        this.opts.log.info(
          { volumeId: e.spec.volumeId, target: e.spec.target, pid: e.pid, reason: h.reason },
          'FUSE daemon is slow to answer but working; left alone',
        );
        return;
      }
      if (h.state === 'unresponsive') {
        if (Date.now() >= e.retryAt) await this.restart(e, { hung: h.reason });
        return;
      }
      if (e.state === 'alive') this.markDead(e, h.reason);
      if (Date.now() >= e.retryAt) await this.restart(e);
    }).catch((err) => this.opts.log.error({ target: e.spec.target, err: messageOf(err) }, 'liveness check failed'));
  }

  /**
   * probeMount, except that a statfs timeout of a daemon that kept working meanwhile (CPU spent, bytes read or
   * written) is `busy`, not hung: replacing it would cut off the upload its statfs waits behind.
   */
  private async probe(e: Entry): Promise<Health | { state: 'busy'; reason: string }> {
    // The baseline is read only once the statfs is already slow: an answering mount (nearly every probe, every
    // LIVENESS_INTERVAL_MS for every mount) costs no /proc reads at all.
    const pid = e.pid;
    let before: Promise<DaemonActivity | undefined> | undefined;
    const baseline = pid
      ? setTimeout(() => {
          before = readActivity(pid);
        }, ACTIVITY_BASELINE_MS)
      : undefined;
    const h = await probeMount(e.spec.target);
    clearTimeout(baseline);
    if (h.state !== 'unresponsive' || !isDaemonOf(pid, e.spec.target)) return h;
    return isWorking(await before, await readActivity(pid!)) ? { state: 'busy', reason: h.reason } : h;
  }

  private markDead(e: Entry, reason: string): void {
    e.state = 'dead';
    e.lastError = reason;
    this.opts.log.warn({ volumeId: e.spec.volumeId, target: e.spec.target, reason }, 'FUSE mount is dead');
  }

  /**
   * Detaches the dead mount, starts a new daemon, redoes the binds of the old one. With `hung` (why the
   * daemon counts as hung) the daemon is SIGKILLed first, without the grace a healthy one gets: its death ends
   * the FUSE connection, so every request blocked on it fails and the path can be detached. With `rotated`
   * (new credentials) the live daemon is told to stop (SIGTERM) and replaced at once; an rclone upload it cuts
   * short stays in the cache dir, which the new daemon takes over and uploads. Never throws.
   */
  private async restart(e: Entry, why: { hung?: string; rotated?: boolean } = {}): Promise<void> {
    const hung = why.hung;
    const started = Date.now();
    const binds = (await bindsOf(e.spec.target)).filter((b) => b.mountPoint.startsWith(`${this.opts.kubeletDir}/`));
    e.state = 'restarting';
    e.restarts++;
    if (hung) {
      e.hangs++;
      e.lastError = hung;
      this.opts.log.warn(
        { volumeId: e.spec.volumeId, target: e.spec.target, pid: e.pid, reason: hung },
        'FUSE daemon is hung; replacing it',
      );
    } else if (why.rotated) {
      this.opts.log.info(
        { volumeId: e.spec.volumeId, target: e.spec.target, pid: e.pid },
        'credentials changed; replacing the FUSE daemon',
      );
    }
    try {
      if (hung) await this.endHungDaemon(e);
      else if (why.rotated && isDaemonOf(e.pid, e.spec.target)) await stopNow(e.pid!);
      else if (isDaemonOf(e.pid, e.spec.target)) await stopDaemon(e.pid!);
      await detachLazily(this.tools, e.spec.target);
      await mkdir(e.spec.target, { recursive: true, mode: TARGET_DIR_MODE });
      await this.startDaemon(e);
      // Serving only once the pods' binds point at the new daemon too.
      await rebind(this.tools, e.spec.target, binds);
      e.state = 'alive';
      e.backoffMs = RESTART_BACKOFF_INITIAL_MS;
      this.opts.log.info(
        {
          target: e.spec.target,
          pid: e.pid,
          restarts: e.restarts,
          hangs: e.hangs,
          binds: binds.length,
          tookMs: Date.now() - started,
          cause: hung ? 'hung' : why.rotated ? 'credentials' : 'dead',
        },
        'FUSE daemon restarted',
      );
    } catch (err) {
      e.state = 'dead';
      e.lastError = `restart failed: ${messageOf(err)}`;
      e.retryAt = Date.now() + e.backoffMs;
      e.backoffMs = Math.min(e.backoffMs * 2, RESTART_BACKOFF_MAX_MS);
      this.opts.log.error(
        { target: e.spec.target, err: e.lastError, retryInMs: e.retryAt - Date.now() },
        'FUSE daemon restart failed',
      );
      await this.records.save(e);
    }
  }

  /**
   * SIGKILL reaches a stopped process too, and the daemon's death closes /dev/fuse, which aborts the
   * connection. When the daemon is not ours to kill (pid unknown or reused) or does not go, the connection is
   * aborted through fusectl where it is mounted; otherwise the lazy detach still takes the path away from
   * new callers and the old mount lives on, unreachable, until its last user leaves.
   */
  private async endHungDaemon(e: Entry): Promise<void> {
    if (isDaemonOf(e.pid, e.spec.target)) {
      process.kill(e.pid!, 'SIGKILL');
      const end = Date.now() + HUNG_KILL_WAIT_MS;
      while (isProcessAlive(e.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      if (!isProcessAlive(e.pid)) return;
    }
    const aborted = await abortFuseConnection(e.spec.target).catch(() => false);
    this.opts.log.warn(
      { target: e.spec.target, pid: e.pid, aborted },
      'hung FUSE daemon did not go with SIGKILL; its connection is detached lazily',
    );
  }

  /** Spawns the daemon for `e`, waits for its mount and records the pid; the caller says when it is alive. */
  private async startDaemon(e: Entry): Promise<void> {
    const files = this.records.paths(e.spec.target);
    const cmd = daemonCommand(e.spec, { credentialFile: files.credentials, cacheDir: files.cacheDir });
    await mkdir(files.cacheDir, { recursive: true, mode: 0o700 });
    const proc = await spawnDetached(cmd.command, cmd.args, { env: cmd.env, logFile: files.log });
    e.pid = proc.pid;
    // A daemon that dies is noticed at once rather than at the next probe.
    void proc.exited.then(() => setTimeout(() => void this.checkAll(), 50).unref());
    try {
      await waitForMount(e.spec.target, proc.exited, files.log, MOUNT_READY_TIMEOUT_MS);
    } catch (err) {
      if (isProcessAlive(proc.pid)) process.kill(proc.pid, 'SIGKILL');
      throw err;
    }
    e.lastError = undefined;
    await this.records.save({ spec: e.spec, pid: e.pid, restarts: e.restarts, hangs: e.hangs });
  }

  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/** Whether `pid` is still the daemon of `target` (a recorded pid may have been reused after a reboot). */
function isDaemonOf(pid: number | undefined, target: string): boolean {
  if (!pid || !isProcessAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(target);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after DAEMON_EXIT_WAIT_MS: a daemon still serving, to be replaced. */
async function stopNow(pid: number): Promise<void> {
  const waitGone = async (ms: number) => {
    const end = Date.now() + ms;
    while (isProcessAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return !isProcessAlive(pid);
  };
  process.kill(pid, 'SIGTERM');
  if (await waitGone(DAEMON_EXIT_WAIT_MS)) return;
  process.kill(pid, 'SIGKILL');
  await waitGone(DAEMON_EXIT_WAIT_MS);
}

/**
 * Waits for an unmounted daemon to exit on its own, then SIGTERM, then SIGKILL. While `uploading` names files
 * (rclone finishing the uploads of what was written before the unmount) it waits, up to UPLOAD_DRAIN_MAX_MS.
 */
async function stopDaemon(pid: number, uploading: () => Promise<readonly string[]> = async () => []): Promise<void> {
  const waitGone = async (ms: number) => {
    const end = Date.now() + ms;
    while (isProcessAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return !isProcessAlive(pid);
  };
  const drainEnd = Date.now() + UPLOAD_DRAIN_MAX_MS;
  let idleSince = Date.now();
  while (!(await waitGone(DRAIN_POLL_MS))) {
    if (Date.now() < drainEnd && (await uploading()).length > 0) idleSince = Date.now();
    else if (Date.now() - idleSince >= DAEMON_EXIT_WAIT_MS) break;
  }
  if (!isProcessAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  if (await waitGone(DAEMON_EXIT_WAIT_MS)) return;
  process.kill(pid, 'SIGKILL');
}

/**
 * The code for a daemon that exited instead of mounting, read from the log tail in `message`: a wrong secret
 * or an unreachable endpoint comes from the request and is not our fault, and the caller (kubelet) retries
 * either way. Patterns as s3fs 1.90 (`invalid credentials(host=...)`, `unable to connect(host=...)`) and
 * rclone 1.60 print them.
 */
export function daemonFailureCode(message: string): Status {
  if (
    /invalid credentials|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|status code: 40[13]|HTTP 40[13]/i.test(
      message,
    )
  ) {
    return Status.PERMISSION_DENIED;
  }
  if (/unable to connect|connection refused|no such host|could not resolve|i\/o timeout/i.test(message))
    return Status.UNAVAILABLE;
  return Status.INTERNAL;
}
