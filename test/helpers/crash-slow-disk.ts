/**
 * A slow disk for crash tests: a cgroup whose writes to one block device are throttled (cgroup v1 blkio
 * or v2 io.max), so a command of the driver's that is over in milliseconds on a loop device runs long
 * enough to be killed at a chosen point. Processes added to it, and their children, are throttled.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { splitDevT } from '../../src/mount/mountinfo';

const V1_ROOT = '/sys/fs/cgroup/blkio';
const V2_ROOT = '/sys/fs/cgroup';

export interface SlowDisk {
  /** Throttles this process and everything it starts from now on. */
  addProcess(pid: number): Promise<void>;
  /** Moves what is left back to the root cgroup and removes the throttling cgroup. */
  close(): Promise<void>;
}

/** Throttles writes to `device` to `bytesPerSecond`. Throws when neither cgroup flavour allows it. */
export async function slowDisk(device: string, bytesPerSecond: number): Promise<SlowDisk> {
  const { major, minor } = splitDevT((await stat(device)).rdev);
  const name = `cinder-csi-slow-${process.pid}-${Date.now()}`;
  let root: string;
  if (existsSync(join(V1_ROOT, 'blkio.throttle.write_bps_device'))) {
    root = V1_ROOT;
    await mkdir(join(root, name));
    await writeFile(join(root, name, 'blkio.throttle.write_bps_device'), `${major}:${minor} ${bytesPerSecond}`);
  } else if (
    (await readFile(join(V2_ROOT, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/).includes('io')
  ) {
    root = V2_ROOT;
    await writeFile(join(root, 'cgroup.subtree_control'), '+io');
    await mkdir(join(root, name));
    await writeFile(join(root, name, 'io.max'), `${major}:${minor} wbps=${bytesPerSecond}`);
  } else {
    throw new Error('no block I/O throttling here: neither cgroup v1 blkio nor a cgroup v2 io controller');
  }
  const dir = join(root, name);
  return {
    addProcess: (pid) => writeFile(join(dir, 'cgroup.procs'), String(pid)),
    async close() {
      const left = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
      for (const pid of left) await writeFile(join(root, 'cgroup.procs'), pid).catch(() => undefined);
      await rmdir(dir);
    },
  };
}
