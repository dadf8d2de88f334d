/**
 * A FUSE daemon that hangs (SIGSTOPped: every request to it waits forever) is found within 10 s, SIGKILLed,
 * its mount detached and remounted at the same staging path with the pod's bind redone, and the pod's next
 * read succeeds. Meanwhile nothing in the node plugin's process waits on the hung mount: Probe (whose check
 * uses libuv's pool), another volume's stats and publish, and even stats of the hung volume itself answer
 * fast. Real s3rver, s3fs and rclone; the timings are printed for the record.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { identityHandlers } from '../../src/csi/identity';
import { loadCsiProto } from '../../src/csi/proto';
import { isProcessAlive } from '../../src/fuse/spawn';
import { commandExists } from '../../src/mount/exec';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { describeIf } from '../helpers/prereq';
import { putObject } from '../helpers/fuse-procs';
import { objCap, S3_SECRETS, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';

/** The brief's bound on noticing and replacing a hung daemon. */
const REPAIR_LIMIT_MS = 10_000;
/** What "fast" means for calls that must not wait on the hung mount, on a loaded 2-core machine. */
const FAST_MS = 1_500;
/** A stats call of the hung volume itself may wait for one out-of-process probe (3 s) and no more. */
const OWN_STATS_LIMIT_MS = 5_000;

describeIf('hung FUSE daemons', { root: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount', 'stat'] }, () => {
  let w: FuseWorld;
  let identity: CsiHarness;
  beforeAll(async () => {
    w = await startFuseWorld(['hung-s3fs', 'hung-rclone', 'calm']);
    // Probe checks its tools on every call here (main.ts caches the answer): fs work on libuv's pool, which a
    // statfs of the hung mount from this process would fill.
    identity = await startHarness([
      {
        definition: loadCsiProto().IdentityService,
        handlers: identityHandlers({
          version: 'test',
          controller: false,
          topology: false,
          readinessProblems: async () =>
            (await commandExists('mount')) && (await commandExists('umount')) ? [] : ['no mount'],
        }),
      },
    ]);
    await w.call('NodeStageVolume', calm());
  }, 60_000);
  afterAll(async () => {
    await identity?.close();
    await w?.close();
  }, 60_000);

  const vol = (mounter: string, bucket = `hung-${mounter}`) => ({
    volume_id: `obj1:s3:${bucket}:`,
    staging_target_path: w.path(`plugins/${bucket}/globalmount`),
    volume_capability: objCap(),
    volume_context: { backend: 'object', provider: 's3', endpoint: w.s3.endpoint, mounter },
    secrets: S3_SECRETS,
  });
  const calm = () => vol('s3fs', 'calm');

  /** Runs `fn` and resolves with how long it took. */
  async function timed(fn: () => Promise<unknown>): Promise<number> {
    const t = Date.now();
    await fn();
    return Date.now() - t;
  }

  /** `cat` in a child process, as a pod reads: resolves with its outcome and when it came back. */
  function podRead(path: string): Promise<{ ok: boolean; out: string; at: number }> {
    return new Promise((resolve) =>
      execFile('cat', [path], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ ok: !err, out: err ? stderr : stdout, at: Date.now() }),
      ),
    );
  }

  it.each(['s3fs', 'rclone'])(
    '%s: a stopped daemon is replaced within 10 s while other calls stay fast',
    async (mounter) => {
      const v = vol(mounter);
      const pod = w.path(`pods/hung-${mounter}/volumes/v/mount`);
      await w.call('NodeStageVolume', v);
      await w.call('NodePublishVolume', { ...v, target_path: pod, readonly: false });
      await writeFile(join(pod, 'before.txt'), 'before');
      // Put behind the daemon's back: reading it needs a lookup the daemon must answer.
      await putObject(w.s3.endpoint, v.volume_id.split(':')[2], 'server.txt', 'from the server');
      const [old] = (await w.supervisor.client.list()).filter((m) => m.target === v.staging_target_path);
      expect(old).toMatchObject({ state: 'alive', hangs: 0 });

      process.kill(old.pid!, 'SIGSTOP');
      const t0 = Date.now();
      const blocked = podRead(join(pod, 'server.txt'));
      // Kubelet's stats of the hung volume, more at once than libuv has pool threads.
      const ownStats = Array.from({ length: 6 }, () =>
        timed(() =>
          w.call('NodeGetVolumeStats', {
            volume_id: v.volume_id,
            volume_path: pod,
            staging_target_path: v.staging_target_path,
          }),
        ),
      );

      const lat = {
        probe: [] as number[],
        otherStats: [] as number[],
        otherPublish: [] as number[],
        list: [] as number[],
      };
      let detectedAt: number | undefined;
      let replacedAt: number | undefined;
      let n = 0;
      while (replacedAt === undefined && Date.now() - t0 < REPAIR_LIMIT_MS + 5_000) {
        lat.probe.push(await timed(() => identity.call('Identity', 'Probe')));
        lat.otherStats.push(
          await timed(() =>
            w.call('NodeGetVolumeStats', {
              volume_id: calm().volume_id,
              volume_path: calm().staging_target_path,
              staging_target_path: calm().staging_target_path,
            }),
          ),
        );
        const target = w.path(`pods/calm-${mounter}-${n++}/volumes/v/mount`);
        lat.otherPublish.push(
          await timed(() => w.call('NodePublishVolume', { ...calm(), target_path: target, readonly: false })),
        );
        let mine;
        lat.list.push(
          await timed(async () => {
            [mine] = (await w.supervisor.client.list()).filter((m) => m.target === v.staging_target_path);
          }),
        );
        const now = mine as unknown as { state: string; pid?: number };
        if (detectedAt === undefined && (now.state !== 'alive' || now.pid !== old.pid)) detectedAt = Date.now();
        if (now.state === 'alive' && now.pid !== old.pid) replacedAt = Date.now();
      }
      expect(replacedAt).toBeDefined();
      const repairMs = replacedAt! - t0;
      expect(repairMs).toBeLessThan(REPAIR_LIMIT_MS);
      const own = await Promise.all(ownStats);

      const [now] = (await w.supervisor.client.list()).filter((m) => m.target === v.staging_target_path);
      expect(now).toMatchObject({ state: 'alive', hangs: 1, restarts: 1 });
      expect(isProcessAlive(old.pid)).toBe(false);

      // The read that was waiting on the stopped daemon came back (with an error: its connection was cut).
      const first = await blocked;
      expect(first.at - t0).toBeLessThan(REPAIR_LIMIT_MS + 1_000);
      // The pod's next read and write go to the new daemon through the redone bind.
      expect(await readFile(join(pod, 'server.txt'), 'utf8')).toBe('from the server');
      expect(await readFile(join(pod, 'before.txt'), 'utf8')).toBe('before');
      await writeFile(join(pod, 'after.txt'), 'after');
      expect(await readFile(join(v.staging_target_path, 'after.txt'), 'utf8')).toBe('after');
      const stats = await w.call('NodeGetVolumeStats', {
        volume_id: v.volume_id,
        volume_path: pod,
        staging_target_path: v.staging_target_path,
      });
      expect(stats.volume_condition).toMatchObject({ abnormal: false });

      const log = await readFile(w.supervisorLog, 'utf8');
      const hungLine = log
        .split('\n')
        .find((l) => l.includes('FUSE daemon is hung; replacing it') && l.includes(v.staging_target_path));
      expect(hungLine).toMatch(/"reason":"statfs .* took over 3000 ms"/);
      const restarted = log
        .split('\n')
        .filter((l) => l.includes('FUSE daemon restarted') && l.includes(v.staging_target_path))
        .pop();
      expect(restarted).toMatch(/"cause":"hung"/);
      const replaceMs = Number(/"tookMs":(\d+)/.exec(restarted!)?.[1]);

      const max = (a: number[]) => Math.max(...a);

      console.log(
        `${mounter} hung mount: detected ${detectedAt! - t0} ms, replaced ${repairMs} ms after SIGSTOP (restart itself ${replaceMs} ms); ` +
          `blocked read back after ${first.at - t0} ms (${first.ok ? 'ok' : first.out.trim()}); max latencies during the hang: ` +
          `Probe ${max(lat.probe)} ms, other volume stats ${max(lat.otherStats)} ms, other volume publish ${max(lat.otherPublish)} ms, ` +
          `supervisor list ${max(lat.list)} ms, stats of the hung volume ${max(own)} ms (${own.length} at once); ${lat.probe.length} rounds`,
      );
      expect(max(lat.probe)).toBeLessThan(FAST_MS);
      expect(max(lat.otherStats)).toBeLessThan(FAST_MS);
      expect(max(lat.otherPublish)).toBeLessThan(FAST_MS);
      expect(max(lat.list)).toBeLessThan(FAST_MS);
      expect(max(own)).toBeLessThan(OWN_STATS_LIMIT_MS);

      for (let i = 0; i < n; i++) {
        await w.call('NodeUnpublishVolume', {
          volume_id: calm().volume_id,
          target_path: w.path(`pods/calm-${mounter}-${i}/volumes/v/mount`),
        });
      }
      await w.call('NodeUnpublishVolume', { volume_id: v.volume_id, target_path: pod });
      await w.call('NodeUnstageVolume', { volume_id: v.volume_id, staging_target_path: v.staging_target_path });
      expect((await w.supervisor.client.list()).some((m) => m.target === v.staging_target_path)).toBe(false);
    },
    60_000,
  );
});
