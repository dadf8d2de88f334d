/**
 * What the demo needs from the machine, checked before anything starts, so a user learns at once and
 * exactly what is missing instead of watching a half-run fail.
 */
import { existsSync } from 'node:fs';
import { commandExists } from '../mount/exec';

/** Tools the demo runs: the block part, then the object part's FUSE mounter. */
export const DEMO_TOOLS = [
  'losetup',
  'blkid',
  'mkfs.ext4',
  'e2fsck',
  'resize2fs',
  'mount',
  'umount',
  's3fs',
  'fusermount',
];

/** One line per missing prerequisite, each saying how to get it; empty when the demo can run. */
export async function demoPrerequisiteProblems(): Promise<string[]> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push('not running as root: the demo mounts real filesystems on loop devices (run it with sudo)');
  if (!existsSync('/dev/loop-control'))
    problems.push('/dev/loop-control is missing: the kernel has no loop device support here (modprobe loop)');
  if (!existsSync('/dev/fuse')) problems.push('/dev/fuse is missing: the object volume needs FUSE (modprobe fuse)');
  for (const tool of DEMO_TOOLS) {
    if (!(await commandExists(tool))) problems.push(`${tool} is not installed (Debian: .ci/install-deps installs it)`);
  }
  try {
    require.resolve('s3rver');
  } catch {
    problems.push('the s3rver npm package is missing: the demo plays S3 with it (run `npm ci` in the repository)');
  }
  return problems;
}
