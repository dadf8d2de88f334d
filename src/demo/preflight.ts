/**
 * What the demo needs from the machine, checked before anything starts, so a user learns at once and
 * exactly what is missing instead of watching a half-run fail.
 */
import { existsSync } from 'node:fs';
import { commandExists } from '../mount/exec';

/** Tools the block part of the demo runs. */
export const DEMO_BLOCK_TOOLS = ['losetup', 'blkid', 'mkfs.ext4', 'e2fsck', 'resize2fs', 'mount', 'umount'];

/** One line per missing prerequisite, each saying how to get it; empty when the demo can run. */
export async function demoPrerequisiteProblems(): Promise<string[]> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('not running as root: the demo mounts real filesystems on loop devices (run it with sudo)');
  if (!existsSync('/dev/loop-control')) problems.push('/dev/loop-control is missing: the kernel has no loop device support here (modprobe loop)');
  for (const tool of DEMO_BLOCK_TOOLS) {
    if (!(await commandExists(tool))) problems.push(`${tool} is not installed (Debian: .ci/install-deps installs it)`);
  }
  return problems;
}
