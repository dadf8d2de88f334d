/**
 * The one interface the CSI Node service uses for block volumes, about the size of the reference's IMount,
 * and its real implementation over exec + the kernel. Owns per-device serialization of staging (so two
 * calls can never both see a device blank and both format it) and the idempotent publish helpers.
 */
import { mkdir, open, realpath, rmdir, unlink, lstat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CodedError, Status, messageOf } from '../errors';
import { silentLogger, type Logger } from '../log';
import { execFile, type Exec } from './exec';
import { deviceSizeBytes, rescanDevice, type ToolDeps } from './block-device';
import {
  DEFAULT_BY_ID_DIR,
  createBusRescanner,
  waitForDevice,
  type BusRescanner,
  type FoundDevice,
  type WaitForDeviceOptions,
} from './devices';
import { probeDevice, resizeFilesystem, type ProbeResult } from './filesystem';
import { findMountByTarget, isMountPoint, type MountInfo } from './mountinfo';
import { bindMount, cleanupMountPoint, fsStats, isMountPointOf, type CleanupOptions, type FsStats } from './mounter';
import { stageFilesystem, type StageRequest, type StageResult } from './stage';

/** Mode of a publish target directory we create. */
export const TARGET_DIR_MODE = 0o750;
/** Mode of the empty file a raw block device is bound onto. */
export const BLOCK_TARGET_FILE_MODE = 0o660;

export type PathKind = 'missing' | 'directory' | 'block-device' | 'file' | 'stale';

export interface PublishOptions {
  readOnly: boolean;
  mountFlags?: readonly string[];
}

export interface NodeMounter {
  /** See devices.ts waitForDevice; the by-id directory comes from the deps unless given. */
  waitForDevice(volumeId: string, opts?: WaitForDeviceOptions): Promise<FoundDevice>;
  /** See stage.ts stageFilesystem; serialized per device. */
  stageFilesystem(req: StageRequest): Promise<StageResult>;
  /**
   * Bind-mounts a staged directory onto `target` (created if missing). Already published from the same
   * source with the same read-only mode → alreadyPublished. Throws CodedError ALREADY_EXISTS when
   * something else, or the same thing in the other mode, is mounted there.
   */
  publishBind(source: string, target: string, opts: PublishOptions): Promise<{ alreadyPublished: boolean }>;
  /** Binds a raw block device node onto the file `target` (created, parent too); same rules as publishBind. */
  publishBlock(device: string, target: string, opts: PublishOptions): Promise<{ alreadyPublished: boolean }>;
  /** See mounter.ts cleanupMountPoint: unmount all, remove; missing or unmounted → success. */
  cleanupMountPoint(path: string, opts?: CleanupOptions): Promise<void>;
  isMountPoint(path: string): Promise<boolean>;
  isMountPointOf(path: string, device: string): Promise<boolean>;
  /** Topmost mount at `path` (its `source` is the device for NodeExpand), undefined when none. */
  findMount(path: string): Promise<MountInfo | undefined>;
  probeDevice(device: string): Promise<ProbeResult>;
  /** Grows the filesystem mounted at `mountPath`; its type is read from mountinfo when not given. */
  resizeFilesystem(device: string, mountPath: string, fsType?: string): Promise<void>;
  rescanDevice(device: string): Promise<boolean>;
  deviceSizeBytes(device: string): Promise<number>;
  fsStats(path: string): Promise<FsStats>;
  /** What is at `path`, without throwing for a stale mount point. */
  pathKind(path: string): Promise<PathKind>;
}

export interface NodeMounterDeps {
  exec?: Exec;
  log?: Logger;
  byIdDir?: string;
  sysDir?: string;
  rescanner?: BusRescanner;
}

/** Runs functions one at a time per key; keys are independent. */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.tails.set(key, next);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === next) this.tails.delete(key);
    }
  }
}

export class KernelNodeMounter implements NodeMounter {
  private readonly tools: ToolDeps;
  private readonly byIdDir: string;
  private readonly rescanner: BusRescanner;
  private readonly stageLock = new KeyedLock();

  constructor(deps: NodeMounterDeps = {}) {
    this.tools = { exec: deps.exec ?? execFile, log: deps.log ?? silentLogger, sysDir: deps.sysDir };
    this.byIdDir = deps.byIdDir ?? DEFAULT_BY_ID_DIR;
    this.rescanner = deps.rescanner ?? createBusRescanner(this.tools);
  }

  waitForDevice(volumeId: string, opts: WaitForDeviceOptions = {}): Promise<FoundDevice> {
    return waitForDevice(this.tools, volumeId, { byIdDir: this.byIdDir, rescanner: this.rescanner, ...opts });
  }

  async stageFilesystem(req: StageRequest): Promise<StageResult> {
    const key = await realpath(req.device).catch(() => req.device);
    return this.stageLock.run(key, () => stageFilesystem(this.tools, req));
  }

  async publishBind(source: string, target: string, opts: PublishOptions): Promise<{ alreadyPublished: boolean }> {
    const src = await findMountByTarget(source);
    return this.publish(
      target,
      opts,
      'directory',
      async (top) => {
        return src !== undefined && top.major === src.major && top.minor === src.minor && top.root === src.root;
      },
      source,
    );
  }

  async publishBlock(device: string, target: string, opts: PublishOptions): Promise<{ alreadyPublished: boolean }> {
    return this.publish(target, opts, 'file', () => isMountPointOf(target, device), device);
  }

  private async publish(
    target: string,
    opts: PublishOptions,
    kind: 'directory' | 'file',
    isSame: (top: MountInfo) => Promise<boolean>,
    source: string,
  ): Promise<{ alreadyPublished: boolean }> {
    const top = await findMountByTarget(target);
    if (top) {
      const ro = top.mountOptions.includes('ro');
      if ((await isSame(top)) && ro === opts.readOnly) return { alreadyPublished: true };
      throw new CodedError(
        Status.ALREADY_EXISTS,
        `target_path ${target} already has ${top.source} mounted (${ro ? 'ro' : 'rw'}), ` +
          `incompatible with ${source} (${opts.readOnly ? 'ro' : 'rw'})`,
      );
    }
    const created = await this.createTarget(target, kind);
    try {
      await bindMount(this.tools, source, target, opts.readOnly, opts.mountFlags ?? []);
    } catch (e) {
      if (created) await (kind === 'directory' ? rmdir(target) : unlink(target)).catch(() => undefined);
      throw e;
    }
    return { alreadyPublished: false };
  }

  /** Creates the mount target; returns whether we created it (and so should remove it on failure). */
  private async createTarget(target: string, kind: 'directory' | 'file'): Promise<boolean> {
    if ((await this.pathKind(target)) !== 'missing') return false;
    if (kind === 'directory') {
      await mkdir(target, { recursive: true, mode: TARGET_DIR_MODE });
    } else {
      await mkdir(dirname(target), { recursive: true, mode: TARGET_DIR_MODE });
      await (await open(target, 'a', BLOCK_TARGET_FILE_MODE)).close();
    }
    return true;
  }

  cleanupMountPoint(path: string, opts?: CleanupOptions): Promise<void> {
    return cleanupMountPoint(this.tools, path, opts);
  }

  isMountPoint(path: string): Promise<boolean> {
    return isMountPoint(path);
  }

  isMountPointOf(path: string, device: string): Promise<boolean> {
    return isMountPointOf(path, device);
  }

  findMount(path: string): Promise<MountInfo | undefined> {
    return findMountByTarget(path);
  }

  probeDevice(device: string): Promise<ProbeResult> {
    return probeDevice(this.tools, device);
  }

  async resizeFilesystem(device: string, mountPath: string, fsType?: string): Promise<void> {
    const type = fsType ?? (await findMountByTarget(mountPath))?.fsType;
    if (!type) throw new CodedError(Status.FAILED_PRECONDITION, `nothing is mounted at ${mountPath} to resize`);
    await resizeFilesystem(this.tools, device, mountPath, type);
  }

  rescanDevice(device: string): Promise<boolean> {
    return rescanDevice(this.tools, device);
  }

  deviceSizeBytes(device: string): Promise<number> {
    return deviceSizeBytes(this.tools, device);
  }

  fsStats(path: string): Promise<FsStats> {
    return fsStats(path);
  }

  async pathKind(path: string): Promise<PathKind> {
    try {
      const st = await lstat(path);
      if (st.isDirectory()) return 'directory';
      if (st.isBlockDevice()) return 'block-device';
      return 'file';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'missing';
      if (code === 'ENOTCONN' || code === 'EIO' || code === 'ESTALE') return 'stale';
      throw new CodedError(Status.INTERNAL, `cannot stat ${path}: ${messageOf(e)}`, { cause: e });
    }
  }
}
