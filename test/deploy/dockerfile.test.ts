/**
 * The image recipe (Dockerfile): two stages on node:20-bookworm-slim (a build arg overrides it), dev dependencies
 * pruned, the node tools installed, only runtime files copied. The built image itself is checked in test/image.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './manifest-helpers';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

describe('Dockerfile', () => {
  const stages = dockerfile.split(/^FROM\s+/m).slice(1);
  const final = stages[stages.length - 1];

  it('builds on node:20-bookworm-slim, overridable by the BASE_IMAGE build arg, in two stages and prunes dev dependencies', () => {
    expect(/^ARG BASE_IMAGE=(\S+)$/m.exec(dockerfile.split(/^FROM\s/m)[0])?.[1]).toBe('node:20-bookworm-slim');
    expect(stages.map((s) => s.split(/\s/)[0])).toEqual(['${BASE_IMAGE}', '${BASE_IMAGE}']);
    expect(stages[0]).toMatch(/npm ci/);
    expect(stages[0]).toMatch(/npm run build -- --sourceMap false && npm prune --omit=dev/);
    expect(stages[0]).not.toMatch(/^COPY (bench|test)\b/m);
    expect(final).not.toMatch(/npm (ci|install)/);
  });

  it('installs the node tools and copies only the runtime files', () => {
    for (const pkg of [
      'e2fsprogs',
      'xfsprogs',
      'btrfs-progs',
      'util-linux',
      'mount',
      'udev',
      's3fs',
      'rclone',
      'fuse3',
      'ca-certificates',
    ]) {
      expect(final).toMatch(new RegExp(`\\s${pkg}\\s`));
    }
    const copied = [...final.matchAll(/^COPY --from=build \/app\/(\S+)/gm)].map((m) => m[1]).sort();
    expect(copied).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'proto']);
    expect(final).toMatch(/^ENTRYPOINT \["node", ("--[a-z-]+(=\S+)?", )*"\/app\/bin\/cinder-csi-plugin"\]$/m);
  });

  it("puts a launcher at the reference image's /bin/cinder-csi-plugin with the ENTRYPOINT's node flags", () => {
    expect(final).toMatch(/^COPY image\/cinder-csi-plugin \/bin\/cinder-csi-plugin$/m);
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(final)![1]) as string[];
    const exec = /^exec (.*) "\$@"$/m.exec(readFileSync(join(ROOT, 'image', 'cinder-csi-plugin'), 'utf8'))![1];
    expect(exec.split(' ')).toEqual(entrypoint);
    expect(statSync(join(ROOT, 'image', 'cinder-csi-plugin')).mode & 0o111).toBe(0o111);
  });

  it('the launcher the ENTRYPOINT names exists', () => {
    expect(existsSync(join(ROOT, 'bin', 'cinder-csi-plugin'))).toBe(true);
    expect(existsSync(join(ROOT, 'proto', 'csi.proto'))).toBe(true);
  });
});
