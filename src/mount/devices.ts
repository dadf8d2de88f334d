/**
 * Finds the block device of an attached Cinder volume by its serial in /dev/disk/by-id, the way the
 * reference does (cinder-csi-plugin.md §2) but event-driven: fs.watch wakes us when udev adds the link,
 * a cheap readdir poll backs the watch up, and throttled bus rescans nudge a slow hypervisor or udev.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, Status, isCodedError, messageOf } from '../errors';
import { SYS_DIR, deviceSizeBytes, rescanDevice, resolveBlockDevice, type ToolDeps } from './block-device';

export const DEFAULT_BY_ID_DIR = '/dev/disk/by-id';
/** Present when udevd runs (systemd's udev creates it); absent in minimal containers. */
export const UDEV_CONTROL_PATH = '/run/udev/control';
/** Overall wait when the caller gives no deadline; the reference gives up after ≈28 s. */
export const DEVICE_WAIT_TIMEOUT_MS = 30_000;
/** Backstop poll of the by-id directory in case a watch event is lost; one readdir each. */
export const DEVICE_POLL_INTERVAL_MS = 100;
/** Least time between two bus rescans: a SCSI scan or udev trigger costs far more than a readdir. */
export const BUS_RESCAN_INTERVAL_MS = 1_000;
/** Bound passed to `udevadm settle --timeout`, seconds. */
export const UDEV_SETTLE_TIMEOUT_S = 5;
/** QEMU truncates a virtio-blk serial to 20 characters (VIRTIO_BLK_ID_BYTES). */
const VIRTIO_SERIAL_CHARS = 20;

/**
 * by-id names under which an attached volume can appear, in the reference's order: virtio-blk and
 * virtio-scsi with the serial truncated and whole (#852), then VMware's WWN. Short ids yield duplicates
 * that are dropped.
 */
export function deviceLinkCandidates(volumeId: string): string[] {
  const short = volumeId.slice(0, VIRTIO_SERIAL_CHARS);
  const names = [
    `virtio-${short}`,
    `virtio-${volumeId}`,
    `scsi-0QEMU_QEMU_HARDDISK_${short}`,
    `scsi-0QEMU_QEMU_HARDDISK_${volumeId}`,
    `wwn-0x${volumeId.replace(/-/g, '')}`,
  ];
  return [...new Set(names)];
}

/** Path of the first candidate link present in `byIdDir`, or undefined (also when the directory is missing). */
export async function findDeviceLink(volumeId: string, byIdDir = DEFAULT_BY_ID_DIR): Promise<string | undefined> {
  let entries: Set<string>;
  try {
    entries = new Set(await readdir(byIdDir));
  } catch {
    return undefined;
  }
  const hit = deviceLinkCandidates(volumeId).find((c) => entries.has(c));
  return hit === undefined ? undefined : join(byIdDir, hit);
}

/** Asks the kernel and udev to look for new disks. Tests pass a counting one. */
export interface BusRescanner {
  rescan(signal?: AbortSignal): Promise<void>;
}

export interface BusRescannerOptions {
  udevControlPath?: string;
  settleTimeoutS?: number;
}

/**
 * The real rescanner: "- - -" into every `/sys/class/scsi_host/*\/scan` (all channels, targets, LUNs),
 * then, where udev runs, a change event for block devices only and a bounded `udevadm settle`.
 * Every failure is logged and swallowed: a rescan is a hint, never a reason to fail the wait.
 */
export function createBusRescanner(deps: ToolDeps, opts: BusRescannerOptions = {}): BusRescanner {
  const sysDir = deps.sysDir ?? SYS_DIR;
  const udevControl = opts.udevControlPath ?? UDEV_CONTROL_PATH;
  const settleS = opts.settleTimeoutS ?? UDEV_SETTLE_TIMEOUT_S;
  return {
    async rescan(signal) {
      const hostsDir = `${sysDir}/class/scsi_host`;
      const hosts = await readdir(hostsDir).catch(() => [] as string[]);
      await Promise.all(
        hosts.map((h) =>
          writeFile(join(hostsDir, h, 'scan'), '- - -').catch((e) =>
            deps.log.debug({ host: h, err: messageOf(e) }, 'scsi host scan failed'),
          ),
        ),
      );
      const hasUdev = await access(udevControl).then(
        () => true,
        () => false,
      );
      if (!hasUdev) return;
      try {
        await deps.exec('udevadm', ['trigger', '--action=change', '--subsystem-match=block'], { signal });
        await deps.exec('udevadm', ['settle', `--timeout=${settleS}`], { signal, timeoutMs: (settleS + 2) * 1000 });
      } catch (e) {
        deps.log.debug({ err: messageOf(e) }, 'udev rescan failed');
      }
    },
  };
}

/** The device of a volume, resolved and sized. */
export interface FoundDevice {
  volumeId: string;
  /** The by-id link that matched. */
  link: string;
  /** Canonical device node, e.g. `/dev/vdb`. */
  path: string;
  sizeBytes: number;
}

export interface WaitForDeviceOptions {
  byIdDir?: string;
  signal?: AbortSignal;
  /** How long to wait at most, ms from the call. Default DEVICE_WAIT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Absolute deadline, ms since the epoch (e.g. a gRPC deadline); the earlier of the two bounds wins. */
  deadlineMs?: number;
  pollIntervalMs?: number;
  rescanIntervalMs?: number;
  /** Default: createBusRescanner(deps). */
  rescanner?: BusRescanner;
}

/**
 * Waits for the device of `volumeId` to appear, resolves it and reads its size (a 0-byte device is
 * rescanned at once, reference issue #2588, then again at the rescan interval until it reports a size).
 * Throws CodedError DEADLINE_EXCEEDED when no usable device shows up in time or the signal aborts (the
 * message names the volume, the directory and the candidates), FAILED_PRECONDITION when the link
 * resolves to something other than a whole-disk block device under /dev/.
 */
export async function waitForDevice(
  deps: ToolDeps,
  volumeId: string,
  opts: WaitForDeviceOptions = {},
): Promise<FoundDevice> {
  const byIdDir = opts.byIdDir ?? DEFAULT_BY_ID_DIR;
  const pollMs = opts.pollIntervalMs ?? DEVICE_POLL_INTERVAL_MS;
  const rescanMs = opts.rescanIntervalMs ?? BUS_RESCAN_INTERVAL_MS;
  const end = Math.min(Date.now() + (opts.timeoutMs ?? DEVICE_WAIT_TIMEOUT_MS), opts.deadlineMs ?? Infinity);
  const rescanner = opts.rescanner ?? createBusRescanner(deps);
  // Our own controller so a rescan still running when we return (udevadm settle) is stopped with us.
  const inner = new AbortController();
  const onAbort = () => inner.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const waker = new Waker(byIdDir);
  let lastRescan = -Infinity;
  let rescanning = false;
  let lastDeviceRescan = -Infinity;
  let zeroDevice: string | undefined;
  const giveUp = (why: string) => {
    const r = opts.signal?.reason;
    if (opts.signal?.aborted && isCodedError(r)) return r;
    return new CodedError(
      Status.DEADLINE_EXCEEDED,
      `volume ${volumeId}: ${why} (looked in ${byIdDir} for ${deviceLinkCandidates(volumeId).join(', ')})`,
    );
  };
  try {
    for (;;) {
      if (inner.signal.aborted) throw giveUp('cancelled while waiting for its device');
      const link = await findDeviceLink(volumeId, byIdDir);
      if (link !== undefined) {
        const found = await inspect(link);
        if (found) return found;
      }
      const now = Date.now();
      if (now >= end) {
        throw giveUp(zeroDevice ? `device ${zeroDevice} still reports 0 bytes` : 'no device link appeared in time');
      }
      if (!rescanning && now - lastRescan >= rescanMs) {
        lastRescan = now;
        rescanning = true;
        void rescanner
          .rescan(inner.signal)
          .catch((e) => deps.log.debug({ err: messageOf(e) }, 'bus rescan failed'))
          .finally(() => (rescanning = false));
      }
      await waker.sleep(Math.min(pollMs, end - now), inner.signal);
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    inner.abort();
    waker.close();
  }

  async function inspect(link: string): Promise<FoundDevice | undefined> {
    let dev;
    try {
      dev = await resolveBlockDevice(link, deps.sysDir);
    } catch (e) {
      // A link dangling for a moment while udev replaces it is not an answer yet.
      if (isCodedError(e) && e.code === Status.NOT_FOUND) return undefined;
      throw new CodedError(Status.FAILED_PRECONDITION, `volume ${volumeId}: ${messageOf(e)}`);
    }
    if (dev.isPartition) {
      throw new CodedError(
        Status.FAILED_PRECONDITION,
        `volume ${volumeId}: ${link} resolves to partition ${dev.path}, expected a whole disk`,
      );
    }
    let sizeBytes = await deviceSizeBytes(deps, dev.path);
    if (sizeBytes === 0 && Date.now() - lastDeviceRescan >= rescanMs) {
      lastDeviceRescan = Date.now();
      await rescanDevice(deps, dev.path).catch((e) =>
        deps.log.warn({ device: dev.path, err: messageOf(e) }, 'rescan failed'),
      );
      sizeBytes = await deviceSizeBytes(deps, dev.path);
    }
    if (sizeBytes === 0) {
      zeroDevice = dev.path;
      return undefined;
    }
    return { volumeId, link, path: dev.path, sizeBytes };
  }
}

/** Sleeps until a timeout, an event in the watched directory, or an abort. Watches lazily: the directory may not exist yet. */
class Waker {
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly dir: string) {
    this.ensureWatch();
  }

  private ensureWatch(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.wake?.());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // Directory not there yet (no disk attached since boot): the poll covers it and we retry next time.
    }
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.ensureWatch();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
