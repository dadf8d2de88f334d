/**
 * The image recipe (Dockerfile): two stages on node:22-bookworm-slim, dev dependencies pruned, the node tools
 * installed, only runtime files copied. No Docker engine runs here, so the file is read, not built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './manifest-helpers';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

describe('Dockerfile', () => {
  const stages = dockerfile.split(/^FROM\s+/m).slice(1);
  const final = stages[stages.length - 1];

  it('builds on node:22-bookworm-slim in two stages and prunes dev dependencies', () => {
    expect(stages.map((s) => s.split(/\s/)[0])).toEqual(['node:22-bookworm-slim', 'node:22-bookworm-slim']);
    expect(stages[0]).toMatch(/npm ci/);
    expect(stages[0]).toMatch(/npm run build && npm prune --omit=dev/);
    expect(final).not.toMatch(/npm (ci|install)/);
  });

  it('installs the node tools and copies only the runtime files', () => {
    for (const pkg of ['e2fsprogs', 'xfsprogs', 'util-linux', 'mount', 'udev', 's3fs', 'rclone', 'fuse3', 'ca-certificates']) {
      expect(final).toMatch(new RegExp(`\\s${pkg}\\s`));
    }
    const copied = [...final.matchAll(/^COPY --from=build \/app\/(\S+)/gm)].map((m) => m[1]).sort();
    expect(copied).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'proto']);
    expect(final).toMatch(/^ENTRYPOINT \["node", ("--[a-z-]+(=\S+)?", )*"\/app\/bin\/cinder-csi-plugin"\]$/m);
  });

  it('the launcher the ENTRYPOINT names exists', () => {
    expect(existsSync(join(ROOT, 'bin', 'cinder-csi-plugin'))).toBe(true);
    expect(existsSync(join(ROOT, 'proto', 'csi.proto'))).toBe(true);
  });
});
