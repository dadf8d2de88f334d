/**
 * The hypervisor's half of an attach, on this machine: each volume is a sparse file in stateDir; when it is
 * attached to the local server it becomes a loop device with the by-id link a KVM guest would see. Every
 * command goes through exec.ts as argv. Work on one volume is serialized; stop() undoes all of it.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm, symlink, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log';
import { execFile } from '../mount/exec';
import type { DevicePlaneOptions, LinkStyle } from './types';

const GIB = 1024 ** 3;
/** Bound on one losetup/cp call; they take milliseconds unless the kernel is wedged. */
const COMMAND_TIMEOUT_MS = 30_000;
/** losetup and friends live in /usr/sbin, which a non-login PATH may lack. */
const COMMAND_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`,
};

/** The by-id name QEMU/udev gives a volume's disk: virtio truncates the serial to 20 characters. */
export function byIdName(volumeId: string, style: LinkStyle = 'virtio'): string {
  switch (style) {
    case 'virtio':
      return `virtio-${volumeId.slice(0, 20)}`;
    case 'virtio-full':
      return `virtio-${volumeId}`;
    case 'scsi':
      return `scsi-0QEMU_QEMU_HARDDISK_${volumeId.slice(0, 20)}`;
    case 'scsi-full':
      return `scsi-0QEMU_QEMU_HARDDISK_${volumeId}`;
    case 'wwn':
      return `wwn-0x${volumeId.replace(/-/g, '')}`;
  }
}

export class DevicePlane {
  private readonly loops = new Map<string, string>();
  private readonly files = new Set<string>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** losetup --find is a find-then-claim; one at a time keeps two attaches from racing for a device. */
  private losetupChain: Promise<unknown> = Promise.resolve();
  /** Set by stop(): later work is refused so nothing is created after the cleanup ran. */
  private stopped = false;

  private constructor(
    private readonly opts: DevicePlaneOptions,
    private readonly log: Logger,
  ) {}

  /** A device plane when this process can make loop devices (root, /dev/loop-control); null otherwise. */
  static async create(opts: DevicePlaneOptions, log: Logger): Promise<DevicePlane | null> {
    if (process.getuid?.() !== 0 || !existsSync('/dev/loop-control')) {
      log.warn({ byIdDir: opts.byIdDir }, 'device plane disabled: needs root and /dev/loop-control');
      return null;
    }
    await mkdir(opts.stateDir, { recursive: true });
    await mkdir(opts.byIdDir, { recursive: true });
    return new DevicePlane(opts, log);
  }

  volumeFile(volumeId: string): string {
    return join(this.opts.stateDir, `volume-${volumeId}.img`);
  }

  snapshotFile(snapshotId: string): string {
    return join(this.opts.stateDir, `snapshot-${snapshotId}.img`);
  }

  linkPath(volumeId: string): string {
    return join(this.opts.byIdDir, byIdName(volumeId, this.opts.linkStyle));
  }

  /** Creates the backing file, copying a snapshot's or volume's data sparsely when the volume is made from one. */
  createVolume(volumeId: string, sizeGiB: number, from?: { snapshotId?: string; volumeId?: string }): Promise<void> {
    return this.serial(volumeId, async () => {
      const dst = this.volumeFile(volumeId);
      const src = from?.snapshotId
        ? this.snapshotFile(from.snapshotId)
        : from?.volumeId
          ? this.volumeFile(from.volumeId)
          : undefined;
      const tmp = `${dst}.tmp`;
      this.files.add(dst);
      this.files.add(tmp);
      // Built under a temporary name, so the file appears whole and at its full size.
      if (src && existsSync(src)) await this.copySparse(src, tmp);
      else await (await open(tmp, 'w', 0o600)).close();
      await truncate(tmp, sizeGiB * GIB);
      await rename(tmp, dst);
      this.files.delete(tmp);
    });
  }

  snapshot(snapshotId: string, volumeId: string): Promise<void> {
    return this.serial(volumeId, async () => {
      const dst = this.snapshotFile(snapshotId);
      this.files.add(dst);
      await this.copySparse(this.volumeFile(volumeId), dst);
    });
  }

  async removeSnapshot(snapshotId: string): Promise<void> {
    const f = this.snapshotFile(snapshotId);
    this.files.delete(f);
    await rm(f, { force: true });
  }

  removeVolume(volumeId: string): Promise<void> {
    return this.serial(volumeId, async () => {
      await this.teardown(volumeId);
      const f = this.volumeFile(volumeId);
      this.files.delete(f);
      await rm(f, { force: true });
    });
  }

  /** Grows the backing file and tells the loop driver, as a hypervisor's block resize would. */
  resize(volumeId: string, sizeGiB: number): Promise<void> {
    return this.serial(volumeId, async () => {
      await truncate(this.volumeFile(volumeId), sizeGiB * GIB);
      const loop = this.loops.get(volumeId);
      if (loop) await this.losetup(['-c', loop]);
    });
  }

  /** Attaches the backing file to a free loop device and links it by id; resolves with /dev/loopN. */
  attach(volumeId: string): Promise<string> {
    return this.serial(volumeId, async () => {
      const existing = this.loops.get(volumeId);
      if (existing) return existing;
      const { stdout } = await this.losetup(['--find', '--show', this.volumeFile(volumeId)]);
      const loop = stdout.trim();
      this.loops.set(volumeId, loop);
      const link = this.linkPath(volumeId);
      await rm(link, { force: true });
      await symlink(loop, link);
      return loop;
    });
  }

  detach(volumeId: string): Promise<void> {
    return this.serial(volumeId, () => this.teardown(volumeId));
  }

  /** Waits for work in flight, then detaches every loop device this plane made and removes links and files. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.chains.values()]);
    for (const volumeId of [...this.loops.keys()]) {
      await this.teardown(volumeId).catch((e: unknown) =>
        this.log.error({ err: e, volumeId }, 'device plane: teardown failed'),
      );
    }
    for (const f of this.files) await rm(f, { force: true }).catch(() => undefined);
    this.files.clear();
  }

  private async teardown(volumeId: string): Promise<void> {
    const loop = this.loops.get(volumeId);
    await rm(this.linkPath(volumeId), { force: true });
    if (!loop) return;
    this.loops.delete(volumeId);
    await this.losetup(['-d', loop]);
  }

  private async copySparse(src: string, dst: string): Promise<void> {
    await execFile('cp', ['--sparse=always', '--', src, dst], { timeoutMs: COMMAND_TIMEOUT_MS, env: COMMAND_ENV });
  }

  private losetup(args: string[]): Promise<{ stdout: string }> {
    const run = this.losetupChain.then(() =>
      execFile('losetup', args, { timeoutMs: COMMAND_TIMEOUT_MS, env: COMMAND_ENV }),
    );
    this.losetupChain = run.catch(() => undefined);
    return run;
  }

  /** Runs `fn` after earlier work on the same volume; a failure is returned to this caller only. */
  private serial<T>(volumeId: string, fn: () => Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(new Error('device plane stopped'));
    const prev = this.chains.get(volumeId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.chains.set(volumeId, tail);
    void tail.then(() => {
      if (this.chains.get(volumeId) === tail) this.chains.delete(volumeId);
    });
    return run;
  }
}
