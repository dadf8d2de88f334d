/**
 * Workloads and checks of the e2e scenario: the StatefulSet, pods, `kubectl exec`, and what the node and the
 * cloud must show for a volume.
 */
import { readMountInfo } from '../../src/mount/mountinfo';
import { execFile } from '../../src/mount/exec';
import { kubectl, readOrUndefined, waitUntil, type Api, type LoopbackEnv } from './kube';
import { DRIVER, KUBELET_DIR } from './stack';

/** What `kubectl exec` needs: the cluster's kubeconfig (the host-process Stack, or the in-cluster suite). */
export interface HasEnv {
  env: LoopbackEnv;
}

/** The pod's shell: keep the first writer's hostname, count boots, exit at once on SIGTERM. */
export const WRITER = [
  'set -e',
  '[ -s /data/hostname ] || hostname > /data/hostname',
  'echo "$(date +%s)" >> /data/boots',
  'trap "exit 0" TERM',
  'sleep 100000 & wait',
].join('; ');

export function statefulSet(
  name: string,
  replicas: number,
  storageClassName: string,
  image: string,
  size = '1Gi',
): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      replicas,
      // All replicas at once: the scenario is about volumes, not about the StatefulSet's ordering.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: name } },
      serviceName: name,
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'writer',
              image,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', WRITER],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: claimSpec(storageClassName, { size }) }],
    },
  };
}

/** Pod `name` is Ready (and, given `notUid`, is a new pod). Returns its uid. */
export async function waitPodReady(
  api: Api,
  ns: string,
  name: string,
  limitMs: number,
  notUid?: string,
): Promise<string> {
  return waitUntil(
    `pod ${ns}/${name} Ready`,
    limitMs,
    async () => {
      const p = await readOrUndefined(() => api.core.readNamespacedPod({ name, namespace: ns }));
      if (!p || p.metadata?.deletionTimestamp || p.metadata?.uid === notUid) return undefined;
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? p.metadata!.uid!
        : undefined;
    },
    300,
  );
}

export async function waitPodGone(api: Api, ns: string, name: string, limitMs: number, uid?: string): Promise<void> {
  await waitUntil(
    `pod ${ns}/${name} gone`,
    limitMs,
    async () => {
      const p = await readOrUndefined(() => api.core.readNamespacedPod({ name, namespace: ns }));
      return !p || (uid !== undefined && p.metadata?.uid !== uid) ? true : undefined;
    },
    300,
  );
}

/** Waits until the driver has no VolumeAttachment left: every pod using its volumes is gone and detached. */
export async function waitNoVolumeAttachment(api: Api, limitMs: number): Promise<void> {
  await waitUntil('no VolumeAttachment', limitMs, async () =>
    (await api.storage.listVolumeAttachment()).items.some((v) => v.spec.attacher === DRIVER) ? undefined : true,
  );
}

/** Deletes the claims and waits until each of `pvs` is gone (reclaim Delete: the driver's DeleteVolume ran). */
export async function deleteClaimsWaitPvsGone(
  api: Api,
  ns: string,
  claims: Iterable<string>,
  pvs: Iterable<string>,
  limitMs = 120_000,
): Promise<void> {
  for (const c of claims) await api.core.deleteNamespacedPersistentVolumeClaim({ name: c, namespace: ns });
  const names = [...pvs];
  await waitUntil('the PVs gone', limitMs, async () => {
    for (const pv of names)
      if (await readOrUndefined(() => api.core.readPersistentVolume({ name: pv }))) return undefined;
    return true;
  });
}

/** `kubectl exec` in the pod; stdout. */
export function podExec(s: HasEnv, ns: string, pod: string, cmd: string[]): Promise<string> {
  return kubectl(s.env.KUBECONFIG, ['exec', '-n', ns, pod, '--', ...cmd]);
}

/** The claim's bound PV. */
export async function boundPv(api: Api, ns: string, claim: string) {
  const pvc = await api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
  if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) throw new Error(`${ns}/${claim} is ${pvc.status?.phase}`);
  return api.core.readPersistentVolume({ name: pvc.spec.volumeName });
}

/** The zones a PV's node affinity requires for `key`. */
export function pvZones(
  pv: {
    spec?: {
      nodeAffinity?: {
        required?: { nodeSelectorTerms?: Array<{ matchExpressions?: Array<{ key: string; values?: string[] }> }> };
      };
    };
  },
  key: string,
): string[] {
  return (pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []).flatMap((t) =>
    (t.matchExpressions ?? []).filter((e) => e.key === key).flatMap((e) => e.values ?? []),
  );
}

/**
 * Mounts of CSI volumes on this machine (kubelet's staging and publish dirs), or only those of `device`. Only
 * under kubelet's own dir: other tests on this machine make kubelet-like trees of their own elsewhere.
 */
export async function driverMounts(device?: string) {
  const all = await readMountInfo();
  return all
    .filter((m) => m.mountPoint.startsWith(`${KUBELET_DIR}/`))
    .filter(
      (m) => m.mountPoint.includes(`/kubernetes.io/csi/${DRIVER}/`) || m.mountPoint.includes('/kubernetes.io~csi/'),
    )
    .filter((m) => !device || m.source === device);
}

/** Loop devices whose backing file is under `dir` (the simulator's volumes). */
export async function loopDevicesUnder(dir: string): Promise<string[]> {
  const r = await execFile('losetup', ['-J', '-l']);
  if (!r.stdout.trim()) return [];
  const devs = (JSON.parse(r.stdout) as { loopdevices: Array<{ name: string; 'back-file': string | null }> })
    .loopdevices;
  return devs.filter((d) => (d['back-file'] ?? '').startsWith(dir)).map((d) => `${d.name} ${d['back-file']}`);
}

/** Events of an object, oldest first (reason: message). */
export async function eventsOf(
  api: Api,
  ns: string,
  kind: string,
  name: string,
): Promise<Array<{ reason: string; message: string; type: string }>> {
  const list = await api.core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
}

/**
 * A pod that mounts `claim` at /data and waits; with `devicePath` it gets the (raw block) claim as that device
 * instead. `securityContext` is the pod's (e.g. a non-root user and fsGroup).
 */
export function readerPod(
  name: string,
  claim: string,
  image: string,
  o: { securityContext?: { runAsUser: number; runAsGroup: number; fsGroup: number }; devicePath?: string } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      terminationGracePeriodSeconds: 5,
      ...(o.securityContext ? { securityContext: o.securityContext } : {}),
      containers: [
        {
          name: 'reader',
          image,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait'],
          ...(o.devicePath
            ? { volumeDevices: [{ name: 'data', devicePath: o.devicePath }] }
            : { volumeMounts: [{ name: 'data', mountPath: '/data' }] }),
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

/** Size of the filesystem on /data as the pod sees it (df -k), bytes. */
export async function podFsBytes(s: HasEnv, ns: string, pod: string): Promise<number> {
  const line = (await podExec(s, ns, pod, ['df', '-k', '/data'])).trim().split('\n').pop() ?? '';
  return Number(line.trim().split(/\s+/)[1]) * 1024;
}

const SNAPSHOTS = { group: 'snapshot.storage.k8s.io', version: 'v1' };

/** A VolumeSnapshot of `claim` in class `className`. */
export async function createVolumeSnapshot(
  api: Api,
  ns: string,
  name: string,
  claim: string,
  className: string,
): Promise<void> {
  await api.custom.createNamespacedCustomObject({
    ...SNAPSHOTS,
    namespace: ns,
    plural: 'volumesnapshots',
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name },
      spec: { volumeSnapshotClassName: className, source: { persistentVolumeClaimName: claim } },
    },
  });
}

/** The VolumeSnapshot readyToUse; its content's snapshot handle (the Cinder snapshot id). */
export async function waitVolumeSnapshotReady(
  api: Api,
  ns: string,
  name: string,
  limitMs: number,
): Promise<{ snapshotHandle: string; restoreSize?: string }> {
  const snap = await waitUntil(`the VolumeSnapshot ${ns}/${name} readyToUse`, limitMs, async () => {
    const v = (await api.custom.getNamespacedCustomObject({
      ...SNAPSHOTS,
      namespace: ns,
      plural: 'volumesnapshots',
      name,
    })) as { status?: { readyToUse?: boolean; boundVolumeSnapshotContentName?: string; restoreSize?: string } };
    return v.status?.readyToUse ? v.status : undefined;
  });
  const content = (await api.custom.getClusterCustomObject({
    ...SNAPSHOTS,
    plural: 'volumesnapshotcontents',
    name: snap.boundVolumeSnapshotContentName!,
  })) as { status?: { snapshotHandle?: string } };
  return { snapshotHandle: content.status!.snapshotHandle!, restoreSize: snap.restoreSize };
}

export async function deleteVolumeSnapshot(api: Api, ns: string, name: string): Promise<void> {
  await api.custom.deleteNamespacedCustomObject({ ...SNAPSHOTS, namespace: ns, plural: 'volumesnapshots', name });
}

interface ClaimOptions {
  size?: string;
  accessMode?: string;
  volumeMode?: 'Block';
  dataSource?: Record<string, string>;
}

/** A claim's spec: `size` (1Gi) in class `storageClassName`, ReadWriteOnce unless told. */
function claimSpec(storageClassName: string, o: ClaimOptions = {}): Record<string, unknown> {
  return {
    accessModes: [o.accessMode ?? 'ReadWriteOnce'],
    storageClassName,
    resources: { requests: { storage: o.size ?? '1Gi' } },
    ...(o.volumeMode ? { volumeMode: o.volumeMode } : {}),
    ...(o.dataSource ? { dataSource: o.dataSource } : {}),
  };
}

/** A PersistentVolumeClaim `name` (claimSpec). */
export function claim(name: string, storageClassName: string, o: ClaimOptions = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name }, spec: claimSpec(storageClassName, o) };
}

/**
 * Error lines the sidecars log in a run where nothing goes wrong, each with why it is harmless (the same
 * binaries as host processes and as kube-loopback's images). Anything else at error level fails the scenario.
 */
export const BENIGN_SIDECAR_ERRORS: ReadonlyArray<{ proc: string; re: RegExp; why: string }> = [
  // external-provisioner v5.2.0: its PV worker requeues a PV it has just deleted and logs the 404 of its re-read.
  {
    proc: 'csi-provisioner',
    re: /error syncing volume .*persistentvolumes .* not found/,
    why: 'requeue of a PV the provisioner deleted',
  },
  // external-provisioner v5.2.0: a deleted claim still queued in its claim and clone work queues.
  {
    proc: 'csi-provisioner',
    re: /"Unhandled Error" err=.*(Item '[^']+'|claim \\"[^"\\]+\\") in work queue no longer exists/,
    why: 'requeue of a deleted claim',
  },
  // external-provisioner v5.2.0, capacity tracking: two refreshes of one CSIStorageCapacity close together (the
  // capacity moves with each volume made) and the second updates from its cached copy before the informer has
  // delivered the first update's revision; the API server refuses it (optimistic concurrency), the controller
  // requeues the item and the retry uses the newer revision. Seen in 1 of 5 in-cluster runs on 2026-12-04.
  {
    proc: 'csi-provisioner',
    re: /update CSIStorageCapacity for .*the object has been modified; please apply your changes to the latest version/,
    why: "the capacity controller's own stale-cache update conflict, retried",
  },
  // external-attacher v4.8.1: it removes its finalizer from a PV the PV controller is deleting at the same moment;
  // the API server refuses that update (the pv-protection finalizer went in between) or the PV is already gone.
  {
    proc: 'csi-attacher',
    re: /Failed to remove finalizer from PersistentVolume.*(no new finalizers can be added if the object is being deleted|persistentvolumes \\"[^"\\]+\\" not found)/,
    why: 'race with the PV deletion',
  },
  // external-attacher v4.8.1, its reconciler (every --reconcile-sync, 1 min): it reads the VolumeAttachments from
  // its informer cache, then calls ListVolumes. An attach the cloud finished in between, whose ControllerPublish
  // answer csi-attacher has not yet written to the VA's status, shows as attached in ListVolumes and not in the
  // VA; it requeues the VA and the repeated ControllerPublish is a no-op. Only this direction is allowed: a VA
  // that says attached while the cloud has no attachment (attachedStatus=true found=false) stays an error.
  // Seen once in CI on 2026-12-04, during steps 1-6.
  {
    proc: 'csi-attacher',
    re: /VolumeAttachment attached status and actual state do not match.* attachedStatus=false found=true(\s|$)/,
    why: 'the reconciler saw an attach finish before the VolumeAttachment status was written',
  },
];

/** `lines` without those `allowed` says the scenario causes. */
export function unexpectedErrorLines<T extends { proc: string; line: string }>(
  lines: T[],
  allowed: ReadonlyArray<{ proc: string; re: RegExp }> = BENIGN_SIDECAR_ERRORS,
): T[] {
  return lines.filter((e) => !allowed.some((b) => b.proc === e.proc && b.re.test(e.line)));
}
