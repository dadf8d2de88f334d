/**
 * A real stale FUSE mount for tests: mount with an open /dev/fuse descriptor, then close it, so the mount
 * stays in the table but every stat of it fails with ENOTCONN, as after a FUSE daemon's death.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';

export async function staleFuseMount(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  const fd = openSync('/dev/fuse', 'r+');
  try {
    const r = spawnSync(
      'mount',
      ['-i', '-t', 'fuse', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'stale-test', path],
      {
        stdio: ['ignore', 'pipe', 'pipe', fd],
      },
    );
    if (r.status !== 0) throw new Error(`fuse mount failed: ${r.stderr}`);
  } finally {
    closeSync(fd);
  }
}
