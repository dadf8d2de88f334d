/**
 * Test harness for real loop devices: sparse backing files in a temp dir, devices attached with
 * `losetup --find --show` and tracked, so cleanup detaches only ours (the simulator has its own), and
 * a recording exec that proves which tools ran.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, type Exec } from '../../src/mount/exec';
import { readMountInfo } from '../../src/mount/mountinfo';
import { silentLogger } from '../../src/log';
import type { ToolDeps } from '../../src/mount/block-device';

export const MiB = 1024 * 1024;
/** mkfs.xfs refuses devices under 300 MiB (xfsprogs ≥ 5.19). */
export const XFS_MIN_BYTES = 320 * MiB;

export interface LoopDevice {
  dev: string;
  file: string;
}

export class LoopHarness {
  readonly devices: LoopDevice[] = [];
  private files = 0;
  private constructor(readonly dir: string) {}

  static async create(prefix = 'mount-test-'): Promise<LoopHarness> {
    return new LoopHarness(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** A new sparse file of `bytes` attached to a free loop device. */
  async attach(bytes: number): Promise<LoopDevice> {
    const file = join(this.dir, `disk${this.files++}.img`);
    await (await open(file, 'w')).close();
    await truncate(file, bytes);
    const { stdout } = await execFile('losetup', ['--find', '--show', file]);
    const d = { dev: stdout.trim(), file };
    this.devices.push(d);
    return d;
  }

  /** Grows the backing file and tells the loop driver, as a Cinder extend + rescan would. */
  async grow(d: LoopDevice, bytes: number): Promise<void> {
    await truncate(d.file, bytes);
    await execFile('losetup', ['-c', d.dev]);
  }

  /** A path inside the harness's temp dir (not created). */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Lazily unmounts everything under our dir or from our devices, detaches our devices, removes the dir. */
  async cleanup(): Promise<void> {
    const ours = new Set(this.devices.map((d) => d.dev));
    const mounts = (await readMountInfo().catch(() => [])).filter(
      (m) => m.mountPoint.startsWith(this.dir + '/') || ours.has(m.source),
    );
    for (const m of mounts.reverse()) {
      await execFile('umount', ['-l', m.mountPoint]).catch(() => undefined);
    }
    for (const d of this.devices) {
      await execFile('losetup', ['-d', d.dev]).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface ExecCall {
  cmd: string;
  args: string[];
}

/** Deps whose exec records every call and then runs the real command. */
export function recordingDeps(inner: Exec = execFile): ToolDeps & { calls: ExecCall[] } {
  const calls: ExecCall[] = [];
  const exec: Exec = (cmd, args, opts) => {
    calls.push({ cmd, args: [...args] });
    return inner(cmd, args, opts);
  };
  return { exec, log: silentLogger, calls };
}

/** Writes a DOS partition table with one Linux partition into the first sector of `file`. */
export async function writeDosPartitionTable(file: string): Promise<void> {
  const mbr = Buffer.alloc(512);
  const entry = 446;
  mbr[entry + 4] = 0x83; // Linux
  mbr.writeUInt32LE(2048, entry + 8); // first LBA
  mbr.writeUInt32LE(8192, entry + 12); // sectors
  mbr.writeUInt32LE(0x12345678, 440); // disk signature
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fh = await open(file, 'r+');
  try {
    await fh.write(mbr, 0, 512, 0);
  } finally {
    await fh.close();
  }
}

/** CAP_SYS_RESOURCE (capability(7) bit 24): ext4 online resize needs it; some sandboxes drop it. */
export function hasCapSysResource(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapEff:'));
  return line !== undefined && (BigInt(`0x${line.split(/\s+/)[1]}`) & (1n << 24n)) !== 0n;
}
