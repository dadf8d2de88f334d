/**
 * The supervisor's state dir: one 0600 JSON record per mount (the spec and the daemon's pid, never a
 * credential), one 0600 credential file, one log file and one cache dir, all named after the target's hash.
 * A restarted supervisor rebuilds its view from these records; what is mounted is read from mountinfo.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MountSpec } from './protocol';
import { pendingUploads } from './rclone-cache';

/** Mode of every record and credential file. */
export const STATE_FILE_MODE = 0o600;
export const STATE_DIR_MODE = 0o700;

/** What is kept per mount across supervisor restarts. */
export interface MountRecord {
  spec: MountSpec;
  /** The daemon serving the mount when last seen. */
  pid?: number;
  restarts: number;
  /** Times the daemon was found hung and replaced (absent in records of older supervisors). */
  hangs?: number;
}

/** Paths of one mount's files. */
export interface MountPaths {
  record: string;
  credentials: string;
  log: string;
  cacheDir: string;
}

/** Files in a supervisor state dir; one instance per supervisor. */
export class MountRecords {
  constructor(private readonly dir: string) {}

  /** Creates the state dir and its subdirectories (0700). */
  async init(): Promise<void> {
    for (const d of ['', 'mounts', 'credentials', 'logs', 'cache']) {
      await mkdir(join(this.dir, d), { recursive: true, mode: STATE_DIR_MODE });
      await chmod(join(this.dir, d), STATE_DIR_MODE);
    }
  }

  /** The files of the mount at `target`; the name is a hash so a path never becomes a file name. */
  paths(target: string): MountPaths {
    const key = createHash('sha256').update(target).digest('hex').slice(0, 24);
    return {
      record: join(this.dir, 'mounts', `${key}.json`),
      credentials: join(this.dir, 'credentials', key),
      log: join(this.dir, 'logs', `${key}.log`),
      cacheDir: join(this.dir, 'cache', key),
    };
  }

  /** Writes the record atomically (temp file, rename). */
  async save(rec: MountRecord): Promise<void> {
    const p = this.paths(rec.spec.target).record;
    await writeFile(`${p}.tmp`, JSON.stringify(rec), { mode: STATE_FILE_MODE });
    await rename(`${p}.tmp`, p);
  }

  /** Writes the credential file (0600, replaced atomically so a reader never sees half of it). */
  async saveCredentials(target: string, content: string): Promise<string> {
    const p = this.paths(target).credentials;
    await writeFile(`${p}.tmp`, content, { mode: STATE_FILE_MODE });
    await chmod(`${p}.tmp`, STATE_FILE_MODE);
    await rename(`${p}.tmp`, p);
    return p;
  }

  /** Whether the credential file of `target` holds exactly `content` (false when there is none). */
  async hasCredentials(target: string, content: string): Promise<boolean> {
    try {
      return (await readFile(this.paths(target).credentials, 'utf8')) === content;
    } catch {
      return false;
    }
  }

  /**
   * Removes the record, credentials and cache of `target`; the log stays for post-mortems. Absent files are fine.
   * A cache still holding files rclone has not uploaded is kept (the next rclone on it uploads them): resolves
   * with those files, [] when the cache went.
   */
  async remove(target: string): Promise<string[]> {
    const p = this.paths(target);
    await rm(p.credentials, { force: true });
    await rm(p.record, { force: true });
    const pending = await pendingUploads(p.cacheDir);
    if (pending.length === 0) await rm(p.cacheDir, { recursive: true, force: true });
    return pending;
  }

  /** Every readable record; a corrupt one is reported through `onBad` and skipped. */
  async loadAll(onBad: (file: string, err: unknown) => void): Promise<MountRecord[]> {
    const out: MountRecord[] = [];
    for (const f of await readdir(join(this.dir, 'mounts'))) {
      if (!f.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await readFile(join(this.dir, 'mounts', f), 'utf8')) as MountRecord;
        if (!rec?.spec?.target) throw new Error('no target');
        out.push({ spec: rec.spec, pid: rec.pid, restarts: rec.restarts ?? 0, hangs: rec.hangs ?? 0 });
      } catch (e) {
        onBad(f, e);
      }
    }
    return out;
  }
}
