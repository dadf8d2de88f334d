/**
 * Workloads and checks of the e2e scenario: the StatefulSet, pods, `kubectl exec`, and what the node and the
 * cloud must show for a volume.
 */
import { readMountInfo } from '../../../src/mount/mountinfo';
import { execFile } from '../../../src/mount/exec';
import { kubectl, readOrUndefined, waitUntil, type Api } from './kube';
import { DRIVER, type Stack } from './stack';

/** The pod's shell: keep the first writer's hostname, count boots, exit at once on SIGTERM. */
export const WRITER = [
  'set -e',
  '[ -s /data/hostname ] || hostname > /data/hostname',
  'echo "$(date +%s)" >> /data/boots',
  'trap "exit 0" TERM',
  'sleep 100000 & wait',
].join('; ');

export function statefulSet(name: string, replicas: number, storageClassName: string, image: string, size = '1Gi'): Record<string, unknown> {
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
          containers: [{
            name: 'writer', image, imagePullPolicy: 'Never', command: ['sh', '-c', WRITER],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          }],
        },
      },
      volumeClaimTemplates: [{
        metadata: { name: 'data' },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName, resources: { requests: { storage: size } } },
      }],
    },
  };
}

/** Pod `name` is Ready (and, given `notUid`, is a new pod). Returns its uid. */
export async function waitPodReady(api: Api, ns: string, name: string, limitMs: number, notUid?: string): Promise<string> {
  return waitUntil(`pod ${ns}/${name} Ready`, limitMs, async () => {
    const p = await readOrUndefined(() => api.core.readNamespacedPod({ name, namespace: ns }));
    if (!p || p.metadata?.deletionTimestamp || p.metadata?.uid === notUid) return undefined;
    return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p.metadata!.uid! : undefined;
  }, 300);
}

export async function waitPodGone(api: Api, ns: string, name: string, limitMs: number, uid?: string): Promise<void> {
  await waitUntil(`pod ${ns}/${name} gone`, limitMs, async () => {
    const p = await readOrUndefined(() => api.core.readNamespacedPod({ name, namespace: ns }));
    return !p || (uid !== undefined && p.metadata?.uid !== uid) ? true : undefined;
  }, 300);
}

/** `kubectl exec` in the pod; stdout. */
export function podExec(s: Stack, ns: string, pod: string, cmd: string[]): Promise<string> {
  return kubectl(s.env.KUBECONFIG, ['exec', '-n', ns, pod, '--', ...cmd]);
}

/** The claim's bound PV. */
export async function boundPv(api: Api, ns: string, claim: string) {
  const pvc = await api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
  if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) throw new Error(`${ns}/${claim} is ${pvc.status?.phase}`);
  return api.core.readPersistentVolume({ name: pvc.spec.volumeName });
}

/** The zones a PV's node affinity requires for `key`. */
export function pvZones(pv: { spec?: { nodeAffinity?: { required?: { nodeSelectorTerms?: Array<{ matchExpressions?: Array<{ key: string; values?: string[] }> }> } } } }, key: string): string[] {
  return (pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []).flatMap((t) => (t.matchExpressions ?? []).filter((e) => e.key === key).flatMap((e) => e.values ?? []));
}

/** Mounts of CSI volumes on this machine (kubelet's staging and publish dirs), or only those of `device`. */
export async function driverMounts(device?: string) {
  const all = await readMountInfo();
  return all.filter((m) => m.mountPoint.includes(`/kubernetes.io/csi/${DRIVER}/`) || m.mountPoint.includes('/kubernetes.io~csi/'))
    .filter((m) => !device || m.source === device);
}

/** Loop devices whose backing file is under `dir` (the simulator's volumes). */
export async function loopDevicesUnder(dir: string): Promise<string[]> {
  const r = await execFile('losetup', ['-J', '-l']);
  if (!r.stdout.trim()) return [];
  const devs = (JSON.parse(r.stdout) as { loopdevices: Array<{ name: string; 'back-file': string | null }> }).loopdevices;
  return devs.filter((d) => (d['back-file'] ?? '').startsWith(dir)).map((d) => `${d.name} ${d['back-file']}`);
}

/** Events of an object, oldest first (reason: message). */
export async function eventsOf(api: Api, ns: string, kind: string, name: string): Promise<Array<{ reason: string; message: string; type: string }>> {
  const list = await api.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
}

/** A pod that mounts `claim` at /data and waits. */
export function readerPod(name: string, claim: string, image: string): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers: [{ name: 'reader', image, imagePullPolicy: 'Never', command: ['sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait'], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

/** Size of the filesystem on /data as the pod sees it (df -k), bytes. */
export async function podFsBytes(s: Stack, ns: string, pod: string): Promise<number> {
  const line = (await podExec(s, ns, pod, ['df', '-k', '/data'])).trim().split('\n').pop() ?? '';
  return Number(line.trim().split(/\s+/)[1]) * 1024;
}
