/**
 * Step 7 of the scenario: faults through the real stack (kube-loopback's kubelet and kubernetes-csi sidecars,
 * the driver as host processes, the simulator's fault injection). The controller SIGKILLed while csi-attacher
 * waits on it; a Cinder create that ends in `error`; a 30 s Keystone outage during a scale-up.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { KUBE_LOOPBACK_DIR, KUBECTL, k8s, kubectl, readOrUndefined, waitUntil } from '../../bench/kube/kube';
import { boundPv, eventsOf, podExec, readerPod, statefulSet, waitPodReady } from '../../bench/kube/scenario';
import { DRIVER, REPO, startStack, type Stack } from '../../bench/kube/stack';

const NEEDS = {
  root: true,
  loop: true,
  commands: ['losetup', 'mkfs.ext4', 'e2fsck', 'blkid'],
  paths: [join(KUBE_LOOPBACK_DIR, 'up.sh'), KUBECTL, join(REPO, 'dist', 'src', 'cli.js')],
};
const SC = 'csi-cinder-sc-delete';
const OUTAGE_MS = 30_000;

describeIf('e2e: faults through kubelet and the kubernetes-csi sidecars', NEEDS, () => {
  let s: Stack;
  const ns = `e2e-f-${randomBytes(3).toString('hex')}`;
  const kc = (args: string[]) => kubectl(s.env.KUBECONFIG, args);
  const claimPod = async (name: string) => {
    await s.api.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName: SC, resources: { requests: { storage: '1Gi' } } },
      },
    });
    await s.api.core.createNamespacedPod({
      namespace: ns,
      body: readerPod(name, name, s.env.KUBE_LOOPBACK_BUSYBOX) as never,
    });
  };

  beforeAll(async () => {
    s = await startStack({ fuse: false });
    await kc(['create', 'namespace', ns]);
    await kc([
      'delete',
      '--ignore-not-found',
      '-f',
      join(REPO, 'manifests', 'storageclasses', 'csi-cinder-sc-delete.yaml'),
    ]);
    await kc(['apply', '-f', join(REPO, 'manifests', 'storageclasses', 'csi-cinder-sc-delete.yaml')]);
  }, 240_000);

  afterAll(async () => {
    if (!s) return;
    try {
      s.sim.clearFaults();
      await kc(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
      await waitUntil(
        `namespace ${ns} and its PVs gone`,
        120_000,
        async () => {
          const left = (await s.api.core.listPersistentVolume()).items.filter(
            (pv) => pv.spec?.claimRef?.namespace === ns,
          );
          return !(await readOrUndefined(() => s.api.core.readNamespace({ name: ns }))) && left.length === 0
            ? true
            : undefined;
        },
        500,
      );
      await waitUntil('no Cinder volume', 60_000, async () => (s.sim.listVolumes().length === 0 ? true : undefined));
    } finally {
      await s.stop();
    }
  }, 240_000);

  it('the controller SIGKILLed while csi-attacher waits on ControllerPublishVolume: restarted, the pod still starts', async () => {
    // Nova takes 8 s to answer the attach: csi-attacher's ControllerPublishVolume is in flight when the plugin dies.
    s.sim.injectFault('nova.attachment.create', { kind: 'delay', delayMs: 8_000 });
    const before = s.sim.counters()['nova.attachment.create'] ?? 0;
    await claimPod('killed');
    await waitUntil(
      'the attach request in flight',
      60_000,
      async () => ((s.sim.counters()['nova.attachment.create'] ?? 0) > before ? true : undefined),
      100,
    );
    const pv = await boundPv(s.api, ns, 'killed');
    const va = (await s.api.storage.listVolumeAttachment()).items.find(
      (v) => v.spec.source.persistentVolumeName === pv.metadata!.name,
    );
    expect(va?.status?.attached ?? false).toBe(false);
    const old = s.procs.get('controller')!;
    await old.kill();
    expect(old.child.signalCode).toBe('SIGKILL');
    s.startController();
    await waitPodReady(s.api, ns, 'killed', 120_000);
    const vol = s.sim.getVolume(pv.spec!.csi!.volumeHandle)!;
    expect(vol.status).toBe('in-use');
    expect(vol.attachments.map((a) => a.server_id)).toEqual([s.sim.localServerId]);
    expect((await podExec(s, ns, 'killed', ['sh', '-c', 'echo ok > /data/f && cat /data/f'])).trim()).toBe('ok');
  }, 180_000);

  it("a Cinder create ending in error shows as a ProvisioningFailed event with the driver's message; the retry provisions", async () => {
    const fault = 'Volume driver reported an error: e2e injected backend failure';
    s.sim.failNextVolumeCreate(undefined, fault);
    await claimPod('doomed');
    const failed = await waitUntil('the ProvisioningFailed event', 90_000, async () =>
      (await eventsOf(s.api, ns, 'PersistentVolumeClaim', 'doomed')).find((e) => e.reason === 'ProvisioningFailed'),
    );
    expect(failed.type).toBe('Warning');
    // The code comes from Cinder's status, not its text: `error` is RESOURCE_EXHAUSTED, so csi-provisioner may
    // try another topology (src/block/block-volumes.ts).
    expect(failed.message).toMatch(
      new RegExp(
        `rpc error: code = ResourceExhausted desc = Cinder could not create volume [0-9a-f-]+ \\(status error: ${fault}\\); it was deleted so a retry starts afresh`,
      ),
    );
    // The fault was one-shot: csi-provisioner retries and the pod runs; the errored volume is gone.
    await waitPodReady(s.api, ns, 'doomed', 120_000);
    expect(s.sim.listVolumes().filter((v) => v.status === 'error')).toEqual([]);
  }, 240_000);

  it('a 30 s Keystone outage during a scale-up delays it and nothing more', async () => {
    const sts = statefulSet('outage', 0, SC, s.env.KUBE_LOOPBACK_BUSYBOX);
    await s.api.apps.createNamespacedStatefulSet({ namespace: ns, body: sts as never });
    // Keystone answers 503 to everything and every token issued so far is void: the driver must re-authenticate.
    s.sim.revokeAllTokens();
    s.sim.injectFault('keystone.*', { kind: 'http-status', status: 503, times: Infinity });
    const start = Date.now();
    const m = k8s();
    await s.api.apps.patchNamespacedStatefulSetScale(
      { name: 'outage', namespace: ns, body: { spec: { replicas: 2 } } },
      m.setHeaderOptions('Content-Type', m.PatchStrategy.MergePatch),
    );
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    // During the outage nothing was provisioned and no pod ran, and nothing gave up for good: both claims wait.
    for (const i of [0, 1]) {
      const pvc = await s.api.core.readNamespacedPersistentVolumeClaim({ name: `data-outage-${i}`, namespace: ns });
      expect(pvc.status?.phase).toBe('Pending');
    }
    s.sim.clearFaults();
    for (const i of [0, 1]) await waitPodReady(s.api, ns, `outage-${i}`, 120_000);
    const total = Date.now() - start;
    for (const i of [0, 1])
      expect((await podExec(s, ns, `outage-${i}`, ['cat', '/data/hostname'])).trim()).toBe(`outage-${i}`);
    // Delayed by the outage, then at the pace of a normal scale-up (the sidecars' retry backoff included).
    expect(total).toBeGreaterThan(OUTAGE_MS);
    expect(total).toBeLessThan(OUTAGE_MS + 90_000);
    expect(s.sim.listVolumes().filter((v) => v.status === 'error')).toEqual([]);
    // The driver never restarted: its Probe does not depend on Keystone.
    for (const p of ['controller', 'node']) expect(s.procs.get(p)!.child.exitCode).toBeNull();
    expect(
      (await s.api.storage.listVolumeAttachment()).items.filter(
        (v) => v.spec.attacher === DRIVER && !v.status?.attached,
      ),
    ).toEqual([]);
  }, 300_000);
});
