/**
 * The object bench's FUSE request trace on a real FUSE mount: rclone serving a local directory (no S3 needed), the
 * kernel's fuse tracepoints read from the trace's own tracefs instance.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseRequestTrace } from '../../bench/fuse-probe';
import { execFile } from '../../src/mount/exec';
import { describeIf } from '../helpers/prereq';

const TRACE_EVENTS = '/sys/kernel/tracing/events/fuse/fuse_request_send';

describeIf(
  'FuseRequestTrace',
  { root: true, fuse: true, commands: ['rclone', 'fusermount'], paths: [TRACE_EVENTS] },
  () => {
    let dir: string;
    let mnt: string;
    let daemon: ChildProcess;
    const file = randomBytes(1024 * 1024 + 1000);

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fuse-trace-'));
      const src = join(dir, 'src');
      mnt = join(dir, 'mnt');
      mkdirSync(src);
      mkdirSync(mnt);
      writeFileSync(join(src, 'f'), file);
      writeFileSync(join(dir, 'rclone.conf'), '');
      daemon = spawn('rclone', ['--config', join(dir, 'rclone.conf'), 'mount', src, mnt], { stdio: 'ignore' });
      const end = Date.now() + 15_000;
      while (!readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) {
        if (Date.now() > end) throw new Error('rclone mount did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
    }, 30_000);

    afterAll(async () => {
      await execFile('fusermount', ['-u', mnt]).catch(() => undefined);
      daemon?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it('counts the reads and bytes the kernel sent this mount, and removes its tracefs instance', async () => {
      const trace = new FuseRequestTrace('fuse-probe-test');
      expect(trace.start(mnt)).toBe(true);
      let stats;
      let got: Buffer;
      try {
        got = await readFile(join(mnt, 'f'));
      } finally {
        stats = trace.stop();
      }
      expect(got.equals(file)).toBe(true);
      // rclone's FUSE library asks at most 128 KiB per read: 1 MiB + 1000 bytes needs at least 9.
      expect(stats).toMatchObject({ readBytes: file.length, writes: 0, writeBytes: 0, lost: 0 });
      expect(stats!.reads).toBeGreaterThanOrEqual(9);
      expect(readdirSync('/sys/kernel/tracing/instances').filter((d) => d.startsWith('fuse-probe-test'))).toEqual([]);
    });

    it('counts the writes and their payload, and nothing of another mount', async () => {
      const trace = new FuseRequestTrace('fuse-probe-test');
      expect(trace.start(mnt)).toBe(true);
      const body = randomBytes(300 * 1024);
      let stats;
      try {
        await writeFile(join(mnt, 'g'), body);
        // Traffic on another filesystem is not this connection's.
        await writeFile(join(dir, 'elsewhere'), body);
      } finally {
        stats = trace.stop();
      }
      expect(stats).toMatchObject({ writeBytes: body.length, lost: 0 });
      expect(stats!.writes).toBeGreaterThanOrEqual(3);
      expect(existsSync(join(dir, 'src', 'g'))).toBe(true);
    });

    it('answers undefined when it was never started', () => {
      expect(new FuseRequestTrace('fuse-probe-test').stop()).toBeUndefined();
    });
  },
);
