/**
 * Picks up a changed cloud.conf without a restart (the reference driver needs one, its issue #2629).
 * Kubernetes updates a mounted Secret by swapping a symlink, which inotify on the file misses, so the
 * files are polled with stat (which follows the link). A file that no longer parses keeps the old config.
 */
import { watchFile, unwatchFile, type Stats } from 'node:fs';
import type { Logger } from '../log';
import { loadCloudConfigFiles } from './cloud-conf';
import type { CloudConfig } from './types';

/** How often the cloud.conf files are stat'ed. */
export const CLOUD_CONF_POLL_MS = 5_000;

export interface ReloadOptions {
  files: readonly string[];
  requireCredentials: boolean;
  log: Logger;
  onChange: (config: CloudConfig) => void;
  pollMs?: number;
}

/** Starts watching; returns a function that stops. */
export function watchCloudConfig(opts: ReloadOptions): () => void {
  const listener = (curr: Stats, prev: Stats) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    try {
      const config = loadCloudConfigFiles(opts.files, { requireCredentials: opts.requireCredentials });
      opts.log.info({ files: opts.files }, 'cloud config changed; credentials reloaded');
      opts.onChange(config);
    } catch (e) {
      opts.log.warn(
        { files: opts.files, error: (e as Error).message },
        'cloud config changed but does not parse; keeping the previous one',
      );
    }
  };
  for (const f of opts.files)
    watchFile(f, { interval: opts.pollMs ?? CLOUD_CONF_POLL_MS, persistent: false }, listener);
  return () => {
    for (const f of opts.files) unwatchFile(f, listener);
  };
}
