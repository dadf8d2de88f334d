/**
 * Facts about one block device node from the kernel: what a path resolves to, its size and whether it is
 * a partition (sysfs), and asking the kernel to re-read its geometry. Finding the device of a volume is
 * devices.ts; what is written on it is filesystem.ts.
 */
import { readFile, realpath, stat, writeFile, access } from 'node:fs/promises';
import { basename } from 'node:path';
import { CodedError, Status, messageOf } from '../errors';
import type { Exec } from './exec';
import type { Logger } from '../log';
import { splitDevT } from './mountinfo';

export const SYS_DIR = '/sys';
/** sysfs reports sizes in 512-byte sectors whatever the logical block size (block/stat.rst). */
const SECTOR_BYTES = 512;

/** What the mount layer needs to run tools; tests wrap `exec` in a recording spy. */
export interface ToolDeps {
  exec: Exec;
  log: Logger;
  /** Root of sysfs; tests may point it at a temp tree. Default `/sys`. */
  sysDir?: string;
}

/** A device node reached from a link, checked to be a block device under /dev. */
export interface ResolvedDevice {
  /** Canonical node, e.g. `/dev/vdb`. */
  path: string;
  /** Kernel name, e.g. `vdb`, `loop3`. */
  name: string;
  isPartition: boolean;
}

/**
 * Resolves symlinks and checks the result is a block device node under /dev/.
 * Throws CodedError FAILED_PRECONDITION for anything else; NOT_FOUND when the path does not exist.
 */
export async function resolveBlockDevice(path: string, sysDir = SYS_DIR): Promise<ResolvedDevice> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    throw new CodedError(Status.NOT_FOUND, `device ${path} does not exist: ${messageOf(e)}`);
  }
  if (!real.startsWith('/dev/')) {
    throw new CodedError(Status.FAILED_PRECONDITION, `${path} resolves to ${real}, which is not under /dev/`);
  }
  const st = await stat(real);
  if (!st.isBlockDevice()) {
    throw new CodedError(Status.FAILED_PRECONDITION, `${path} resolves to ${real}, which is not a block device`);
  }
  const name = basename(real);
  return { path: real, name, isPartition: await exists(`${sysDir}/class/block/${name}/partition`) };
}

/** Whether `p` can be accessed (follows symlinks). */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The sysfs directory and kernel name of any block device node, found by device number so it also works
 * for a node outside /dev (a raw-block publish target is a bind of the node onto a kubelet file).
 * Throws CodedError NOT_FOUND for a missing path, FAILED_PRECONDITION for one that is not a block device.
 */
async function sysBlockOf(path: string, sysDir = SYS_DIR): Promise<{ sysPath: string; name: string }> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new CodedError(Status.NOT_FOUND, `device ${path} does not exist: ${messageOf(e)}`);
  }
  if (!st.isBlockDevice()) throw new CodedError(Status.FAILED_PRECONDITION, `${path} is not a block device`);
  const { major, minor } = splitDevT(st.rdev);
  const link = `${sysDir}/dev/block/${major}:${minor}`;
  const sysPath = await realpath(link).catch(() => link);
  return { sysPath, name: basename(sysPath) };
}

/**
 * Size of a block device in bytes, from sysfs (`size` × 512) or, where sysfs lacks the device,
 * `blockdev --getsize64`. Accepts any path to the node. Throws CodedError NOT_FOUND for a missing
 * path, FAILED_PRECONDITION when it is not a block device.
 */
export async function deviceSizeBytes(deps: ToolDeps, device: string): Promise<number> {
  const { sysPath } = await sysBlockOf(device, deps.sysDir);
  try {
    const n = Number((await readFile(`${sysPath}/size`, 'utf8')).trim());
    if (Number.isFinite(n)) return n * SECTOR_BYTES;
  } catch {
    // fall through to blockdev
  }
  const { stdout } = await deps.exec('blockdev', ['--getsize64', device]);
  return Number(stdout.trim());
}

/**
 * Asks the kernel to re-read a device's size: writes "1" to the device's sysfs `device/rescan` where
 * the driver offers it (SCSI, virtio-scsi), `losetup -c` for loop devices. Returns whether a rescan was
 * requested; false (logged) for a device with no way to rescan (virtio-blk updates itself).
 * Reference issue #2588: a just-attached volume can read as 0 bytes until rescanned.
 */
export async function rescanDevice(deps: ToolDeps, device: string): Promise<boolean> {
  const { sysPath, name } = await sysBlockOf(device, deps.sysDir);
  const rescanPath = `${sysPath}/device/rescan`;
  if (await exists(rescanPath)) {
    await writeFile(rescanPath, '1');
    return true;
  }
  if (/^loop\d+$/.test(name)) {
    await deps.exec('losetup', ['-c', `/dev/${name}`]);
    return true;
  }
  deps.log.debug({ device }, 'device has no rescan interface');
  return false;
}
