/**
 * The mission's scenario through the driver's real clients: kubelet, csi-provisioner, csi-attacher,
 * csi-resizer, csi-snapshotter and node-driver-registrar of kube-loopback (../shared/kube-loopback, started
 * here with its idempotent up.sh unless .ci/run did), the driver as host processes from dist/ against the
 * simulator's device plane and metadata service. Each step is asserted on the cluster, the cloud and the node.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { k8s, KUBE_LOOPBACK_DIR, KUBECTL, kubectl, readOrUndefined, waitUntil } from '../../bench/kube/kube';
import {
  boundPv,
  deleteClaimsWaitPvsGone,
  driverMounts,
  eventsOf,
  loopDevicesUnder,
  podExec,
  podFsBytes,
  pvZones,
  statefulSet,
  unexpectedErrorLines,
  waitNoVolumeAttachment,
  waitPodGone,
  waitPodReady,
} from '../../bench/kube/scenario';
import { hasCapSysResource } from '../mount/loop-harness';
import { startS3rverProcess } from '../helpers/fuse-procs';
import { readMountInfo } from '../../src/mount/mountinfo';
import { applyS3Secret, rawBlockStep, sharedObjectStep, snapshotRestoreStep } from './scenario-steps';
import {
  DRIVER,
  DROPPED_ARGS,
  hostArgs,
  knownFlags,
  manifestContainers,
  REPO,
  startStack,
  ZONE,
  ZONE_KEY,
  type Stack,
} from '../../bench/kube/stack';

const NEEDS = {
  root: true,
  loop: true,
  fuse: true,
  commands: ['losetup', 'mkfs.ext4', 'e2fsck', 'resize2fs', 'blkid', 's3fs'],
  paths: [join(KUBE_LOOPBACK_DIR, 'up.sh'), KUBECTL, join(REPO, 'dist', 'src', 'cli.js')],
};
const SC = 'csi-cinder-sc-delete';
const STS = 'web';
const REPLICAS = 3;
const pods = Array.from({ length: REPLICAS }, (_, i) => `${STS}-${i}`);
const claims = pods.map((p) => `data-${p}`);
const GIB = 1024 ** 3;

describeIf('e2e: a StatefulSet on kube-loopback through kubelet and the kubernetes-csi sidecars', NEEDS, () => {
  let s: Stack;
  const ns = `e2e-${randomBytes(3).toString('hex')}`;
  const kc = (args: string[], input?: string) => kubectl(s.env.KUBECONFIG, args, { input });
  /** Error lines present before a step that causes some on purpose. */
  const pvOf = new Map<string, string>();
  let s3: Awaited<ReturnType<typeof startS3rverProcess>> | undefined;
  let objectBucket: string | undefined;

  beforeAll(async () => {
    s = await startStack();
    s3 = await startS3rverProcess(join(s.dir, 's3rver'), []);
    await kc(['create', 'namespace', ns]);
    await kc(['label', 'namespace', ns, 'cinder-csi-e2e=true']);
    // A class's parameters cannot change: one left by an earlier run of other manifests is replaced.
    for (const f of [
      'csi-cinder-sc-delete.yaml',
      'csi-cinder-snapclass.yaml',
      'csi-cinder-sc-block.yaml',
      'csi-cinder-sc-object-s3.yaml',
    ]) {
      await kc(['delete', '--ignore-not-found', '-f', join(REPO, 'manifests', 'storageclasses', f)]);
      await kc(['apply', '-f', join(REPO, 'manifests', 'storageclasses', f)]);
    }
  }, 240_000);

  afterAll(async () => {
    if (!s) return;
    try {
      await teardownNamespace(s, ns);
      await kc(['delete', 'secret', '-n', 'kube-system', 'csi-cinder-s3-credentials', '--ignore-not-found']);
    } finally {
      await s.stop();
      await s3?.kill();
    }
  }, 240_000);

  it("runs each sidecar with the manifests' arguments, none unknown to its version", async () => {
    const cc = manifestContainers('cinder-csi-plugin/cinder-csi-controllerplugin.yaml');
    const nc = manifestContainers('cinder-csi-plugin/cinder-csi-nodeplugin.yaml');
    const unknown: string[] = [];
    for (const [name, c] of [
      ...['csi-provisioner', 'csi-attacher', 'csi-resizer', 'csi-snapshotter'].map((n) => [n, cc.get(n)!] as const),
      ['csi-node-driver-registrar', nc.get('node-driver-registrar')!] as const,
    ]) {
      const flags = knownFlags(join(s.env.KUBE_LOOPBACK_BIN, name));
      expect(flags.has('csi-address')).toBe(true);
      for (const a of hostArgs(c, { ADDRESS: '/x', DRIVER_REG_SOCK_PATH: '/x' })) {
        const flag = /^--?([a-z0-9-]+)/.exec(a)?.[1];
        if (flag && !flags.has(flag) && !DROPPED_ARGS.some((d) => d.sidecar === name && d.arg === a))
          unknown.push(`${name} ${a}`);
      }
    }
    expect(unknown).toEqual([]);
    for (const p of s.procs.values())
      expect({ name: p.name, exit: p.child.exitCode }).toEqual({ name: p.name, exit: null });
  });

  it("1: a StatefulSet of 3 replicas gets ext4 volumes in the node's zone, each pod writes its hostname", async () => {
    const sts = statefulSet(STS, REPLICAS, SC, s.env.KUBE_LOOPBACK_BUSYBOX);
    await s.api.apps.createNamespacedStatefulSet({ namespace: ns, body: sts as never });
    // WaitForFirstConsumer: the claims stay Pending until the scheduler picks the node.
    const first = await s.api.core
      .readNamespacedPersistentVolumeClaim({ name: claims[0], namespace: ns })
      .catch(() => undefined);
    if (first) expect(['Pending', 'Bound']).toContain(first.status?.phase);
    for (const p of pods) await waitPodReady(s.api, ns, p, 120_000);

    for (const [i, claim] of claims.entries()) {
      const pv = await boundPv(s.api, ns, claim);
      pvOf.set(claim, pv.metadata!.name!);
      expect(pv.spec?.csi?.driver).toBe(DRIVER);
      expect(pv.spec?.csi?.fsType).toBe('ext4');
      expect(pvZones(pv, ZONE_KEY)).toEqual([ZONE]);
      // The cloud: a Cinder volume in zone-a, in-use by this node's server, the PVC's name in its metadata.
      const vol = s.sim.getVolume(pv.spec!.csi!.volumeHandle);
      expect(vol).toMatchObject({ status: 'in-use', availability_zone: ZONE, size: 1 });
      expect(vol!.attachments.map((a) => a.server_id)).toEqual([s.sim.localServerId]);
      expect(vol!.metadata['csi.storage.k8s.io/pvc/name']).toBe(claim);
      // The cluster: a VolumeAttachment attached to this node.
      const vas = (await s.api.storage.listVolumeAttachment()).items.filter(
        (v) => v.spec.source.persistentVolumeName === pv.metadata!.name,
      );
      expect(
        vas.map((v) => ({ node: v.spec.nodeName, attacher: v.spec.attacher, attached: v.status?.attached })),
      ).toEqual([{ node: s.env.KUBE_LOOPBACK_NODE, attacher: DRIVER, attached: true }]);
      // The node: the volume's loop device staged as ext4 and bind-mounted into the pod.
      const mounts = await driverMounts(vol!.devicePath);
      expect(mounts.map((m) => m.fsType)).toEqual(['ext4', 'ext4']);
      expect(mounts.map((m) => m.mountPoint).sort()).toEqual([
        expect.stringMatching(
          new RegExp(`^/var/lib/kubelet/plugins/kubernetes.io/csi/${DRIVER}/[0-9a-f]+/globalmount$`),
        ),
        expect.stringMatching(
          new RegExp(`^/var/lib/kubelet/pods/[0-9a-f-]+/volumes/kubernetes.io~csi/${pv.metadata!.name}/mount$`),
        ),
      ]);
      // The pod: its hostname in its own volume.
      const text = await waitUntil(
        `${pods[i]} to write its hostname`,
        10_000,
        async () => (await podExec(s, ns, pods[i], ['cat', '/data/hostname']).catch(() => '')) || undefined,
      );
      expect(text.trim()).toBe(pods[i]);
      expect((await podExec(s, ns, pods[i], ['df', '-P', '/data'])).split('\n')[1]).toMatch(/^\/dev\/loop\d+ /);
    }
    expect(s.sim.listVolumes()).toHaveLength(REPLICAS);
  }, 180_000);

  it('2: a deleted pod comes back on its volume with its file; so do all after a scale to 0 and back to 3', async () => {
    const boots = async (p: string) => (await podExec(s, ns, p, ['cat', '/data/boots'])).trim().split('\n').length;
    const old = await s.api.core.readNamespacedPod({ name: pods[1], namespace: ns });
    await s.api.core.deleteNamespacedPod({ name: pods[1], namespace: ns });
    await waitPodReady(s.api, ns, pods[1], 120_000, old.metadata!.uid);
    expect((await podExec(s, ns, pods[1], ['cat', '/data/hostname'])).trim()).toBe(pods[1]);
    expect(
      await waitUntil('the second boot line', 10_000, async () => ((await boots(pods[1])) === 2 ? 2 : undefined)),
    ).toBe(2);

    await s.api.apps.patchNamespacedStatefulSetScale(
      { name: STS, namespace: ns, body: { spec: { replicas: 0 } } },
      setMergePatch(),
    );
    for (const p of pods) await waitPodGone(s.api, ns, p, 90_000);
    // Scaled to 0: every volume detached (the attach/detach controller and csi-attacher), none deleted.
    await waitUntil('every volume detached', 90_000, async () =>
      s.sim.listVolumes().every((v) => v.status === 'available') ? true : undefined,
    );
    expect(s.sim.listVolumes()).toHaveLength(REPLICAS);
    expect(await driverMounts()).toEqual([]);
    await waitNoVolumeAttachment(s.api, 60_000);

    await s.api.apps.patchNamespacedStatefulSetScale(
      { name: STS, namespace: ns, body: { spec: { replicas: REPLICAS } } },
      setMergePatch(),
    );
    for (const p of pods) await waitPodReady(s.api, ns, p, 120_000);
    for (const [i, p] of pods.entries()) {
      expect((await podExec(s, ns, p, ['cat', '/data/hostname'])).trim()).toBe(p);
      const want = i === 1 ? 3 : 2;
      expect(
        await waitUntil(`${p}'s boot line`, 10_000, async () => ((await boots(p)) === want ? want : undefined)),
      ).toBe(want);
      expect((await boundPv(s.api, ns, claims[i])).metadata!.name).toBe(pvOf.get(claims[i]));
    }
  }, 300_000);

  it('3: a snapshot of a live replica restored into a larger claim: a pod reads the file and sees the new size', async () => {
    pvOf.set('restored', await snapshotRestoreStep({ ...s, ns }, { source: claims[0], writer: pods[0], sc: SC }));
  }, 240_000);

  it('4: an expanded claim grows its PV; the filesystem grows online, or where the sandbox forbids that, at the next stage', async () => {
    const claim = claims[2];
    const pvName = pvOf.get(claim)!;
    const volumeId = (await boundPv(s.api, ns, claim)).spec!.csi!.volumeHandle;
    const oldPod = await s.api.core.readNamespacedPod({ name: pods[2], namespace: ns });
    await s.api.core.patchNamespacedPersistentVolumeClaim(
      { name: claim, namespace: ns, body: { spec: { resources: { requests: { storage: '2Gi' } } } } },
      setMergePatch(),
    );
    // csi-resizer: ControllerExpandVolume on the in-use volume (--handle-volume-inuse-error=false), the PV grows.
    await waitUntil('the PV at 2Gi', 90_000, async () =>
      (await s.api.core.readPersistentVolume({ name: pvName })).spec?.capacity?.storage === '2Gi' ? true : undefined,
    );
    expect(s.sim.getVolume(volumeId)).toMatchObject({ size: 2, status: 'in-use' });
    if (hasCapSysResource()) {
      // A real node: kubelet's NodeExpandVolume grows the mounted ext4 and the running pod sees it.
      await waitUntil('the pod to see 2 GiB', 90_000, async () =>
        (await podFsBytes(s, ns, pods[2])) > 1.9 * GIB ? true : undefined,
      );
    } else {
      // This sandbox: root lacks CAP_SYS_RESOURCE, the kernel refuses EXT4_IOC_RESIZE_FS on the mounted ext4 and
      // the node plugin says so; kubelet reports it on the pod and keeps the claim's resize pending.
      const failed = await waitUntil('the node resize error on the claim', 90_000, async () => {
        const c = await s.api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
        const found = [
          ...(c.status?.conditions ?? []).map((x) => ({ where: `condition ${x.type}`, message: x.message ?? '' })),
          ...(await eventsOf(s.api, ns, 'PersistentVolumeClaim', claim)).map((e) => ({
            where: `claim event ${e.reason}`,
            message: e.message,
          })),
          ...(await eventsOf(s.api, ns, 'Pod', pods[2])).map((e) => ({
            where: `pod event ${e.reason}`,
            message: e.message,
          })),
        ].find((x) => /was denied/.test(x.message));
        return found ? { ...found, statuses: c.status?.allocatedResourceStatuses } : undefined;
      });
      // kubelet 1.32 puts it on the claim's NodeResizeError condition, e.g. "failed to expand pvc with
      // Expander.NodeExpand failed to expand the volume : rpc error: code = FailedPrecondition desc = online resize
      // of /dev/loop1 was denied: the node plugin needs CAP_SYS_RESOURCE (resize2fs 1.47.0 (5-Feb-2023)
      // resize2fs: Permission denied to resize filesystem)".
      expect(failed.where).toBe('condition NodeResizeError');
      expect(failed.message).toMatch(
        /rpc error: code = FailedPrecondition desc = online resize of \/dev\/loop\d+ was denied: the node plugin needs CAP_SYS_RESOURCE \(resize2fs [^\n]*\nresize2fs: Permission denied to resize filesystem\)$/,
      );
      expect(await podFsBytes(s, ns, pods[2])).toBeLessThan(1.1 * GIB);
      // The pod restarted on the larger volume: NodeStageVolume finds ext4 smaller than its device and grows it offline.
      await s.api.core.deleteNamespacedPod({ name: pods[2], namespace: ns });
      await waitPodReady(s.api, ns, pods[2], 120_000, oldPod.metadata!.uid);
    }
    expect(await podFsBytes(s, ns, pods[2])).toBeGreaterThan(1.9 * GIB);
    expect((await podExec(s, ns, pods[2], ['cat', '/data/hostname'])).trim()).toBe(pods[2]);
    // The claim: capacity 2Gi and no resize condition left.
    const pvc = await waitUntil('the claim resized', 60_000, async () => {
      const c = await s.api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
      return c.status?.capacity?.storage === '2Gi' && !(c.status?.conditions ?? []).length ? c : undefined;
    });
    expect(pvc.status?.allocatedResourceStatuses ?? {}).toEqual({});
  }, 300_000);

  it('5: a raw block claim is a device in its pod; an S3 object volume is shared read-write by a non-root pod with an fsGroup and a root pod', async () => {
    pvOf.set('raw', await rawBlockStep({ ...s, ns }));
    await applyS3Secret({ ...s, ns }, s3!.endpoint);
    const obj = await sharedObjectStep({ ...s, ns }, s3!.endpoint);
    pvOf.set('shared', obj.pv);
    objectBucket = obj.bucket;
  }, 300_000);

  it('6: deleting the StatefulSet and its claims leaves no PV, VolumeAttachment, Cinder volume, mount or loop device', async () => {
    await s.api.apps.deleteNamespacedStatefulSet({ name: STS, namespace: ns });
    for (const p of pods) await waitPodGone(s.api, ns, p, 90_000);
    // As a user would (and the provisioner wants): the claims go once the volumes are detached; deleting them
    // earlier only makes csi-provisioner log "still attached" errors while it waits.
    await waitNoVolumeAttachment(s.api, 90_000);
    await deleteClaimsWaitPvsGone(s.api, ns, pvOf.keys(), pvOf.values());
    await waitNoVolumeAttachment(s.api, 60_000);
    await waitUntil('no Cinder volume', 60_000, async () => (s.sim.listVolumes().length === 0 ? true : undefined));
    expect(await driverMounts()).toEqual([]);
    expect(await loopDevicesUnder(s.stateDir)).toEqual([]);
    expect(await loopDevicesUnder('/var/lib/kubelet')).toEqual([]);
    expect(
      (await readMountInfo()).filter(
        (m) => m.fsType.startsWith('fuse') && m.mountPoint.startsWith('/var/lib/kubelet/'),
      ),
    ).toEqual([]);
    // reclaimData delete: the object volume's bucket went with its PV.
    if (objectBucket) expect((await fetch(`${s3!.endpoint}/${objectBucket}`)).status).toBe(404);
    // Nothing went wrong on the way: no error line in the driver's or the sidecars' logs.
    expect(unexpectedErrors(s)).toEqual([]);
  }, 300_000);
});

function unexpectedErrors(s: Stack): Array<{ proc: string; line: string }> {
  return unexpectedErrorLines(s.errorLines());
}

/** The options that make client-node send a JSON merge patch. */
function setMergePatch() {
  const m = k8s();
  return m.setHeaderOptions('Content-Type', m.PatchStrategy.MergePatch);
}

/**
 * Deletes the namespace while the driver still runs (so reclaim Delete removes the Cinder volumes), waits for
 * its PVs to go; a PV that stays (a failed run) loses its finalizers so the next run starts clean.
 */
async function teardownNamespace(s: Stack, ns: string): Promise<void> {
  await kubectl(s.env.KUBECONFIG, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  const ours = async () =>
    (await s.api.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === ns);
  try {
    await waitUntil(
      `namespace ${ns} and its PVs gone`,
      120_000,
      async () => {
        const nsLeft = await readOrUndefined(() => s.api.core.readNamespace({ name: ns }));
        return !nsLeft && (await ours()).length === 0 ? true : undefined;
      },
      500,
    );
  } catch (e) {
    for (const pv of await ours()) {
      await kubectl(s.env.KUBECONFIG, [
        'patch',
        'pv',
        pv.metadata!.name!,
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      ]).catch(() => undefined);
      await kubectl(s.env.KUBECONFIG, ['delete', 'pv', pv.metadata!.name!, '--wait=false', '--ignore-not-found']).catch(
        () => undefined,
      );
    }
    throw e;
  }
}
