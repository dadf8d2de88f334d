/** Reading rclone's VFS cache metadata for uploads that have not finished (src/fuse/rclone-cache.ts). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pendingUploads } from '../../src/fuse/rclone-cache';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rclone-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** One metadata file as rclone 1.60 writes it (vfsMeta/<remote>/<bucket>/<path>). */
function meta(path: string, content: string): void {
  const file = join(dir, 'vfsMeta', 'vol', 'bucket', path);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, content);
}

it('names the dirty files at any depth and leaves out the uploaded ones', async () => {
  meta('a.txt', JSON.stringify({ Size: 4, Dirty: true }));
  meta('sub/deeper/b.bin', JSON.stringify({ Size: 9, Dirty: true }));
  meta('c.txt', JSON.stringify({ Size: 4, Dirty: false }));
  expect((await pendingUploads(dir)).sort()).toEqual(['vol/bucket/a.txt', 'vol/bucket/sub/deeper/b.bin']);
});

it('counts a metadata file cut short by a killed daemon as nothing (rclone drops that item itself)', async () => {
  meta('empty.txt', '');
  meta('half.txt', '{"Size": 4, "Dir');
  expect(await pendingUploads(dir)).toEqual([]);
});

it('answers [] for a cache that was never made', async () => {
  expect(await pendingUploads(join(dir, 'nothing-here'))).toEqual([]);
});
