/**
 * The README's first command as a user runs it: the built CLI's `demo`, for real (root, loop devices).
 * Needs `npm run build` first (npm test does it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeIf } from './helpers/prereq';

const BIN = join(__dirname, '..', 'bin', 'cinder-csi-plugin');
const leftovers = () => ({
  mounts: readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes('cinder-csi-demo-')).length,
  loops: spawnSync('losetup', ['-a'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes('cinder-csi-demo-')).length,
  daemons: spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => (/^(s3fs|rclone)\b/.test(l) && l.includes('cinder-csi-demo-')) || l.includes('local-s3-server'))
    .length,
});
const CLEAN = { mounts: 0, loops: 0, daemons: 0 };

/** After a failed run: what the demo left would otherwise fail the next test and sit under /tmp for good. */
function removeLeftovers(): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.includes('cinder-csi-demo-'));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  for (const l of spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.split('\n'))
    if (l.includes('cinder-csi-demo-')) spawnSync('losetup', ['-d', l.split(':')[0]]);
  spawnSync('pkill', ['-KILL', '-f', 'cinder-csi-demo-|local-s3-server']);
}

describeIf(
  'cinder-csi-plugin demo',
  { root: true, loop: true, fuse: true, commands: ['losetup', 'mkfs.ext4', 's3fs', 'setpriv'] },
  () => {
    afterEach(() => {
      if (JSON.stringify(leftovers()) !== JSON.stringify(CLEAN)) removeLeftovers();
    });

    it('plays the whole StatefulSet lifecycle, cleans up, and runs again right after', () => {
      for (let run = 0; run < 2; run++) {
        const r = spawnSync(process.execPath, [BIN, 'demo', '--delay-scale', '0.2'], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        // The whole transcript in the failure message: a failed step says why on its own line.
        if (r.status !== 0 || r.stderr !== '')
          throw new Error(`demo run ${run} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
        for (const step of [
          'create 3 volumes in 2 zones',
          'attach to the node',
          'stage (ext4)',
          'write a file in each',
          'snapshot web-0',
          'restore into a 2 GiB volume and read the file',
          'expand web-1 online',
          'object volume shared by two pods (S3, RWX)',
          'tear everything down',
        ]) {
          expect(r.stdout).toMatch(new RegExp(`✓ ${step.replace(/[()]/g, '\\$&')}`));
        }
        expect(r.stdout).toMatch(/total\s+\d+\.\d\ds\s+\d+/);
        expect(leftovers()).toEqual(CLEAN);
      }
    }, 240_000);

    it('tears down on Ctrl-C when left running with --keep', async () => {
      const child = spawn(process.execPath, [BIN, 'demo', '--keep', '--delay-scale', '0.1']);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "Left running" line: ${out}`)), 90_000);
        child.stdout.on('data', () => {
          if (out.includes('Left running')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(leftovers().mounts).toBeGreaterThan(0);
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('✓ tear everything down');
      expect(leftovers()).toEqual(CLEAN);
    }, 120_000);

    it('says exactly what is missing and exits non-zero without root', () => {
      const r = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'demo'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('cannot run here');
      expect(r.stderr).toContain('not running as root');
    });
  },
);
