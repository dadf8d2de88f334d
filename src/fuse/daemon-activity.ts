/**
 * Whether a FUSE daemon whose statfs timed out is hung or only busy. Killing a busy one loses what it was
 * uploading: s3fs holds its locks while it sends a file's parts at close, so a statfs waits behind an upload
 * for as long as the parts take (measured under load 6-9 on 2 cores: two 3 s probe timeouts in one 256 MiB write,
 * and the writer's close() failed with EIO when the daemon was replaced). A stopped daemon (SIGSTOP) does
 * nothing at all; a deadlocked one spends no CPU and moves no bytes; an uploading one reads its cache file (s3fs)
 * or writes its sockets (rclone: Go's net package uses read/write) and spends CPU on checksums and signing.
 * Context switches are no signal: Go's runtime wakes its sysmon thread every few ms in a deadlocked rclone too.
 */
import { readdir, readFile } from 'node:fs/promises';

/** What /proc says a process did, summed over its threads. */
export interface DaemonActivity {
  /** Every thread is stopped by a signal or a tracer (state T or t). */
  stopped: boolean;
  /** utime + stime, in clock ticks (1/100 s on Linux). */
  cpuTicks: number;
  /** rchar + wchar of /proc/<pid>/io: bytes through read/write-family calls, files and sockets alike. */
  ioBytes: number;
}

/** CPU below this over a probe window is the runtime's own idling, not work (10 ms ticks). */
export const BUSY_CPU_TICKS = 3;

/** Reads the process's activity counters; undefined when it is gone or /proc does not show them. */
export async function readActivity(pid: number, proc = '/proc'): Promise<DaemonActivity | undefined> {
  try {
    const tids = await readdir(`${proc}/${pid}/task`);
    let cpuTicks = 0;
    let stopped = tids.length > 0;
    for (const tid of tids) {
      const stat = await readFile(`${proc}/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
      if (stat === undefined) continue; // the thread ended meanwhile
      // After the command name (which may hold spaces and parentheses): state, ppid, ... utime is the 12th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'T' && fields[0] !== 't') stopped = false;
      cpuTicks += Number(fields[11]) + Number(fields[12]);
    }
    const io = await readFile(`${proc}/${pid}/io`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1]);
    const ioBytes = field('rchar') + field('wchar');
    if (!Number.isFinite(cpuTicks) || !Number.isFinite(ioBytes)) return undefined;
    return { stopped, cpuTicks, ioBytes };
  } catch {
    return undefined;
  }
}

/**
 * Whether the daemon worked between the two readings (taken around a probe that timed out). Unknown activity
 * (no /proc, the process gone) counts as none, which keeps the old rule: a timed-out probe means hung.
 */
export function isWorking(before: DaemonActivity | undefined, after: DaemonActivity | undefined): boolean {
  if (!before || !after || after.stopped) return false;
  return after.ioBytes > before.ioBytes || after.cpuTicks - before.cpuTicks >= BUSY_CPU_TICKS;
}
