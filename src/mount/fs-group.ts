/**
 * A pod's fsGroup applied to a mounted filesystem by the driver, as kubelet does it when the driver does not
 * advertise VOLUME_MOUNT_GROUP (pkg/volume/volume_linux.go SetVolumeOwnership, policy Always): every file and
 * directory gets the group, group read/write (plus search and setgid on directories, so new files inherit the
 * group). Needed only when the node advertises VOLUME_MOUNT_GROUP (`--volume-mount-group`): kubelet then leaves
 * fsGroup to the driver for every volume of the node, block ones included.
 */
import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const GROUP_RW = 0o660;
const DIR_EXTRA = 0o110 | 0o2000;

/** Gives `root` and everything under it group `gid` with group rw (dirs: rwx + setgid). Symlinks: group only. */
export async function applyFsGroup(root: string, gid: number): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    await lchown(path, -1, gid);
    if (st.isSymbolicLink()) return;
    // chown clears setuid/setgid on files; the mode is set after it.
    const mode = (st.mode & 0o7777) | GROUP_RW | (st.isDirectory() ? DIR_EXTRA : 0);
    if (mode !== (st.mode & 0o7777) || st.isDirectory()) await chmod(path, mode);
    if (!st.isDirectory()) return;
    for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
}
