import { mkdtempSync, writeFileSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchCloudConfig } from '../../src/config/reload';
import type { CloudConfig } from '../../src/config/types';
import { logSink } from '../helpers/log-sink';

const conf = (password: string) =>
  `[Global]\nauth-url=http://k/v3\nusername=u\npassword=${password}\nuser-domain-name=D\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cloud.conf reload', () => {
  it('delivers new credentials when a Secret-style symlink swap changes the file, and ignores a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reload-'));
    // Kubernetes mounts Secrets as cloud.conf -> ..data/cloud.conf and swaps ..data atomically.
    writeFileSync(join(dir, 'v1.conf'), conf('first'));
    symlinkSync(join(dir, 'v1.conf'), join(dir, 'current'));
    const file = join(dir, 'current');
    const seen: CloudConfig[] = [];
    const sink = logSink();
    const stop = watchCloudConfig({
      files: [file],
      requireCredentials: true,
      log: sink.log,
      onChange: (c) => seen.push(c),
      pollMs: 20,
    });
    try {
      await sleep(100);
      writeFileSync(join(dir, 'v2.conf'), conf('second'));
      symlinkSync(join(dir, 'v2.conf'), join(dir, 'next'));
      renameSync(join(dir, 'next'), file);
      for (let i = 0; i < 50 && seen.length === 0; i++) await sleep(20);
      expect(seen).toHaveLength(1);
      expect(seen[0].clouds.get('')!.password).toBe('second');

      writeFileSync(join(dir, 'v2.conf'), '[Global]\nauth-url=not a url\n');
      for (let i = 0; i < 50 && !sink.text().includes('does not parse'); i++) await sleep(20);
      expect(sink.text()).toContain('does not parse; keeping the previous one');
      expect(seen).toHaveLength(1);
      expect(sink.text()).not.toContain('second');
    } finally {
      stop();
    }
  });
});
