/**
 * What rclone's VFS cache still owes the object store. rclone (`--vfs-cache-mode writes`) answers close() once a
 * file is in its cache dir and uploads it after (`--vfs-write-back`); until the upload is done the file's
 * metadata, `<cache>/vfsMeta/<remote path>`, says `"Dirty": true`, and a later rclone started on the same cache
 * dir uploads it. So a cache dir holding dirty files must outlive the daemon, and is never deleted while it does.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** The files under `cacheDir` whose upload has not finished (paths relative to the metadata root); [] for none. */
export async function pendingUploads(cacheDir: string): Promise<string[]> {
  const root = join(cacheDir, 'vfsMeta');
  const pending: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // no cache yet, or removed meanwhile
    }
    for (const d of entries) {
      const p = join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else if (d.isFile() && (await isDirty(p))) pending.push(relative(root, p));
    }
  };
  await walk(root);
  return pending;
}

async function isDirty(metaFile: string): Promise<boolean> {
  try {
    return (JSON.parse(await readFile(metaFile, 'utf8')) as { Dirty?: unknown }).Dirty === true;
  } catch {
    // Unreadable or cut short (a daemon killed while rewriting it): rclone itself drops such an item at start.
    return false;
  }
}
