/** The package version, reported by GetPluginInfo and the User-Agent. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findVersion(): string {
  // src/ under ts-jest, dist/src/ when compiled: walk up to our own package.json.
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cinder-csi' && pkg.version) return pkg.version;
    } catch {
      // not here; keep walking
    }
  }
  return '0.0.0-unknown';
}

export const VERSION: string = findVersion();
