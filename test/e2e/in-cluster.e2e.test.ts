/**
 * The operator's path for real (issue #19): the image .ci/build-image wrote, imported into kube-loopback's
 * containerd, runs as pods, first from our manifests (`kubectl apply -k` of an overlay over
 * manifests/cinder-csi-plugin) through the StatefulSet scenario of the e2e suite, then under the reference's own
 * manifests (../shared/reference/cpo-manifests, read here, rewritten only in image names and this sandbox's
 * needs) with a PVC and a pod. The cloud is the simulator on the pod bridge with its device plane; the suite
 * leaves the cluster as it found it (CI runs it after the host-process suite in the same cluster).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { describeIf } from '../helpers/prereq';
import { REFERENCE_DIR } from '../helpers/reference-manifests';
import { hasCapSysResource } from '../mount/loop-harness';
import {
  apiClients,
  k8s,
  KUBE_LOOPBACK_DIR,
  KUBECTL,
  kubeLoopbackUp,
  kubectl,
  readOrUndefined,
  waitUntil,
  type Api,
  type LoopbackEnv,
} from '../../bench/kube/kube';
import {
  BENIGN_SIDECAR_ERRORS,
  boundPv,
  deleteClaimsWaitPvsGone,
  driverMounts,
  loopDevicesUnder,
  pvZones,
  statefulSet,
  unexpectedErrorLines,
  waitNoVolumeAttachment,
  waitPodGone,
  waitPodReady,
} from '../../bench/kube/scenario';
import { DRIVER, errorLinesOf, REPO, ZONE, ZONE_KEY } from '../../bench/kube/stack';
import { readMountInfo } from '../../src/mount/mountinfo';
import { startS3rverProcess } from '../helpers/fuse-procs';
import {
  applyS3Secret,
  keystoneOutageStep,
  killDuringAttachStep,
  provisioningFailedStep,
  rawBlockStep,
  sharedObjectStep,
  snapshotRestoreStep,
  type World,
} from './scenario-steps';
import {
  BY_ID_DIR,
  deleteObjects,
  deleteStaleLeases,
  DROPPED_CONTAINER,
  driverPods,
  DRIVER_HOST_DIRS,
  ensurePluginImage,
  hostPidsOfContainer,
  IMAGE_TAR,
  metadataArg,
  PLUGIN_IMAGE,
  pluginErrorLines,
  POD_BRIDGE_IP,
  referenceObjects,
  renderOverlay,
  sidecarImages,
  startCloud,
  waitDriverPodsGone,
  waitDriverRegistered,
  waitWorkloadsReady,
  writeOverlay,
  type Cloud,
} from '../../bench/kube/in-cluster';

const NEEDS = {
  root: true,
  loop: true,
  commands: ['ctr', 'tar', 'losetup', 'dd'],
  paths: [
    join(KUBE_LOOPBACK_DIR, 'up.sh'),
    join(KUBE_LOOPBACK_DIR, 'images.sh'),
    KUBECTL,
    IMAGE_TAR,
    ...(REFERENCE_DIR ? [] : ['../shared/reference/cpo-manifests']),
  ],
};
const SC = 'csi-cinder-sc-delete';
const STS = 'web';
const REPLICAS = 3;
const pods = Array.from({ length: REPLICAS }, (_, i) => `${STS}-${i}`);
const claims = pods.map((p) => `data-${p}`);
const GIB = 1024 ** 3;
const NODE_PLUGIN_CONTAINERS = ['node-driver-registrar', 'cinder-csi-plugin'];
const CONTROLLER_SIDECARS = ['csi-attacher', 'csi-provisioner', 'csi-resizer', 'csi-snapshotter'];
const OUTAGE_MS = 30_000;
/** The message a kubernetes-csi sidecar exits with when the plugin's socket closes (csi-lib-utils ExitOnConnectionLoss). */
const LOST_CONNECTION = 'Lost connection to CSI driver, exiting';

describeIf("e2e in-cluster: the image as pods, from our manifests and from the reference's", NEEDS, () => {
  let env: LoopbackEnv;
  let api: Api;
  let cloud: Cloud;
  let sidecars: Awaited<ReturnType<typeof sidecarImages>>;
  const run = randomBytes(3).toString('hex');
  const ns = `e2e-ic-${run}`;
  const refNs = `e2e-ref-${run}`;
  /** Everything this suite applied, for the teardown (whatever step failed). */
  let overlayDir: string | undefined;
  let ours: Array<Record<string, any>> = [];
  let reference: Array<Record<string, any>> = [];
  const scFiles = [SC, 'csi-cinder-snapclass', 'csi-cinder-sc-block', 'csi-cinder-sc-object-s3'].map((n) =>
    join(REPO, 'manifests', 'storageclasses', `${n}.yaml`),
  );
  /** The object-storage server of step 5, on the pod bridge: the controller and the node pod both reach it. */
  let s3: Awaited<ReturnType<typeof startS3rverProcess>> | undefined;
  /** Claims the steps after the StatefulSet's made, and their PVs (step 6 deletes them). */
  const pvOf = new Map<string, string>();
  let objectBucket: string | undefined;
  const world = (): World => ({ api, env, sim: cloud.sim, ns });
  let refSc: Record<string, any> | undefined;
  const kc = (args: string[], input?: string, timeoutMs?: number) =>
    kubectl(env.KUBECONFIG, args, { input, timeoutMs });
  const exec = (namespace: string, pod: string, cmd: string[], container?: string) =>
    kc(['exec', '-n', namespace, pod, ...(container ? ['-c', container] : []), '--', ...cmd]);
  const fsBytes = async (namespace: string, pod: string) =>
    Number(
      ((await exec(namespace, pod, ['df', '-k', '/data'])).trim().split('\n').pop() ?? '').trim().split(/\s+/)[1],
    ) * 1024;
  const timings: Record<string, number> = {};
  /** The driver's DirectoryOrCreate hostPaths this run made: removed at the end. */
  let madeHostDirs: string[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    madeHostDirs = DRIVER_HOST_DIRS.filter((d) => !existsSync(d));
    env = await kubeLoopbackUp();
    api = apiClients(env.KUBECONFIG);
    const img = await ensurePluginImage();
    timings[img.imported ? 'image import (s)' : 'image already imported (s)'] = (Date.now() - t0) / 1000;
    sidecars = await sidecarImages();
    cloud = await startCloud(api, env);
    s3 = await startS3rverProcess(join(cloud.dir, 's3rver'), [], POD_BRIDGE_IP);
    await deleteStaleLeases(api);
  }, 420_000);

  afterAll(async () => {
    if (!env) return;
    const errors: unknown[] = [];
    const step = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        errors.push(`${what}: ${String(e)}`);
      }
    };
    // Claims first, while a driver still runs (reclaim Delete removes the Cinder volumes), then the driver.
    for (const n of [ns, refNs])
      await step(`namespace ${n}`, () =>
        kc(['delete', 'namespace', n, '--ignore-not-found', '--timeout=150s'], undefined, 170_000),
      );
    await step('PVs of our namespaces', () =>
      waitUntil(
        "the suite's PVs gone",
        120_000,
        async () =>
          (await api.core.listPersistentVolume()).items.some((pv) =>
            [ns, refNs].includes(pv.spec?.claimRef?.namespace ?? ''),
          )
            ? undefined
            : true,
        500,
      ),
    );
    if (ours.length) await step('our manifests', () => deleteObjects(env.KUBECONFIG, ours));
    if (reference.length) await step('the reference manifests', () => deleteObjects(env.KUBECONFIG, reference));
    if (refSc) await step('the reference StorageClass', () => deleteObjects(env.KUBECONFIG, [refSc!]));
    for (const f of scFiles) await step(f, () => kc(['delete', '--ignore-not-found', '-f', f]));
    await step('the S3 Secret', () =>
      kc(['delete', 'secret', '-n', 'kube-system', 'csi-cinder-s3-credentials', '--ignore-not-found']),
    );
    await step('the driver pods', () => waitDriverPodsGone(api, 120_000));
    await step('the cloud', () => cloud?.stop());
    await step('the S3 server', async () => s3?.kill());
    for (const d of madeHostDirs) rmSync(d, { recursive: true, force: true });
    if (overlayDir) rmSync(overlayDir, { recursive: true, force: true });
    if (cloud) rmSync(cloud.dir, { recursive: true, force: true });

    console.log(`in-cluster timings: ${JSON.stringify(timings)}`);
    if (errors.length) throw new Error(`teardown: ${errors.join('; ')}`);
  }, 600_000);

  describe('our manifests: kubectl apply -k of an overlay over manifests/cinder-csi-plugin', () => {
    it("renders with our image and kube-loopback's sidecars, and only the sandbox's patches", async () => {
      overlayDir = writeOverlay(cloud, sidecars, env.KUBECONFIG);
      ours = await renderOverlay(env.KUBECONFIG, overlayDir);
      const kustomization = readFileSync(join(overlayDir, 'kustomization.yaml'), 'utf8');
      // Each patch carries its reason.
      expect(kustomization.match(/^ {2}# .+\n {2}- path: /gm)).toHaveLength(3);
      const workloads = ours.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
      const images = workloads.flatMap((w) =>
        w.spec.template.spec.containers.map((c: any) => ({ c: c.name, image: c.image, pull: c.imagePullPolicy })),
      );
      for (const i of images) {
        expect(i.pull).toBe('Never');
        if (i.c === 'cinder-csi-plugin') expect(i.image).toBe(PLUGIN_IMAGE);
        else
          expect(i.image).toMatch(
            new RegExp(
              `^localhost/kube-loopback/${i.c === 'node-driver-registrar' ? 'csi-node-driver-registrar' : i.c}:v`,
            ),
          );
      }
      expect(images.map((i) => i.c)).not.toContain(DROPPED_CONTAINER);
      const node = workloads.find((w) => w.kind === 'DaemonSet')!.spec.template.spec;
      const plugin = node.containers.find((c: any) => c.name === 'cinder-csi-plugin');
      expect(plugin.args.at(-1)).toBe(metadataArg(cloud));
      expect(plugin.livenessProbe).toBeUndefined();
      const secret = ours.find((o) => o.kind === 'Secret' && o.metadata.name === 'cloud-config')!;
      expect(Buffer.from(secret.data['cloud.conf'], 'base64').toString()).toBe(cloud.cloudConf);
    });

    it('the controller Deployment and node DaemonSet become Ready as pods; kubelet registers the node plugin', async () => {
      const t0 = Date.now();
      await kc(['apply', '-k', overlayDir!]);
      await waitWorkloadsReady(api, 180_000);
      timings['apply -k to Ready (s)'] = (Date.now() - t0) / 1000;
      const reg = await waitDriverRegistered(api, env.KUBE_LOOPBACK_NODE, cloud.sim, 60_000);
      expect(reg.nodeID).toBe(cloud.sim.localServerId);
      timings['apply -k to registered (s)'] = (Date.now() - t0) / 1000;

      const running = await driverPods(api);
      const nodePod = running.find((p) => p.metadata?.labels?.app === 'csi-cinder-nodeplugin')!;
      // The FUSE supervisor runs in its own pod, which the node plugin creates (--fuse-supervisor-pod).
      await waitUntil('the FUSE supervisor pod', 120_000, async () => {
        const p = (await driverPods(api)).find((x) => x.metadata?.labels?.app === 'csi-cinder-fuse-supervisor');
        return p?.status?.containerStatuses?.[0]?.ready ? p : undefined;
      });
      const ctlPod = running.find((p) => p.metadata?.labels?.app === 'csi-cinder-controllerplugin')!;
      // The node pod as the manifests make it: every container running, the plugin privileged with the
      // kubelet dir Bidirectional and the host's /dev (the FUSE supervisor is a pod of its own).
      expect(
        nodePod.status?.containerStatuses
          ?.map((c) => ({ name: c.name, ready: c.ready, restarts: c.restartCount }))
          .sort((a, b) => a.name.localeCompare(b.name)),
      ).toEqual(
        NODE_PLUGIN_CONTAINERS.map((name) => ({ name, ready: true, restarts: 0 })).sort((a, b) =>
          a.name.localeCompare(b.name),
        ),
      );
      const pc = nodePod.spec!.containers.find((c) => c.name === 'cinder-csi-plugin')!;
      expect(pc.securityContext?.privileged).toBe(true);
      expect(pc.volumeMounts?.find((m) => m.mountPath === '/var/lib/kubelet')?.mountPropagation).toBe('Bidirectional');
      expect(pc.volumeMounts?.find((m) => m.mountPath === '/dev')?.mountPropagation).toBe('None');
      expect(nodePod.spec!.hostNetwork).toBe(true);
      expect(ctlPod.status?.containerStatuses?.map((c) => c.name).sort()).toEqual([
        'cinder-csi-plugin',
        'csi-attacher',
        'csi-provisioner',
        'csi-resizer',
        'csi-snapshotter',
      ]);
      expect(ctlPod.status?.containerStatuses?.every((c) => c.ready && c.restartCount === 0)).toBe(true);
      // The FUSE supervisor pod's socket, in the hostPath /run/cinder-csi both pods mount (--fuse-supervisor-socket).
      expect(
        await exec(
          'kube-system',
          nodePod.metadata!.name!,
          ['test', '-S', '/run/cinder-csi/supervisor.sock'],
          'cinder-csi-plugin',
        ),
      ).toBe('');

      for (const f of scFiles) {
        await kc(['delete', '--ignore-not-found', '-f', f]);
        await kc(['apply', '-f', f]);
      }
      await kc(['create', 'namespace', ns]);
    }, 300_000);

    it("the sandbox clamps the node pod's oom_score_adj to containerd's own (restrict_oom_score_adj); a real node gives it -997", async () => {
      const nodePod = (await driverPods(api)).find((p) => p.metadata?.labels?.app === 'csi-cinder-nodeplugin')!;
      expect(nodePod.spec?.priorityClassName).toBe('system-node-critical');
      // kubelet asks for -997 for a system-node-critical pod's containers; containerd, restricted because this
      // sandbox's root lacks CAP_SYS_RESOURCE, gives no container a lower score than its own.
      const containerd = readFileSync('/run/kube-loopback/containerd.pid', 'utf8').trim();
      const own = Number(readFileSync(`/proc/${containerd}/oom_score_adj`, 'utf8').trim());
      const inPod = Number(
        (
          await exec('kube-system', nodePod.metadata!.name!, ['cat', '/proc/1/oom_score_adj'], 'cinder-csi-plugin')
        ).trim(),
      );
      expect({ containerd: own, plugin: inPod }).toEqual({ containerd: own, plugin: Math.max(-997, own) });
    });

    it("1: a StatefulSet of 3 replicas gets ext4 volumes in the node's zone through the driver in pods", async () => {
      const t0 = Date.now();
      await api.apps.createNamespacedStatefulSet({
        namespace: ns,
        body: statefulSet(STS, REPLICAS, SC, env.KUBE_LOOPBACK_BUSYBOX) as never,
      });
      for (const p of pods) await waitPodReady(api, ns, p, 180_000);
      timings['StatefulSet of 3 Ready (s)'] = (Date.now() - t0) / 1000;
      for (const [i, claim] of claims.entries()) {
        const pv = await boundPv(api, ns, claim);
        expect(pv.spec?.csi?.driver).toBe(DRIVER);
        expect(pv.spec?.csi?.fsType).toBe('ext4');
        expect(pvZones(pv, ZONE_KEY)).toEqual([ZONE]);
        const vol = cloud.sim.getVolume(pv.spec!.csi!.volumeHandle);
        expect(vol).toMatchObject({ status: 'in-use', availability_zone: ZONE, size: 1 });
        expect(vol!.attachments.map((a) => a.server_id)).toEqual([cloud.sim.localServerId]);
        // --extra-create-metadata reached the plugin in its pod.
        expect(vol!.metadata['csi.storage.k8s.io/pvc/name']).toBe(claim);
        const vas = (await api.storage.listVolumeAttachment()).items.filter(
          (v) => v.spec.source.persistentVolumeName === pv.metadata!.name,
        );
        expect(vas.map((v) => ({ node: v.spec.nodeName, attached: v.status?.attached }))).toEqual([
          { node: env.KUBE_LOOPBACK_NODE, attached: true },
        ]);
        // Mounts made inside the node pod reached the host (Bidirectional): staged ext4 and the pod's bind mount.
        const mounts = await driverMounts(vol!.devicePath);
        expect(mounts.map((m) => m.fsType)).toEqual(['ext4', 'ext4']);
        const text = await waitUntil(
          `${pods[i]} to write its hostname`,
          10_000,
          async () => (await exec(ns, pods[i], ['cat', '/data/hostname']).catch(() => '')) || undefined,
        );
        expect(text.trim()).toBe(pods[i]);
      }
      expect(cloud.sim.listVolumes()).toHaveLength(REPLICAS);
    }, 240_000);

    it('2: a deleted pod comes back on its volume with its file; so do all after a scale to 0 and back to 3', async () => {
      const pvOf = new Map<string, string>();
      for (const c of claims) pvOf.set(c, (await boundPv(api, ns, c)).metadata!.name!);
      const old = await api.core.readNamespacedPod({ name: pods[1], namespace: ns });
      await api.core.deleteNamespacedPod({ name: pods[1], namespace: ns });
      await waitPodReady(api, ns, pods[1], 120_000, old.metadata!.uid);
      expect((await exec(ns, pods[1], ['cat', '/data/hostname'])).trim()).toBe(pods[1]);

      await api.apps.patchNamespacedStatefulSetScale(
        { name: STS, namespace: ns, body: { spec: { replicas: 0 } } },
        mergePatch(),
      );
      for (const p of pods) await waitPodGone(api, ns, p, 90_000);
      await waitUntil('every volume detached', 90_000, async () =>
        cloud.sim.listVolumes().every((v) => v.status === 'available') ? true : undefined,
      );
      expect(await driverMounts()).toEqual([]);
      await api.apps.patchNamespacedStatefulSetScale(
        { name: STS, namespace: ns, body: { spec: { replicas: REPLICAS } } },
        mergePatch(),
      );
      for (const p of pods) await waitPodReady(api, ns, p, 120_000);
      for (const [i, p] of pods.entries()) {
        expect((await exec(ns, p, ['cat', '/data/hostname'])).trim()).toBe(p);
        expect((await exec(ns, p, ['cat', '/data/boots'])).trim().split('\n')).toHaveLength(i === 1 ? 3 : 2);
        expect((await boundPv(api, ns, claims[i])).metadata!.name).toBe(pvOf.get(claims[i]));
      }
    }, 300_000);

    it('3: a snapshot of a live replica restored into a larger claim: a pod reads the file and sees the new size', async () => {
      const t0 = Date.now();
      pvOf.set('restored', await snapshotRestoreStep(world(), { source: claims[0], writer: pods[0], sc: SC }));
      timings['3: snapshot, restore, read (s)'] = (Date.now() - t0) / 1000;
    }, 240_000);

    it("4: an expanded claim grows its PV; the sandbox refuses the online ext4 grow with the node plugin's exact error, the next stage grows it", async () => {
      const claim = claims[2];
      const pvName = (await boundPv(api, ns, claim)).metadata!.name!;
      const oldPod = await api.core.readNamespacedPod({ name: pods[2], namespace: ns });
      await api.core.patchNamespacedPersistentVolumeClaim(
        { name: claim, namespace: ns, body: { spec: { resources: { requests: { storage: '2Gi' } } } } },
        mergePatch(),
      );
      await waitUntil('the PV at 2Gi', 90_000, async () =>
        (await api.core.readPersistentVolume({ name: pvName })).spec?.capacity?.storage === '2Gi' ? true : undefined,
      );
      if (hasCapSysResource()) {
        await waitUntil('the pod to see 2 GiB', 90_000, async () =>
          (await fsBytes(ns, pods[2])) > 1.9 * GIB ? true : undefined,
        );
      } else {
        const failed = await waitUntil('the node resize error on the claim', 90_000, async () => {
          const c = await api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
          return (c.status?.conditions ?? []).find(
            (x) => x.type === 'NodeResizeError' && /was denied/.test(x.message ?? ''),
          );
        });
        // Through the node pod the same as through a host process: kubelet -> NodeExpandVolume -> resize2fs in the image.
        expect(failed.message).toMatch(
          /rpc error: code = FailedPrecondition desc = online resize of \/dev\/loop\d+ was denied: the node plugin needs CAP_SYS_RESOURCE \(resize2fs [^\n]*\nresize2fs: Permission denied to resize filesystem\)$/,
        );
        expect(await fsBytes(ns, pods[2])).toBeLessThan(1.1 * GIB);
        await api.core.deleteNamespacedPod({ name: pods[2], namespace: ns });
        await waitPodReady(api, ns, pods[2], 120_000, oldPod.metadata!.uid);
      }
      expect(await fsBytes(ns, pods[2])).toBeGreaterThan(1.9 * GIB);
      await waitUntil('the claim resized', 60_000, async () => {
        const c = await api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
        return c.status?.capacity?.storage === '2Gi' && !(c.status?.conditions ?? []).length ? true : undefined;
      });
    }, 300_000);

    it('5: a raw block claim is a device in its pod; an S3 object volume is shared read-write by a non-root pod with an fsGroup and a root pod', async () => {
      const t0 = Date.now();
      pvOf.set('raw', await rawBlockStep(world()));
      // The Secret as README says an operator edits it: the endpoint (here the pod bridge) and the keys.
      await applyS3Secret(world(), s3!.endpoint);
      const obj = await sharedObjectStep(world(), s3!.endpoint);
      pvOf.set('shared', obj.pv);
      objectBucket = obj.bucket;
      timings['5: raw block and shared object volume (s)'] = (Date.now() - t0) / 1000;
    }, 300_000);

    it("6: deleting the StatefulSet and every claim leaves no PV, VolumeAttachment, Cinder volume, bucket, mount or loop device; the driver's and the sidecars' logs hold no error", async () => {
      for (const c of claims) pvOf.set(c, (await boundPv(api, ns, c)).metadata!.name!);
      await api.apps.deleteNamespacedStatefulSet({ name: STS, namespace: ns });
      for (const p of pods) await waitPodGone(api, ns, p, 90_000);
      // The claims go once the volumes are detached, as a user would (deleting them earlier only makes
      // csi-provisioner log "still attached" errors while it waits).
      await waitNoVolumeAttachment(api, 90_000);
      await deleteClaimsWaitPvsGone(api, ns, pvOf.keys(), pvOf.values());
      pvOf.clear();
      await waitUntil('no Cinder volume', 60_000, async () =>
        cloud.sim.listVolumes().length === 0 ? true : undefined,
      );
      expect(cloud.sim.listSnapshots()).toEqual([]);
      expect(await driverMounts()).toEqual([]);
      expect(await loopDevicesUnder(cloud.stateDir)).toEqual([]);
      expect(await byIdLinks()).toEqual([]);
      expect(
        (await readMountInfo()).filter(
          (m) => m.fsType.startsWith('fuse') && m.mountPoint.startsWith('/var/lib/kubelet/'),
        ),
      ).toEqual([]);
      // reclaimData delete: the object volume's bucket went with its PV (DeleteVolume with the provisioner Secret).
      if (objectBucket) expect((await fetch(`${s3!.endpoint}/${objectBucket}`)).status).toBe(404);
      await kc(['delete', 'secret', '-n', 'kube-system', 'csi-cinder-s3-credentials']);
      // Every container of the driver's pods: the plugin's JSON lines at error level, the sidecars' klog E/F lines.
      expect(unexpectedErrorLines(await driverErrorLines())).toEqual([]);
    }, 300_000);

    it('7a: the controller plugin SIGKILLed while csi-attacher waits on it: its container restarts once, the pod still starts', async () => {
      const t0 = Date.now();
      await killDuringAttachStep(world(), SC, async () => {
        const ctl = await controllerPod();
        const plugin = ctl.status!.containerStatuses!.find((c) => c.name === 'cinder-csi-plugin')!;
        expect(plugin.restartCount).toBe(0);
        // The plugin is a host process inside the pod's cgroup: the node binary running our CLI.
        const pids = hostPidsOfContainer(plugin.containerID!).filter((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cinder-csi-plugin'),
        );
        expect(pids).toHaveLength(1);
        process.kill(pids[0], 'SIGKILL');
        await waitUntil('the plugin container restarted and ready', 90_000, async () => {
          const c = (await controllerPod()).status?.containerStatuses?.find((x) => x.name === 'cinder-csi-plugin');
          return c && c.restartCount === 1 && c.ready ? true : undefined;
        });
      });
      timings['7a: kill during attach to pod Ready (s)'] = (Date.now() - t0) / 1000;
      const statuses = (await controllerPod()).status!.containerStatuses!;
      const plugin = statuses.find((c) => c.name === 'cinder-csi-plugin')!;
      expect({ restarts: plugin.restartCount, exitCode: plugin.lastState?.terminated?.exitCode }).toEqual({
        restarts: 1,
        exitCode: 128 + 9,
      });
      // The sidecars lose their connection to the plugin and exit by design (kubelet restarts them); none more
      // than once, none for another reason.
      for (const c of statuses.filter((x) => CONTROLLER_SIDECARS.includes(x.name))) {
        expect(c.ready).toBe(true);
        if (c.restartCount > 0)
          expect({ name: c.name, restarts: c.restartCount, message: c.lastState?.terminated?.message?.trim() }).toEqual(
            {
              name: c.name,
              restarts: 1,
              message: LOST_CONNECTION,
            },
          );
      }
      const nodePod = (await driverPods(api)).find((p) => p.metadata?.labels?.app === 'csi-cinder-nodeplugin')!;
      expect(nodePod.status?.containerStatuses?.every((c) => c.ready && c.restartCount === 0)).toBe(true);
    }, 240_000);

    it("7b: a Cinder create ending in error shows as a ProvisioningFailed event with the driver's message; the retry provisions", async () => {
      await provisioningFailedStep(world(), SC);
    }, 240_000);

    it('7c: a 30 s Keystone outage during a scale-up delays it and nothing more', async () => {
      const restarts = async () =>
        (await driverPods(api)).flatMap((p) =>
          (p.status?.containerStatuses ?? []).map((c) => `${p.metadata!.name}/${c.name}: ${c.restartCount}`),
        );
      const before = await restarts();
      const t0 = Date.now();
      await keystoneOutageStep(world(), SC, OUTAGE_MS);
      timings['7c: scale-up through a 30 s Keystone outage (s)'] = (Date.now() - t0) / 1000;
      // No container of the driver restarted: its Probe does not depend on Keystone.
      expect(await restarts()).toEqual(before);
    }, 300_000);

    it('7: after the faults, every claim deleted leaves nothing; the logs hold only the errors the faults caused', async () => {
      const faultClaims = ['killed', 'doomed', 'data-outage-0', 'data-outage-1'];
      const pvs = await Promise.all(faultClaims.map(async (c) => (await boundPv(api, ns, c)).metadata!.name!));
      await api.apps.deleteNamespacedStatefulSet({ name: 'outage', namespace: ns });
      for (const p of ['killed', 'doomed'])
        await api.core.deleteNamespacedPod({ name: p, namespace: ns, gracePeriodSeconds: 0 });
      for (const p of ['killed', 'doomed', 'outage-0', 'outage-1']) await waitPodGone(api, ns, p, 90_000);
      await waitNoVolumeAttachment(api, 90_000);
      await deleteClaimsWaitPvsGone(api, ns, faultClaims, pvs);
      await waitUntil('no Cinder volume', 60_000, async () =>
        cloud.sim.listVolumes().length === 0 ? true : undefined,
      );
      expect(await driverMounts()).toEqual([]);
      expect(await loopDevicesUnder(cloud.stateDir)).toEqual([]);
      const lines = await driverErrorLines();
      // For the record: how many lines each fault caused, by container.
      console.log(
        `step 7 error lines: ${JSON.stringify(
          FAULT_ERRORS.map(
            (f) => `${f.proc} (${f.why}): ${lines.filter((l) => l.proc === f.proc && f.re.test(l.line)).length}`,
          ),
        )}`,
      );
      expect(unexpectedErrorLines(lines, [...BENIGN_SIDECAR_ERRORS, ...FAULT_ERRORS])).toEqual([]);
    }, 300_000);

    it('kubectl delete -k removes the driver: pods gone, CSIDriver gone, kubelet unregisters the node plugin', async () => {
      for (const f of scFiles) await kc(['delete', '--ignore-not-found', '-f', f]);
      await kc(['delete', '-k', overlayDir!, '--wait=true', '--timeout=120s'], undefined, 130_000);
      await waitDriverPodsGone(api, 120_000);
      ours = [];
      expect(await readOrUndefined(() => api.storage.readCSIDriver({ name: DRIVER }))).toBeUndefined();
      await waitUntil('the CSINode without the driver', 60_000, async () => {
        const n = await readOrUndefined(() => api.storage.readCSINode({ name: env.KUBE_LOOPBACK_NODE }));
        return n?.spec.drivers?.some((d) => d.name === DRIVER) ? undefined : true;
      });
    }, 200_000);
  });

  describe("the reference's manifests (cpo-manifests/*.yaml) with our image", () => {
    it("run unchanged but for image names and the sandbox's patches: Ready, registered", async () => {
      reference = referenceObjects(REFERENCE_DIR!, cloud, sidecars, env.KUBECONFIG);
      const kinds = reference.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(kinds).toEqual(
        expect.arrayContaining([
          'CSIDriver/cinder.csi.openstack.org',
          'Secret/cloud-config',
          'Deployment/csi-cinder-controllerplugin',
          'DaemonSet/csi-cinder-nodeplugin',
        ]),
      );
      // The plugin containers keep the reference's args, first of them its binary path.
      for (const w of reference.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')) {
        const plugin = w.spec.template.spec.containers.find((c: any) => c.name === 'cinder-csi-plugin');
        expect(plugin.image).toBe(PLUGIN_IMAGE);
        expect(plugin.args[0]).toBe('/bin/cinder-csi-plugin');
      }
      await deleteStaleLeases(api);
      const t0 = Date.now();
      await kc(['apply', '-f', '-'], reference.map((o) => stringify(o)).join('---\n'));
      await waitWorkloadsReady(api, 180_000);
      await waitDriverRegistered(api, env.KUBE_LOOPBACK_NODE, cloud.sim, 60_000);
      timings['reference apply to registered (s)'] = (Date.now() - t0) / 1000;
      for (const p of await driverPods(api)) {
        expect(p.status?.containerStatuses?.every((c) => c.ready && c.restartCount === 0)).toBe(true);
      }
    }, 300_000);

    it("a PVC and a pod through them (examples/nginx.yaml's class and claim) reach Running with data written", async () => {
      const docs = parseAllDocuments(readFileSync(join(REFERENCE_DIR!, 'examples', 'nginx.yaml'), 'utf8'))
        .map((d) => d.toJS())
        .filter(Boolean) as Array<Record<string, any>>;
      refSc = docs.find((d) => d.kind === 'StorageClass')!;
      const pvc = docs.find((d) => d.kind === 'PersistentVolumeClaim')!;
      const pod = docs.find((d) => d.kind === 'Pod')!;
      // No nginx image here (no registry): busybox writes into the same mount path instead.
      const mountPath = pod.spec.containers[0].volumeMounts[0].mountPath as string;
      pod.spec.containers[0] = {
        ...pod.spec.containers[0],
        image: env.KUBE_LOOPBACK_BUSYBOX,
        imagePullPolicy: 'Never',
        ports: undefined,
        command: [
          'sh',
          '-c',
          `echo written-through-the-reference > ${mountPath}/data; trap "exit 0" TERM; sleep 100000 & wait`,
        ],
      };
      pod.spec.terminationGracePeriodSeconds = 5;
      await kc(['create', 'namespace', refNs]);
      await kc(['apply', '-f', '-'], stringify(refSc));
      await kc(['apply', '-n', refNs, '-f', '-'], [pvc, pod].map((o) => stringify(o)).join('---\n'));
      await waitPodReady(api, refNs, pod.metadata.name, 180_000);
      expect((await api.core.readNamespacedPod({ name: pod.metadata.name, namespace: refNs })).status?.phase).toBe(
        'Running',
      );
      expect((await exec(refNs, pod.metadata.name, ['cat', `${mountPath}/data`])).trim()).toBe(
        'written-through-the-reference',
      );
      const pv = await boundPv(api, refNs, pvc.metadata.name);
      const vol = cloud.sim.getVolume(pv.spec!.csi!.volumeHandle)!;
      expect(vol).toMatchObject({ status: 'in-use', size: 1 });
      expect((await driverMounts(vol.devicePath)).map((m) => m.fsType)).toEqual(['ext4', 'ext4']);

      await api.core.deleteNamespacedPod({ name: pod.metadata.name, namespace: refNs, gracePeriodSeconds: 0 });
      await waitPodGone(api, refNs, pod.metadata.name, 90_000);
      await waitNoVolumeAttachment(api, 90_000);
      await deleteClaimsWaitPvsGone(api, refNs, [pvc.metadata.name], [pv.metadata!.name!]);
      await waitUntil('no Cinder volume', 60_000, async () =>
        cloud.sim.listVolumes().length === 0 ? true : undefined,
      );
      expect(await driverMounts()).toEqual([]);
      expect(await pluginErrorLines(env.KUBECONFIG, await driverPods(api))).toEqual([]);
    }, 300_000);

    it("everything removed: the driver's objects, pods and registration, no mount or loop device left", async () => {
      await kc(['delete', 'namespace', refNs, '--timeout=120s'], undefined, 130_000);
      await deleteObjects(env.KUBECONFIG, [refSc!, ...reference]);
      refSc = undefined;
      reference = [];
      await waitDriverPodsGone(api, 120_000);
      expect(await readOrUndefined(() => api.storage.readCSIDriver({ name: DRIVER }))).toBeUndefined();
      await waitUntil('the CSINode without the driver', 60_000, async () => {
        const n = await readOrUndefined(() => api.storage.readCSINode({ name: env.KUBE_LOOPBACK_NODE }));
        return n?.spec.drivers?.some((d) => d.name === DRIVER) ? undefined : true;
      });
      expect(await driverMounts()).toEqual([]);
      expect(await loopDevicesUnder(cloud.stateDir)).toEqual([]);
      expect(await byIdLinks()).toEqual([]);
    }, 300_000);
  });

  /** The controller plugin's pod. */
  async function controllerPod() {
    const p = (await driverPods(api)).find((x) => x.metadata?.labels?.app === 'csi-cinder-controllerplugin');
    if (!p) throw new Error('no controller pod');
    return p;
  }

  /**
   * Error lines of every container of the driver's pods, its previous instance's too (a container restarted in
   * step 7): the plugin's JSON lines at error level, the sidecars' klog E and F lines. `proc` is the container.
   */
  async function driverErrorLines(): Promise<Array<{ proc: string; line: string }>> {
    const out: Array<{ proc: string; line: string }> = [];
    for (const p of await driverPods(api)) {
      for (const c of p.status?.containerStatuses ?? []) {
        const logs = [await kc(['logs', '-n', 'kube-system', p.metadata!.name!, '-c', c.name])];
        if (c.restartCount > 0)
          logs.push(await kc(['logs', '--previous', '-n', 'kube-system', p.metadata!.name!, '-c', c.name]));
        for (const log of logs) out.push(...errorLinesOf(log).map((line) => ({ proc: c.name, line })));
      }
    }
    return out;
  }

  /** The simulator's by-id links still there. */
  async function byIdLinks(): Promise<string[]> {
    return existsSync(BY_ID_DIR) ? readdirSync(BY_ID_DIR).filter((n) => n.startsWith('virtio-')) : [];
  }
});

/**
 * The error lines step 7 causes on purpose, each matched narrowly with why. Filled from what the sidecars and
 * the plugin say to each fault.
 */
const FAULT_ERRORS: ReadonlyArray<{ proc: string; re: RegExp; why: string }> = [
  // 7a: the plugin SIGKILLed; a controller sidecar that notices its gRPC connection drop logs it and exits
  // (csi-lib-utils ExitOnConnectionLoss, klog E lines then exit 1); kubelet restarts it. Measured: csi-attacher
  // and csi-provisioner do, csi-resizer and csi-snapshotter (idle) reconnect unnoticed.
  ...CONTROLLER_SIDECARS.map((proc) => ({
    proc,
    re: new RegExp(
      `^E\\d{4} .* connection\\.go:\\d+\\] "Lost connection(" address="unix://[^"]+"| to CSI driver, exiting")$`,
    ),
    why: 'the plugin was killed (7a)',
  })),
  // 7b leaves no error line: csi-provisioner reports the failed create as the claim's ProvisioningFailed event
  // (asserted) and the plugin logs RESOURCE_EXHAUSTED as a client error (warn).
  // 7c: Keystone answers 503 during the outage, so the plugin's calls that need a token (CreateVolume, GetCapacity,
  // ListVolumes) fail UNAVAILABLE, and the sidecars that made them report it before they retry.
  {
    proc: 'cinder-csi-plugin',
    re: /^\{"level":50\b.*"code":"UNAVAILABLE".*"error":"keystone token\.create \(POST [^)]*\/v3\/auth\/tokens\) failed: HTTP 503: Injected fault/,
    why: 'the Keystone outage (7c)',
  },
  ...['csi-provisioner', 'csi-attacher'].map((proc) => ({
    proc,
    re: /^E\d{4} .*code = Unavailable desc = keystone token\.create \(POST [^)]*\/v3\/auth\/tokens\) failed: HTTP 503: Injected fault/,
    why: 'the Keystone outage (7c)',
  })),
];

/** The options that make client-node send a JSON merge patch. */
function mergePatch() {
  const m = k8s();
  return m.setHeaderOptions('Content-Type', m.PatchStrategy.MergePatch);
}
