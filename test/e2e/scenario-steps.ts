/**
 * Steps 3, 5 and 7 of the e2e scenario (issue #17), each asserted on the cluster, the cloud and the node, shared
 * by the suite that runs the driver as host processes (statefulset, faults) and the one that runs it as pods
 * (in-cluster): only how the driver is reached or killed differs, and the caller passes that in.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { execFile } from '../../src/mount/exec';
import { readMountInfo } from '../../src/mount/mountinfo';
import type { Simulator } from '../../src/simulator';
import { k8s, kubectl, waitUntil, type Api, type LoopbackEnv } from '../../bench/kube/kube';
import {
  boundPv,
  claim,
  createVolumeSnapshot,
  deleteVolumeSnapshot,
  driverMounts,
  eventsOf,
  podExec,
  podFsBytes,
  readerPod,
  statefulSet,
  waitPodGone,
  waitPodReady,
  waitVolumeSnapshotReady,
} from '../../bench/kube/scenario';
import { DRIVER, REPO, ZONE } from '../../bench/kube/stack';
import { getObject } from '../helpers/fuse-procs';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY } from '../helpers/s3-server';

/** The cluster, the cloud and the namespace a step works in. */
export interface World {
  api: Api;
  env: LoopbackEnv;
  sim: Simulator;
  ns: string;
}

const GIB = 1024 ** 3;
const STORAGECLASSES = join(REPO, 'manifests', 'storageclasses');
/** The non-root pod of step 5: a uid and primary gid of its own, the volume's group only through fsGroup. */
export const NON_ROOT = { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000 };

async function createClaim(w: World, body: Record<string, unknown>): Promise<void> {
  await w.api.core.createNamespacedPersistentVolumeClaim({ namespace: w.ns, body: body as never });
}

async function createPod(w: World, body: Record<string, unknown>): Promise<void> {
  await w.api.core.createNamespacedPod({ namespace: w.ns, body: body as never });
}

/**
 * 3: a VolumeSnapshot (class csi-cinder-snapclass of manifests/storageclasses) of `source`, a live replica's claim
 * whose pod wrote its hostname, restored into a 2Gi claim of `sc`; a pod reads the file and sees the new size.
 * The reader pod and the snapshot are deleted again; returns the restored claim's PV name.
 */
export async function snapshotRestoreStep(
  w: World,
  o: { source: string; writer: string; sc: string },
): Promise<string> {
  const snapName = `${o.source}-snap`;
  await createVolumeSnapshot(w.api, w.ns, snapName, o.source, 'csi-cinder-snapclass');
  const snap = await waitVolumeSnapshotReady(w.api, w.ns, snapName, 60_000);
  const sourceVolume = (await boundPv(w.api, w.ns, o.source)).spec!.csi!.volumeHandle;
  expect(w.sim.getSnapshot(snap.snapshotHandle)).toMatchObject({
    status: 'available',
    volume_id: sourceVolume,
    size: 1,
  });

  await createClaim(
    w,
    claim('restored', o.sc, {
      size: '2Gi',
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: snapName },
    }),
  );
  await createPod(w, readerPod('reader', 'restored', w.env.KUBE_LOOPBACK_BUSYBOX));
  await waitPodReady(w.api, w.ns, 'reader', 120_000);
  expect((await podExec(w, w.ns, 'reader', ['cat', '/data/hostname'])).trim()).toBe(o.writer);
  // The restore is larger than the snapshot: the node grew ext4 to the device at stage.
  expect(await podFsBytes(w, w.ns, 'reader')).toBeGreaterThan(1.9 * GIB);
  const restoredPv = await boundPv(w.api, w.ns, 'restored');
  const restored = w.sim.getVolume(restoredPv.spec!.csi!.volumeHandle)!;
  expect(restored).toMatchObject({ size: 2, status: 'in-use', availability_zone: ZONE });
  expect((await driverMounts(restored.devicePath)).map((m) => m.fsType)).toEqual(['ext4', 'ext4']);

  await w.api.core.deleteNamespacedPod({ name: 'reader', namespace: w.ns, gracePeriodSeconds: 0 });
  await waitPodGone(w.api, w.ns, 'reader', 60_000);
  await deleteVolumeSnapshot(w.api, w.ns, snapName);
  await waitUntil('the Cinder snapshot deleted', 60_000, async () =>
    w.sim.listSnapshots().length === 0 ? true : undefined,
  );
  return restoredPv.metadata!.name!;
}

/**
 * 5a: a raw block claim (csi-cinder-sc-block, volumeMode Block) is a device in its pod: bytes written there are
 * the cloud device's bytes on the node, and nothing is mounted for it. Deletes the pod; returns the PV name.
 */
export async function rawBlockStep(w: World): Promise<string> {
  await createClaim(w, claim('raw', 'csi-cinder-sc-block', { volumeMode: 'Block' }));
  await createPod(w, readerPod('raw-user', 'raw', w.env.KUBE_LOOPBACK_BUSYBOX, { devicePath: '/dev/xvda' }));
  await waitPodReady(w.api, w.ns, 'raw-user', 120_000);
  const rawPv = await boundPv(w.api, w.ns, 'raw');
  expect(rawPv.spec?.volumeMode).toBe('Block');
  const rawVol = w.sim.getVolume(rawPv.spec!.csi!.volumeHandle)!;
  expect(rawVol).toMatchObject({ status: 'in-use', size: 1 });
  expect((await podExec(w, w.ns, 'raw-user', ['blockdev', '--getsize64', '/dev/xvda'])).trim()).toBe(String(GIB));
  await podExec(w, w.ns, 'raw-user', [
    'sh',
    '-c',
    'printf e2e-raw-block | dd of=/dev/xvda bs=4096 seek=1 conv=fsync 2>/dev/null',
  ]);
  expect(
    await podExec(w, w.ns, 'raw-user', ['sh', '-c', 'dd if=/dev/xvda bs=4096 skip=1 count=1 2>/dev/null | head -c 13']),
  ).toBe('e2e-raw-block');
  // The node: the very bytes on the cloud's device, which nobody formatted.
  const onHost = await execFile('dd', [`if=${rawVol.devicePath}`, 'bs=4096', 'skip=1', 'count=1', 'status=none']);
  expect(onHost.stdout.slice(0, 13)).toBe('e2e-raw-block');
  expect(await driverMounts(rawVol.devicePath)).toEqual([]);
  await w.api.core.deleteNamespacedPod({ name: 'raw-user', namespace: w.ns, gracePeriodSeconds: 0 });
  await waitPodGone(w.api, w.ns, 'raw-user', 60_000);
  return rawPv.metadata!.name!;
}

/** The S3 Secret of manifests/storageclasses with the operator's edits (endpoint and keys, as README says). */
export function s3CredentialsSecret(endpoint: string): Record<string, any> {
  const secret = parseDocument(readFileSync(join(STORAGECLASSES, 'csi-cinder-s3-credentials.yaml'), 'utf8')).toJS();
  secret.stringData = {
    ...secret.stringData,
    endpoint,
    accessKeyID: S3RVER_ACCESS_KEY,
    secretAccessKey: S3RVER_SECRET_KEY,
  };
  return secret;
}

/**
 * 5b: an object volume of the S3 class of manifests/storageclasses (applied by the caller, with the Secret of
 * s3CredentialsSecret) shared read-write by two pods: a non-root one with a pod fsGroup, which stages it, and a
 * root one. The fsGroup reaches the mount because the node plugin advertises VOLUME_MOUNT_GROUP
 * (--volume-mount-group in the manifests): the s3fs mount's group is the fsGroup (on the node and in the pods),
 * kubelet never chowns it (s3fs refuses a chown of its root with EIO). Deletes the pods; returns the PV name
 * and the bucket.
 */
export async function sharedObjectStep(w: World, s3Endpoint: string): Promise<{ pv: string; bucket: string }> {
  const sc = parseDocument(readFileSync(join(STORAGECLASSES, 'csi-cinder-sc-object-s3.yaml'), 'utf8')).toJS();
  await createClaim(w, claim('shared', sc.metadata.name, { accessMode: 'ReadWriteMany' }));
  const image = w.env.KUBE_LOOPBACK_BUSYBOX;
  // The non-root pod first: it stages the volume, so its fsGroup is the mount's group (one daemon per volume and node).
  await createPod(w, readerPod('obj-nonroot', 'shared', image, { securityContext: NON_ROOT }));
  await waitPodReady(w.api, w.ns, 'obj-nonroot', 120_000);
  await createPod(w, readerPod('obj-root', 'shared', image));
  await waitPodReady(w.api, w.ns, 'obj-root', 120_000);
  const objPv = await boundPv(w.api, w.ns, 'shared');
  const [, provider, bucket, prefix] = objPv.spec!.csi!.volumeHandle.split(':');
  expect(provider).toBe('s3');

  // The pods: the non-root one runs as its uid with the fsGroup as a supplementary group, and sees it on /data.
  expect((await podExec(w, w.ns, 'obj-nonroot', ['id'])).trim()).toMatch(
    new RegExp(`^uid=${NON_ROOT.runAsUser}\\b.* gid=${NON_ROOT.runAsGroup}\\b.*groups=.*\\b${NON_ROOT.fsGroup}\\b`),
  );
  expect((await podExec(w, w.ns, 'obj-nonroot', ['stat', '-c', '%g', '/data'])).trim()).toBe(String(NON_ROOT.fsGroup));
  await podExec(w, w.ns, 'obj-nonroot', ['sh', '-c', 'echo from-nonroot > /data/a.txt']);
  expect((await podExec(w, w.ns, 'obj-root', ['cat', '/data/a.txt'])).trim()).toBe('from-nonroot');
  await podExec(w, w.ns, 'obj-root', ['sh', '-c', 'echo from-root > /data/b.txt']);
  expect((await podExec(w, w.ns, 'obj-nonroot', ['cat', '/data/b.txt'])).trim()).toBe('from-root');
  expect(
    (await podExec(w, w.ns, 'obj-nonroot', ['sh', '-c', 'echo again >> /data/b.txt && cat /data/b.txt'])).trim(),
  ).toBe('from-root\nagain');

  // The cloud: the object store holds both files.
  expect(
    (await waitUntil('a.txt in the bucket', 30_000, () => getObject(s3Endpoint, bucket, `${prefix}a.txt`)))?.trim(),
  ).toBe('from-nonroot');
  expect(
    (
      await waitUntil('b.txt in the bucket, appended', 30_000, async () => {
        const b = await getObject(s3Endpoint, bucket, `${prefix}b.txt`);
        return b?.includes('again') ? b : undefined;
      })
    ).trim(),
  ).toBe('from-root\nagain');
  // The node: one FUSE mount (the supervisor's) at the staging path, its group the fsGroup.
  const fuse = (await readMountInfo()).filter(
    (m) =>
      m.fsType.startsWith('fuse') && m.mountPoint.startsWith(`/var/lib/kubelet/plugins/kubernetes.io/csi/${DRIVER}/`),
  );
  expect(fuse).toHaveLength(1);
  expect(statSync(fuse[0].mountPoint).gid).toBe(NON_ROOT.fsGroup);

  for (const p of ['obj-nonroot', 'obj-root'])
    await w.api.core.deleteNamespacedPod({ name: p, namespace: w.ns, gracePeriodSeconds: 0 });
  for (const p of ['obj-nonroot', 'obj-root']) await waitPodGone(w.api, w.ns, p, 60_000);
  return { pv: objPv.metadata!.name!, bucket };
}

/** The S3 Secret applied into the cluster (kube-system, where the class names it). */
export async function applyS3Secret(w: World, endpoint: string): Promise<void> {
  await kubectl(w.env.KUBECONFIG, ['apply', '-f', '-'], { input: stringify(s3CredentialsSecret(endpoint)) });
}

/** A claim of `sc` and a pod that mounts it, both named `name`. */
export async function claimWithPod(w: World, name: string, sc: string): Promise<void> {
  await createClaim(w, claim(name, sc));
  await createPod(w, readerPod(name, name, w.env.KUBE_LOOPBACK_BUSYBOX));
}

/**
 * 7a: the controller plugin killed (by `kill`, which also waits until it serves again) while csi-attacher waits
 * on its ControllerPublishVolume (Nova answers the attach after 8 s): the pod still starts on its volume.
 */
export async function killDuringAttachStep(w: World, sc: string, kill: () => Promise<void>): Promise<void> {
  w.sim.injectFault('nova.attachment.create', { kind: 'delay', delayMs: 8_000 });
  const before = w.sim.counters()['nova.attachment.create'] ?? 0;
  await claimWithPod(w, 'killed', sc);
  await waitUntil(
    'the attach request in flight',
    60_000,
    async () => ((w.sim.counters()['nova.attachment.create'] ?? 0) > before ? true : undefined),
    100,
  );
  const pv = await boundPv(w.api, w.ns, 'killed');
  const va = (await w.api.storage.listVolumeAttachment()).items.find(
    (v) => v.spec.source.persistentVolumeName === pv.metadata!.name,
  );
  expect(va?.status?.attached ?? false).toBe(false);
  await kill();
  await waitPodReady(w.api, w.ns, 'killed', 120_000);
  w.sim.clearFaults();
  const vol = w.sim.getVolume(pv.spec!.csi!.volumeHandle)!;
  expect(vol.status).toBe('in-use');
  expect(vol.attachments.map((a) => a.server_id)).toEqual([w.sim.localServerId]);
  expect((await podExec(w, w.ns, 'killed', ['sh', '-c', 'echo ok > /data/f && cat /data/f'])).trim()).toBe('ok');
}

/** The message an injected Cinder create failure carries (step 7b). */
const INJECTED_CREATE_FAULT = 'Volume driver reported an error: e2e injected backend failure';

/**
 * 7b: a Cinder create that ends in `error` shows as a ProvisioningFailed event with the driver's message on the
 * claim; the fault is one-shot, csi-provisioner retries and the pod runs.
 */
export async function provisioningFailedStep(w: World, sc: string): Promise<void> {
  w.sim.failNextVolumeCreate(undefined, INJECTED_CREATE_FAULT);
  await claimWithPod(w, 'doomed', sc);
  const failed = await waitUntil('the ProvisioningFailed event', 90_000, async () =>
    (await eventsOf(w.api, w.ns, 'PersistentVolumeClaim', 'doomed')).find((e) => e.reason === 'ProvisioningFailed'),
  );
  expect(failed.type).toBe('Warning');
  // The code comes from Cinder's status, not its text: `error` is RESOURCE_EXHAUSTED, so csi-provisioner may
  // try another topology (src/block/block-volumes.ts).
  expect(failed.message).toMatch(
    new RegExp(
      `rpc error: code = ResourceExhausted desc = Cinder could not create volume [0-9a-f-]+ \\(status error: ${INJECTED_CREATE_FAULT}\\); it was deleted so a retry starts afresh`,
    ),
  );
  await waitPodReady(w.api, w.ns, 'doomed', 120_000);
  expect(w.sim.listVolumes().filter((v) => v.status === 'error')).toEqual([]);
}

/**
 * 7c: a Keystone outage of `outageMs` (503 to everything, every token void) during a scale-up of a 2-replica
 * StatefulSet `outage` of `sc`: nothing is provisioned meanwhile and nothing gives up; afterwards both pods run,
 * at the pace of a normal scale-up.
 */
export async function keystoneOutageStep(w: World, sc: string, outageMs: number): Promise<void> {
  await w.api.apps.createNamespacedStatefulSet({
    namespace: w.ns,
    body: statefulSet('outage', 0, sc, w.env.KUBE_LOOPBACK_BUSYBOX) as never,
  });
  w.sim.revokeAllTokens();
  w.sim.injectFault('keystone.*', { kind: 'http-status', status: 503, times: Infinity });
  const start = Date.now();
  const m = k8s();
  await w.api.apps.patchNamespacedStatefulSetScale(
    { name: 'outage', namespace: w.ns, body: { spec: { replicas: 2 } } },
    m.setHeaderOptions('Content-Type', m.PatchStrategy.MergePatch),
  );
  await new Promise((r) => setTimeout(r, outageMs));
  for (const i of [0, 1]) {
    const pvc = await w.api.core.readNamespacedPersistentVolumeClaim({ name: `data-outage-${i}`, namespace: w.ns });
    expect(pvc.status?.phase).toBe('Pending');
  }
  w.sim.clearFaults();
  for (const i of [0, 1]) await waitPodReady(w.api, w.ns, `outage-${i}`, 120_000);
  const total = Date.now() - start;
  for (const i of [0, 1])
    expect((await podExec(w, w.ns, `outage-${i}`, ['cat', '/data/hostname'])).trim()).toBe(`outage-${i}`);
  // Delayed by the outage, then at the pace of a normal scale-up (the sidecars' retry backoff included).
  expect(total).toBeGreaterThan(outageMs);
  expect(total).toBeLessThan(outageMs + 90_000);
  expect(w.sim.listVolumes().filter((v) => v.status === 'error')).toEqual([]);
  expect(
    (await w.api.storage.listVolumeAttachment()).items.filter((v) => v.spec.attacher === DRIVER && !v.status?.attached),
  ).toEqual([]);
}
