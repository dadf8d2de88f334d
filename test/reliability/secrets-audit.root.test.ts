/**
 * Secrets (issue #11): a whole block and object lifecycle at log level debug with known credential values,
 * the plugin (all three services) and the FUSE supervisor as real child processes, s3fs and rclone mounts,
 * and calls that fail on a wrong password and a wrong S3 secret. Afterwards none of the values may appear
 * in a log line of either process, an error answered over gRPC, a metric, `ps` output, a FUSE daemon's
 * environment (the design hands credentials to daemons only through 0600 files) or any file the driver
 * wrote; the credential files themselves are 0600 while mounted and gone after NodeUnstage.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { status } from '@grpc/grpc-js';
import { callUnary, makeClient, type CsiClient } from '../../src/csi/proto';
import { readMountInfo } from '../../src/mount/mountinfo';
import { startSimulator, type Simulator } from '../../src/simulator';
import { cleanupUnder } from '../helpers/fuse-world';
import { pidsMentioning, waitUntil } from '../helpers/fuse-procs';
import { describeIf } from '../helpers/prereq';
import {
  environOf,
  filesContaining,
  psArgs,
  startPluginProcess,
  startS3rverWithKeys,
  startSupervisorChild,
  type PluginProc,
  type SupervisorChild,
} from '../helpers/secrets-procs';
import type { Proc } from '../helpers/fuse-procs';

const GIB = 1024 ** 3;
/** Distinctive values that exist only in this test's inputs. */
const S3_ACCESS_KEY = 'AKIAAUDIT3XQ7ZL2VN5K';
const S3_SECRET_KEY = 'auditS3Secret/7Hq2+Xp9wLm4Rt8Vz1Kc';
const WRONG_S3_SECRET = 'auditWrongS3Secret-9f3c0e7a';
/** s3rver checks the access key but not SigV4 signatures, so a wrong secret alone passes: the pair is wrong. */
const WRONG_S3_ACCESS_KEY = 'AKIAAUDITWRONG4Q8M2';
const WRONG_PASSWORD = 'auditWrongPassw0rd-5d1f8b';
const MOUNT_CAP = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const OBJECT_CAP = { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
const MOUNTERS = ['s3fs', 'rclone'] as const;

interface Failure {
  rpc: string;
  code: string;
  details: string;
}

describeIf(
  'secrets never leak',
  { root: true, loop: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount', 'mkfs.ext4', 'ps'] },
  () => {
    let dir: string;
    let s3Dir: string;
    let kubeletDir: string;
    let stateDir: string;
    let sim: Simulator;
    let s3: Proc & { endpoint: string };
    let supervisor: SupervisorChild | undefined;
    let plugin: PluginProc | undefined;
    let controller: CsiClient;
    let node: CsiClient;
    let metricsUrl: string;
    /** Every credential of the run; the Keystone password is the simulator's fixed one. */
    let needles: string[];
    /** The values no other process on this machine can hold, for the walk over all of /tmp. */
    let distinctive: string[];
    const failures: Failure[] = [];
    const answers: string[] = [];
    const psSnapshots: string[] = [];
    const metricSnapshots: string[] = [];
    const daemonEnvirons: string[] = [];
    const started = Date.now();

    const call = async <T = Record<string, unknown>>(client: CsiClient, rpc: string, req: object): Promise<T> => {
      const res = await callUnary<T>(client, rpc, req, { deadline: Date.now() + 60_000 });
      answers.push(JSON.stringify(res));
      return res;
    };
    /** A call that must fail; its status is kept for the leak check. */
    const failing = async (client: CsiClient, rpc: string, req: object): Promise<Failure> => {
      try {
        await callUnary(client, rpc, req, { deadline: Date.now() + 60_000 });
      } catch (e) {
        const err = e as { code: number; details: string };
        const f = { rpc, code: status[err.code], details: err.details };
        failures.push(f);
        return f;
      }
      throw new Error(`${rpc} was expected to fail`);
    };
    const snapshot = async () => {
      psSnapshots.push(await psArgs());
      metricSnapshots.push(await (await fetch(`${metricsUrl}/metrics`)).text());
    };

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'secrets-audit-'));
      s3Dir = await mkdtemp(join(tmpdir(), 'secrets-audit-s3-'));
      kubeletDir = join(dir, 'kubelet');
      stateDir = join(dir, 'fuse-state');
      const byIdDir = join(dir, 'by-id');
      for (const d of [kubeletDir, byIdDir]) mkdirSync(d, { recursive: true });
      sim = await startSimulator({ devicePlane: { byIdDir, stateDir: join(dir, 'sim-devices') }, delayScale: 0.1 });
      const c = sim.credentials;
      needles = [
        c.password,
        c.applicationCredentialSecret,
        WRONG_PASSWORD,
        S3_ACCESS_KEY,
        S3_SECRET_KEY,
        WRONG_S3_ACCESS_KEY,
        WRONG_S3_SECRET,
      ];
      distinctive = [
        c.applicationCredentialSecret,
        WRONG_PASSWORD,
        S3_ACCESS_KEY,
        S3_SECRET_KEY,
        WRONG_S3_ACCESS_KEY,
        WRONG_S3_SECRET,
      ];
      // Three clouds: password auth (used for the lifecycle), an application credential, and a wrong password.
      const cloudConf = [
        sim.cloudConf(),
        '[Global "appcred"]',
        `auth-url=${sim.keystoneUrl}`,
        `application-credential-id=${c.applicationCredentialId}`,
        `application-credential-secret=${c.applicationCredentialSecret}`,
        'region=RegionOne',
        '[Global "badpw"]',
        `auth-url=${sim.keystoneUrl}`,
        `username=${c.username}`,
        `password="${WRONG_PASSWORD}"`,
        'user-domain-name=Default',
        `tenant-name=${c.projectName}`,
        'tenant-domain-name=Default',
        'region=RegionOne',
        '',
      ].join('\n');
      writeFileSync(join(dir, 'cloud.conf'), cloudConf, { mode: 0o600 });
      s3 = await startS3rverWithKeys(s3Dir, S3_ACCESS_KEY, S3_SECRET_KEY);
      const supSocket = join(dir, 'supervisor.sock');
      supervisor = await startSupervisorChild({
        socket: supSocket,
        stateDir,
        kubeletDir,
        logFile: join(dir, 'supervisor.log'),
      });
      const socket = join(dir, 'csi.sock');
      plugin = await startPluginProcess(
        socket,
        [
          '--endpoint',
          `unix://${socket}`,
          '--cloud-config',
          join(dir, 'cloud.conf'),
          '--cloud-name',
          '',
          '--cloud-name',
          'appcred',
          '--cloud-name',
          'badpw',
          '--kubelet-dir',
          kubeletDir,
          '--by-id-dir',
          byIdDir,
          '--node-id',
          sim.localServerId,
          '--metadata-url',
          sim.metadataUrl,
          '--fuse-supervisor-socket',
          supSocket,
          '--http-endpoint',
          '127.0.0.1:0',
          '--log-level',
          'debug',
        ],
        join(dir, 'plugin.log'),
      );
      metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+)","msg":"metrics endpoint listening"/.exec(plugin.log())![1];
      controller = makeClient('Controller', `unix://${socket}`);
      node = makeClient('Node', `unix://${socket}`);
    }, 150_000);

    afterAll(async () => {
      controller?.close();
      node?.close();
      await plugin?.kill();
      await supervisor?.kill();
      if (dir) await cleanupUnder(dir);
      await sim?.stop();
      await s3?.kill();
      for (const d of [dir, s3Dir]) if (d) await rm(d, { recursive: true, force: true });
    }, 60_000);

    it('runs the block lifecycle on a loop device, and fails cleanly on a wrong password', async () => {
      const created = await call<{ volume: { volume_id: string } }>(controller, 'CreateVolume', {
        name: 'pvc-audit-block',
        capacity_range: { required_bytes: String(GIB) },
        volume_capabilities: [MOUNT_CAP],
      });
      const id = created.volume.volume_id;
      const pub = await call<{ publish_context: Record<string, string> }>(controller, 'ControllerPublishVolume', {
        volume_id: id,
        node_id: sim.localServerId,
        volume_capability: MOUNT_CAP,
      });
      const staging = join(kubeletDir, 'plugins/kubernetes.io/csi/cinder.csi.openstack.org/blk/globalmount');
      const target = join(kubeletDir, 'pods/pod-blk/volumes/kubernetes.io~csi/pvc-audit-block/mount');
      await call(node, 'NodeStageVolume', {
        volume_id: id,
        staging_target_path: staging,
        volume_capability: MOUNT_CAP,
        publish_context: pub.publish_context,
      });
      await call(node, 'NodePublishVolume', {
        volume_id: id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: MOUNT_CAP,
      });
      await writeFile(join(target, 'data.txt'), 'block data\n');
      await snapshot();
      const grown = await call<{ node_expansion_required: boolean }>(controller, 'ControllerExpandVolume', {
        volume_id: id,
        capacity_range: { required_bytes: String(2 * GIB) },
        volume_capability: MOUNT_CAP,
      });
      expect(grown.node_expansion_required).toBe(true);
      await waitUntil('device growth', async () => (sim.getVolume(id)?.size === 2 ? true : undefined), 15_000);
      const expand = {
        volume_id: id,
        volume_path: target,
        staging_target_path: staging,
        capacity_range: { required_bytes: String(2 * GIB) },
        volume_capability: MOUNT_CAP,
      };
      try {
        await call(node, 'NodeExpandVolume', expand);
      } catch (e) {
        // A sandbox without CAP_SYS_RESOURCE cannot grow a mounted ext4 (as in node-volume.root.test.ts); that answer is audited too.
        const err = e as { code: number; details: string };
        expect(err.details).toContain('CAP_SYS_RESOURCE');
        failures.push({ rpc: 'NodeExpandVolume', code: status[err.code], details: err.details });
      }
      // Cinder before microversion 3.66 (and the simulator) refuses to snapshot an in-use volume without
      // force; then the snapshot is taken once the volume is detached, and the refusal is audited too.
      const snapReq = { name: 'snap-audit', source_volume_id: id };
      let snapshotId: string | undefined;
      try {
        snapshotId = (await call<{ snapshot: { snapshot_id: string } }>(controller, 'CreateSnapshot', snapReq)).snapshot
          .snapshot_id;
      } catch (e) {
        const err = e as { code: number; details: string };
        expect(status[err.code]).toBe('FAILED_PRECONDITION');
        failures.push({ rpc: 'CreateSnapshot(in-use)', code: status[err.code], details: err.details });
      }
      // The application-credential cloud and the wrong-password cloud, through the `cloud` secret.
      await call(controller, 'ListSnapshots', { secrets: { cloud: 'appcred' } });
      const denied = await failing(controller, 'CreateVolume', {
        name: 'pvc-audit-denied',
        volume_capabilities: [MOUNT_CAP],
        secrets: { cloud: 'badpw' },
      });
      expect(denied.code).toBe('UNAUTHENTICATED');
      await call(node, 'NodeUnpublishVolume', { volume_id: id, target_path: target });
      await call(node, 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging });
      await call(controller, 'ControllerUnpublishVolume', { volume_id: id, node_id: sim.localServerId });
      snapshotId ??= (await call<{ snapshot: { snapshot_id: string } }>(controller, 'CreateSnapshot', snapReq)).snapshot
        .snapshot_id;
      await call(controller, 'DeleteSnapshot', { snapshot_id: snapshotId });
      await call(controller, 'DeleteVolume', { volume_id: id });
      expect(sim.getVolume(id)).toBeUndefined();
    }, 120_000);

    it('runs the object lifecycle with s3fs and rclone, credential files 0600 only while staged, and fails cleanly on a wrong S3 secret', async () => {
      const secrets = { accessKeyID: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY, endpoint: s3.endpoint };
      const credDir = join(stateDir, 'credentials');
      const volumes = [];
      for (const mounter of MOUNTERS) {
        const r = await call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>(
          controller,
          'CreateVolume',
          {
            name: `pvc-audit-${mounter}`,
            capacity_range: { required_bytes: String(GIB) },
            volume_capabilities: [OBJECT_CAP],
            parameters: {
              backend: 'object',
              provider: 's3',
              endpoint: s3.endpoint,
              mounter,
              ...(mounter === 'rclone' ? { mountOptions: 'vfs-write-back=0s' } : {}),
            },
            secrets,
          },
        );
        const v = {
          mounter,
          id: r.volume.volume_id,
          context: r.volume.volume_context,
          staging: join(kubeletDir, `plugins/kubernetes.io/csi/cinder.csi.openstack.org/${mounter}/globalmount`),
          target: join(kubeletDir, `pods/pod-${mounter}/volumes/kubernetes.io~csi/pvc-audit-${mounter}/mount`),
        };
        volumes.push(v);
        await call(controller, 'ControllerPublishVolume', {
          volume_id: v.id,
          node_id: sim.localServerId,
          volume_capability: OBJECT_CAP,
          secrets,
        });
        await call(node, 'NodeStageVolume', {
          volume_id: v.id,
          staging_target_path: v.staging,
          volume_capability: OBJECT_CAP,
          volume_context: v.context,
          secrets,
        });
        await call(node, 'NodePublishVolume', {
          volume_id: v.id,
          staging_target_path: v.staging,
          target_path: v.target,
          volume_capability: OBJECT_CAP,
          volume_context: v.context,
        });
        await writeFile(join(v.target, 'hello.txt'), `written through ${mounter}\n`);
        expect(await readFile(join(v.target, 'hello.txt'), 'utf8')).toBe(`written through ${mounter}\n`);
      }
      // Both daemons are live: their argv, their environment and the credential files.
      const creds = readdirSync(credDir);
      expect(creds).toHaveLength(2);
      for (const f of creds) expect((statSync(join(credDir, f)).mode & 0o777).toString(8)).toBe('600');
      const daemons = pidsMentioning(kubeletDir);
      expect(daemons.length).toBeGreaterThanOrEqual(2);
      for (const pid of daemons) daemonEnvirons.push(environOf(pid));
      await snapshot();
      // Files the driver wrote while mounted (the mounted buckets themselves are the pods' data, not ours).
      const mountPoints = new Set((await readMountInfo()).map((m) => m.mountPoint));
      const hits = filesContaining(
        dir,
        needles,
        (p) => mountPoints.has(p) || p === join(dir, 'cloud.conf') || p.startsWith(`${credDir}/`),
      );
      expect(hits).toEqual([]);

      // Wrong S3 secret: at the controller (s3rver refuses the signature) and at the node (the daemon cannot mount).
      const wrong = { ...secrets, accessKeyID: WRONG_S3_ACCESS_KEY, secretAccessKey: WRONG_S3_SECRET };
      const c1 = await failing(controller, 'CreateVolume', {
        name: 'pvc-audit-wrong',
        volume_capabilities: [OBJECT_CAP],
        parameters: { backend: 'object', endpoint: s3.endpoint },
        secrets: wrong,
      });
      expect(c1.code).not.toBe('OK');
      for (const mounter of MOUNTERS) {
        const v = volumes.find((x) => x.mounter === mounter)!;
        const staging = join(
          kubeletDir,
          `plugins/kubernetes.io/csi/cinder.csi.openstack.org/wrong-${mounter}/globalmount`,
        );
        // rclone mounts lazily and only fails on first use, so its stage may succeed; s3fs checks the bucket first.
        try {
          await callUnary(
            node,
            'NodeStageVolume',
            {
              volume_id: v.id,
              staging_target_path: staging,
              volume_capability: OBJECT_CAP,
              volume_context: v.context,
              secrets: wrong,
            },
            { deadline: Date.now() + 60_000 },
          );
          await readdir(staging).catch(() => undefined);
          psSnapshots.push(await psArgs());
          await call(node, 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: staging });
        } catch (e) {
          const err = e as { code: number; details: string };
          failures.push({
            rpc: `NodeStageVolume(${mounter}, wrong secret)`,
            code: status[err.code],
            details: err.details,
          });
        }
      }
      expect(failures.find((f) => f.rpc === 'NodeStageVolume(s3fs, wrong secret)')?.code).toBe('PERMISSION_DENIED');

      for (const v of volumes) {
        await call(node, 'NodeUnpublishVolume', { volume_id: v.id, target_path: v.target });
        await call(node, 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
        await call(controller, 'ControllerUnpublishVolume', { volume_id: v.id, node_id: sim.localServerId, secrets });
        await call(controller, 'DeleteVolume', { volume_id: v.id, secrets });
      }
      expect(readdirSync(credDir)).toEqual([]);
      expect((await readMountInfo()).filter((m) => m.mountPoint.startsWith(`${kubeletDir}/`))).toEqual([]);
    }, 150_000);

    it('leaves no credential in logs, errors, answers, metrics, ps output, daemon environments or files', async () => {
      await snapshot();
      expect(failures.length).toBeGreaterThanOrEqual(3);
      const found = (where: string, text: string) =>
        needles.filter((n) => text.includes(n)).map((n) => `${where}: ${n}`);
      const leaks = [
        ...found('plugin log', plugin!.log()),
        ...found('supervisor log', supervisor!.log()),
        ...failures.flatMap((f) => found(`${f.rpc} error`, f.details)),
        ...answers.flatMap((a) => found('answer', a)),
        ...metricSnapshots.flatMap((m) => found('metrics', m)),
        ...psSnapshots.flatMap((p) => found('ps', p)),
        ...daemonEnvirons.flatMap((e) => found('daemon environ', e)),
        ...found('plugin environ', environOf(plugin!.pid)),
        ...found('supervisor environ', environOf(supervisor!.pid)),
      ];
      expect(leaks).toEqual([]);

      console.log(
        `secrets audit: ${needles.length} values; ${plugin!.log().split('\n').length} plugin and ${supervisor!.log().split('\n').length} supervisor log lines; ` +
          `${failures.length} errors (${failures.map((f) => `${f.rpc} ${f.code}: ${f.details.slice(0, 160)}`).join(', ')}); ${answers.length} answers; ` +
          `${metricSnapshots.length} metric scrapes; ${psSnapshots.length} ps snapshots; ${daemonEnvirons.length} daemon environments`,
      );
      // The logs really were at debug and really saw the failures, so the absence above means something.
      expect(plugin!.log()).toMatch(/"level":20/);
      expect(plugin!.log()).toContain('CreateVolume failed');
      expect(psSnapshots.join('\n')).toMatch(/s3fs .*passwd_file=/);
      expect(psSnapshots.join('\n')).toMatch(/rclone .*--config /);

      // Every file of ours (cloud.conf is the input), and every file written anywhere under /tmp during the run.
      expect(filesContaining(dir, needles, (p) => p === join(dir, 'cloud.conf'))).toEqual([]);
      const live = new Set((await readMountInfo()).map((m) => m.mountPoint));
      const olderThanRun = (p: string) => {
        try {
          return statSync(p).mtimeMs < started - 1000;
        } catch {
          return true;
        }
      };
      // jest's transform cache holds this file's own source, constants included.
      const skip = (p: string) =>
        live.has(p) ||
        p === s3Dir ||
        /^jest_/.test(relative(tmpdir(), p)) ||
        p === join(dir, 'cloud.conf') ||
        (!p.startsWith(dir) && !isDir(p) && olderThanRun(p));
      expect(filesContaining(tmpdir(), distinctive, skip)).toEqual([]);
    }, 60_000);
  },
);

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
