/**
 * What the object bench measures besides wall time, to tell a FUSE daemon's own cost from the server's and the
 * client's: CPU time of a process (the mount's daemon, the S3 server, rclone's CLI) and the sizes of the requests the
 * kernel sends one FUSE connection (its `fuse:fuse_request_send/end` tracepoints, in a tracefs instance of our own so
 * nothing else on the machine is disturbed). Linux only, root; every probe degrades to "unknown" instead of failing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** USER_HZ: /proc's clock ticks (100 on every Linux architecture the driver ships for). */
const TICK_MS = 10;

/** utime + stime of a live process, in ms; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may itself hold spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Peak resident set (VmHWM) of a live process, in MiB; undefined once it is gone. */
export function processPeakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU of this process's children that have been waited for (cutime + cstime), in ms. */
export function reapedChildrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_MS;
}

/** The pid of the process whose argv holds `target` as one argument (the FUSE daemon serving that mountpoint). */
export function daemonPidOf(target: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(target)) return Number(d);
    } catch {
      /* exited meanwhile */
    }
  }
  return undefined;
}

/** The kernel's dev_t (MAJOR << 20 | MINOR) of glibc's st_dev encoding, as fuse tracepoints print `connection`. */
function kernelDev(stDev: number): number {
  const major = Math.floor(stDev / 256) & 0xfff;
  const minor = (stDev & 0xff) | (Math.floor(stDev / 4096) & 0xfff00);
  return major * 2 ** 20 + minor;
}

export interface FuseRequestStats {
  reads: number;
  /** Bytes answered to FUSE_READ (reply length minus the 16-byte fuse_out_header). */
  readBytes: number;
  writes: number;
  /** Bytes carried by FUSE_WRITE (request length minus fuse_in_header 40 and fuse_write_in 40). */
  writeBytes: number;
  /** Events the ring buffer dropped: when > 0, the counts are low. */
  lost: number;
}

const TRACEFS = '/sys/kernel/tracing';
const READ = 15;
const WRITE = 16;

/**
 * Counts FUSE_READ / FUSE_WRITE requests on the connection of the FUSE mount at `mountpoint` between start() and
 * stop(). Uses its own tracefs instance (removed at stop), so the global trace and other tracers are untouched.
 */
export class FuseRequestTrace {
  private readonly dir: string;
  private conn = 0;
  private active = false;

  constructor(name: string) {
    this.dir = join(TRACEFS, 'instances', `${name}-${process.pid}`);
  }

  static available(): boolean {
    return existsSync(join(TRACEFS, 'events', 'fuse', 'fuse_request_send'));
  }

  start(mountpoint: string): boolean {
    if (!FuseRequestTrace.available()) return false;
    try {
      this.conn = kernelDev(statSync(mountpoint).dev);
      if (!existsSync(this.dir)) mkdirSync(this.dir);
      const w = (f: string, v: string) => writeFileSync(join(this.dir, f), v);
      w('tracing_on', '0');
      w('buffer_size_kb', '8192');
      w('trace', '');
      w(
        'events/fuse/fuse_request_send/filter',
        `connection == ${this.conn} && (opcode == ${READ} || opcode == ${WRITE})`,
      );
      w('events/fuse/fuse_request_end/filter', `connection == ${this.conn}`);
      w('events/fuse/fuse_request_send/enable', '1');
      w('events/fuse/fuse_request_end/enable', '1');
      w('tracing_on', '1');
      this.active = true;
    } catch {
      this.remove();
    }
    return this.active;
  }

  stop(): FuseRequestStats | undefined {
    if (!this.active) return undefined;
    this.active = false;
    try {
      writeFileSync(join(this.dir, 'tracing_on'), '0');
      const text = readFileSync(join(this.dir, 'trace'), 'utf8');
      let lost = 0;
      for (const cpu of readdirSync(join(this.dir, 'per_cpu'))) {
        const m = /overrun: (\d+)/.exec(readFileSync(join(this.dir, 'per_cpu', cpu, 'stats'), 'utf8'));
        lost += m ? Number(m[1]) : 0;
      }
      return { ...parseTrace(text), lost };
    } catch {
      return undefined;
    } finally {
      this.remove();
    }
  }

  private remove(): void {
    try {
      writeFileSync(join(this.dir, 'events/fuse/enable'), '0');
    } catch {
      /* not created */
    }
    try {
      rmdirSync(this.dir);
    } catch {
      /* not created, or busy: the next start() reuses it */
    }
  }
}

/** Pairs each traced FUSE_READ with its reply (the reply carries the bytes read) and sums the writes. */
export function parseTrace(text: string): Omit<FuseRequestStats, 'lost'> {
  const pendingReads = new Set<string>();
  const s = { reads: 0, readBytes: 0, writes: 0, writeBytes: 0 };
  for (const line of text.split('\n')) {
    const send = /fuse_request_send: connection \d+ req (\d+) opcode (\d+) \(\w+\) len (\d+)/.exec(line);
    if (send) {
      if (Number(send[2]) === READ) {
        s.reads++;
        pendingReads.add(send[1]);
      } else {
        s.writes++;
        s.writeBytes += Math.max(0, Number(send[3]) - 80);
      }
      continue;
    }
    const end = /fuse_request_end: connection \d+ req (\d+) len (\d+) error (-?\d+)/.exec(line);
    if (end && pendingReads.delete(end[1]) && Number(end[3]) === 0) s.readBytes += Math.max(0, Number(end[2]) - 16);
  }
  return s;
}
