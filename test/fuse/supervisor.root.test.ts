/**
 * What the FUSE supervisor exists for: mounts survive the node plugin's death (plugin in its own PID
 * namespace, SIGKILLed), a supervisor restart re-adopts live mounts, a SIGKILLed FUSE daemon is noticed
 * (condition abnormal), restarted within 10 s and its binds redone, and what rclone has not uploaded yet
 * survives both its daemon's death and an unstage. Real s3rver, s3fs and rclone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callUnary, makeClient } from '../../src/csi/proto';
import { LIVENESS_INTERVAL_MS } from '../../src/fuse/supervisor';
import { describeIf } from '../helpers/prereq';
import { getObject, spawnTs, waitUntil } from '../helpers/fuse-procs';
import { objCap, S3_SECRETS, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';

/** The brief's bound on noticing and repairing a dead daemon. */
const REPAIR_LIMIT_MS = 10_000;

describeIf(
  'FUSE supervisor survival',
  { root: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount', 'unshare'] },
  () => {
    let w: FuseWorld;
    beforeAll(async () => {
      w = await startFuseWorld(['b-s3fs', 'b-rclone']);
    }, 60_000);
    afterAll(async () => {
      await w?.close();
    }, 60_000);

    const vol = (mounter: 's3fs' | 'rclone') => ({
      volume_id: `obj1:s3:b-${mounter}:`,
      staging_target_path: w.path(`plugins/${mounter}/globalmount`),
      volume_capability: objCap(),
      volume_context: {
        backend: 'object',
        provider: 's3',
        endpoint: w.s3.endpoint,
        mounter,
        ...(mounter === 'rclone' ? { mountOptions: 'vfs-write-back=0s' } : {}),
      },
      secrets: S3_SECRETS,
    });
    const target = (mounter: string, pod: string) => w.path(`pods/${pod}/volumes/${mounter}/mount`);

    it('mounts made through a node plugin in its own PID namespace survive SIGKILL of that namespace; a new plugin unpublishes them', async () => {
      const csiSocket = join(w.dir, 'plugin.sock');
      const log = join(w.dir, 'plugin.log');
      const plugin = spawnTs(
        'fuse-node-child.ts',
        [JSON.stringify({ csiSocket, supervisorSocket: w.socket, kubeletDir: w.kubeletDir })],
        log,
        ['unshare', '--pid', '--fork'],
      );
      await waitUntil('plugin ready', () => (readFileSync(log, 'utf8').includes('ready:1') ? true : undefined));
      const client = makeClient('Node', `unix://${csiSocket}`);
      for (const m of ['s3fs', 'rclone'] as const) {
        await callUnary(client, 'NodeStageVolume', vol(m), { deadline: Date.now() + 30_000 });
        await callUnary(
          client,
          'NodePublishVolume',
          { ...vol(m), target_path: target(m, 'p1'), readonly: false },
          { deadline: Date.now() + 30_000 },
        );
      }
      client.close();
      // The namespace's init is unshare's only child; killing it kills every process in the namespace.
      const init = Number(
        readFileSync(`/proc/${plugin.pid}/task/${plugin.pid}/children`, 'utf8').trim().split(/\s+/)[0],
      );
      process.kill(init, 'SIGKILL');
      await plugin.exited;

      for (const m of ['s3fs', 'rclone']) {
        await writeFile(join(target(m, 'p1'), 'after-kill.txt'), m);
        expect(await readFile(join(w.path(`plugins/${m}/globalmount`), 'after-kill.txt'), 'utf8')).toBe(m);
      }
      for (const m of ['s3fs', 'rclone'] as const) {
        await w.call('NodeUnpublishVolume', { volume_id: vol(m).volume_id, target_path: target(m, 'p1') });
        expect(existsSync(target(m, 'p1'))).toBe(false);
      }
    });

    it('a restarted supervisor re-adopts live mounts and can unmount them', async () => {
      const before = await w.supervisor.client.list();
      expect(before.map((m) => m.state)).toEqual(['alive', 'alive']);
      await w.restartSupervisor();
      for (const m of ['s3fs', 'rclone']) {
        await writeFile(join(w.path(`plugins/${m}/globalmount`), 'after-restart.txt'), 'still here');
      }
      const after = await w.supervisor.client.list();
      expect(after.map((m) => [m.target, m.state, m.pid]).sort()).toEqual(
        before.map((m) => [m.target, 'alive', m.pid]).sort(),
      );
    });

    it.each(['s3fs', 'rclone'] as const)(
      '%s: a SIGKILLed daemon is reported abnormal, then restarted with its binds within 10 s',
      async (m) => {
        await w.call('NodePublishVolume', { ...vol(m), target_path: target(m, 'p2'), readonly: false });
        await writeFile(join(target(m, 'p2'), 'before-death.txt'), 'kept');
        // Uploaded before the kill: rclone answers close() before it records the file in its cache, and a kill in
        // that window loses it (rclone 1.60; the pending-upload tests below start after the record is written).
        await waitUntil('the file on the server', () => getObject(w.s3.endpoint, `b-${m}`, 'before-death.txt'));
        const [mine] = (await w.supervisor.client.list()).filter((x) => x.target === vol(m).staging_target_path);
        const stats = () =>
          w.call('NodeGetVolumeStats', {
            volume_id: vol(m).volume_id,
            volume_path: target(m, 'p2'),
            staging_target_path: vol(m).staging_target_path,
          });

        process.kill(mine.pid!, 'SIGKILL');
        await waitUntil('daemon gone', () =>
          existsSync(`/proc/${mine.pid}/cmdline`) && readFileSync(`/proc/${mine.pid}/cmdline`).length > 0
            ? undefined
            : true,
        );
        const dead = await stats();
        expect(dead.volume_condition).toMatchObject({ abnormal: true });
        const t0 = Date.now();

        await waitUntil(
          'condition normal again',
          async () => ((await stats()).volume_condition.abnormal ? undefined : true),
          REPAIR_LIMIT_MS,
        );
        expect(Date.now() - t0).toBeLessThan(REPAIR_LIMIT_MS);
        expect(await readFile(join(target(m, 'p2'), 'before-death.txt'), 'utf8')).toBe('kept');
        await writeFile(join(target(m, 'p2'), 'after-repair.txt'), 'ok');
        const [now] = (await w.supervisor.client.list()).filter((x) => x.target === vol(m).staging_target_path);
        expect(now).toMatchObject({ state: 'alive', restarts: 1 });
        expect(now.pid).not.toBe(mine.pid);
        await w.call('NodeUnpublishVolume', { volume_id: vol(m).volume_id, target_path: target(m, 'p2') });
      },
    );

    describe('rclone uploads that have not finished', () => {
      /** A volume of its own under prefix `tag/`, staged at its own path with `mountOptions`. */
      const pendingVol = (tag: string, mountOptions: string) => ({
        ...vol('rclone'),
        volume_id: `obj1:s3:b-rclone:${tag}/`,
        staging_target_path: w.path(`plugins/rclone-${tag}/globalmount`),
        volume_context: { ...vol('rclone').volume_context, mountOptions },
      });
      /** The supervisor's cache dir of a staging path (mount-records names it after the path's hash). */
      const cacheOf = (staging: string) =>
        join(w.stateDir, 'cache', createHash('sha256').update(staging).digest('hex').slice(0, 24));
      const metaOf = (staging: string, tag: string, file: string) =>
        join(cacheOf(staging), 'vfsMeta', 'vol', 'b-rclone', tag, file);
      const dirty = async (meta: string) => {
        try {
          return (JSON.parse(await readFile(meta, 'utf8')) as { Dirty?: boolean }).Dirty === true ? true : undefined;
        } catch {
          return undefined;
        }
      };
      const daemonOf = async (staging: string) => (await w.supervisor.client.list()).find((x) => x.target === staging);

      it("a file not uploaded yet survives its daemon's SIGKILL and an unstage; the next stage here uploads it", async () => {
        const v = pendingVol('later', 'vfs-write-back=1h');
        await w.call('NodeStageVolume', v);
        await writeFile(join(v.staging_target_path, 'pending.txt'), 'kept');
        await waitUntil('rclone to record the upload as pending', () =>
          dirty(metaOf(v.staging_target_path, 'later', 'pending.txt')),
        );
        const before = (await daemonOf(v.staging_target_path))!;
        process.kill(before.pid!, 'SIGKILL');
        await waitUntil(
          'the daemon restarted',
          async () => {
            const now = await daemonOf(v.staging_target_path);
            return now?.state === 'alive' && now.pid !== before.pid ? true : undefined;
          },
          REPAIR_LIMIT_MS,
        );
        expect(await readFile(join(v.staging_target_path, 'pending.txt'), 'utf8')).toBe('kept');

        // rclone exits at the unmount without the upload its write-back delay still holds back: the cache stays.
        await w.call('NodeUnstageVolume', { volume_id: v.volume_id, staging_target_path: v.staging_target_path });
        expect(await getObject(w.s3.endpoint, 'b-rclone', 'later/pending.txt')).toBeUndefined();
        expect(await dirty(metaOf(v.staging_target_path, 'later', 'pending.txt'))).toBe(true);
        expect(readFileSync(w.supervisorLog, 'utf8')).toMatch(
          /were not uploaded when its daemon stopped.*"count":1|"count":1.*were not uploaded when its daemon stopped/,
        );

        const again = pendingVol('later', 'vfs-write-back=0s');
        await w.call('NodeStageVolume', again);
        expect(await waitUntil('the upload', () => getObject(w.s3.endpoint, 'b-rclone', 'later/pending.txt'))).toBe(
          'kept',
        );
        await w.call('NodeUnstageVolume', {
          volume_id: again.volume_id,
          staging_target_path: again.staging_target_path,
        });
        expect(existsSync(cacheOf(again.staging_target_path))).toBe(false);
      });

      it('unstaging waits for an upload still running (a SIGTERM would cut it off) and then removes the cache', async () => {
        const v = pendingVol('slow', 'vfs-write-back=0s');
        await w.call('NodeStageVolume', v);
        // The server is frozen between close() and the end of the upload, so the upload is still running at the
        // unmount; a file uploaded before the freeze (fast machine) proves nothing, so the test takes another.
        let file = '';
        for (let i = 0; i < 5 && !file; i++) {
          await writeFile(join(v.staging_target_path, `f${i}.txt`), 'kept');
          process.kill(w.s3.pid, 'SIGSTOP');
          if (
            await waitUntil(
              'rclone to record the file',
              () => dirty(metaOf(v.staging_target_path, 'slow', `f${i}.txt`)),
              2_000,
            ).catch(() => false)
          )
            file = `f${i}.txt`;
          else process.kill(w.s3.pid, 'SIGCONT');
        }
        expect(file).not.toBe('');
        const thaw = setTimeout(() => process.kill(w.s3.pid, 'SIGCONT'), 4_000);
        try {
          const started = Date.now();
          await w.call('NodeUnstageVolume', { volume_id: v.volume_id, staging_target_path: v.staging_target_path });
          expect(Date.now() - started).toBeGreaterThanOrEqual(3_500);
        } finally {
          clearTimeout(thaw);
          process.kill(w.s3.pid, 'SIGCONT');
        }
        expect(await getObject(w.s3.endpoint, 'b-rclone', `slow/${file}`)).toBe('kept');
        expect(existsSync(cacheOf(v.staging_target_path))).toBe(false);
      });
    });

    it('a supervisor started after its daemon died repairs the mount and its binds from the state dir', async () => {
      const m = 's3fs';
      await w.call('NodePublishVolume', { ...vol(m), target_path: target(m, 'p4'), readonly: true });
      const [mine] = (await w.supervisor.client.list()).filter((x) => x.target === vol(m).staging_target_path);
      await w.supervisor.kill();
      process.kill(mine.pid!, 'SIGKILL');
      await waitUntil('daemon gone', () =>
        readFileSync(`/proc/${mine.pid}/cmdline`, 'utf8').length > 0 ? undefined : true,
      );
      const deadErr = await readdir(target(m, 'p4')).then(
        () => 'readable',
        (e: NodeJS.ErrnoException) => e.code,
      );
      await w.restartSupervisor();
      // s3fs' dead mount answers ENOTCONN, or ECONNABORTED when a request was in flight when it died.
      expect(['ENOTCONN', 'ECONNABORTED']).toContain(deadErr);
      await waitUntil(
        'bind serves again',
        async () => ((await readdir(target(m, 'p4')).catch(() => undefined)) ? true : undefined),
        REPAIR_LIMIT_MS,
      );
      expect(await readFile(join(target(m, 'p4'), 'before-death.txt'), 'utf8')).toBe('kept');
      // The redone bind keeps its read-only mode.
      await expect(writeFile(join(target(m, 'p4'), 'x.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await w.call('NodeUnpublishVolume', { volume_id: vol(m).volume_id, target_path: target(m, 'p4') });
    });

    it('the liveness interval notices a dead mount well within 10 s', () => {
      expect(LIVENESS_INTERVAL_MS).toBeLessThanOrEqual(REPAIR_LIMIT_MS / 2);
    });

    it('unstaging after all that removes the mounts and the credential files', async () => {
      for (const m of ['s3fs', 'rclone'] as const) {
        await w.call('NodeUnstageVolume', {
          volume_id: vol(m).volume_id,
          staging_target_path: vol(m).staging_target_path,
        });
      }
      expect(await readdir(join(w.stateDir, 'credentials'))).toEqual([]);
      expect(await w.supervisor.client.list()).toEqual([]);
    });

    it('unpublish and unstage succeed on a dead mount whose daemon is gone', async () => {
      const m = 's3fs';
      await w.call('NodeStageVolume', vol(m));
      await w.call('NodePublishVolume', { ...vol(m), target_path: target(m, 'p3'), readonly: false });
      // Kill the supervisor first so nothing repairs the mount, then its daemon.
      const [mine] = await w.supervisor.client.list();
      await w.supervisor.kill();
      process.kill(mine.pid!, 'SIGKILL');
      await waitUntil('daemon gone', () =>
        readFileSync(`/proc/${mine.pid}/cmdline`, 'utf8').length > 0 ? undefined : true,
      );
      await w.call('NodeUnpublishVolume', { volume_id: vol(m).volume_id, target_path: target(m, 'p3') });
      expect(existsSync(target(m, 'p3'))).toBe(false);
      await w.restartSupervisor();
      await w.call('NodeUnstageVolume', {
        volume_id: vol(m).volume_id,
        staging_target_path: vol(m).staging_target_path,
      });
      expect(existsSync(vol(m).staging_target_path)).toBe(false);
      // A staging path that was never staged (or vanished after a reboot) unstages fine too.
      await w.call('NodeUnstageVolume', {
        volume_id: vol(m).volume_id,
        staging_target_path: w.path('plugins/never/globalmount'),
      });
    });
  },
);
