/**
 * Controller side against the real OpenStack of ../shared/openstack-loopback (Keystone, Cinder 21, Nova 26):
 * csi-provisioner binds a claim and csi-attacher attaches it to the Nova server fake-node-0, through the
 * driver's controller as a host process on kube-loopback. No kubelet is involved: fake-node-0 is a Node object
 * whose CSINode entry gives the server id as the driver's node id, which is where csi-attacher reads it.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { describeIf } from '../helpers/prereq';
import {
  describeOpenStack,
  FAKE_NODE_NAME,
  fakeNodeId,
  itName,
  loopbackAuth,
  loopbackClients,
  LOOPBACK_CLOUD_CONF,
} from '../helpers/openstack-loopback';
import { KUBE_LOOPBACK_DIR, KUBECTL, kubectl, readOrUndefined, waitUntil } from '../../bench/kube/kube';
import { boundPv } from '../../bench/kube/scenario';
import { DRIVER, REPO, startStack, ZONE_KEY, type Stack } from '../../bench/kube/stack';

const NEEDS = { root: true, paths: [join(KUBE_LOOPBACK_DIR, 'up.sh'), KUBECTL, join(REPO, 'dist', 'src', 'cli.js')] };

describeOpenStack('e2e: csi-provisioner and csi-attacher against the real OpenStack', () => {
  describeIf('on kube-loopback', NEEDS, () => {
    let s: Stack;
    const name = itName('e2e', 'k8s');
    const ns = name;
    const sc = `${name}-immediate`;
    const clients = loopbackClients(loopbackAuth());
    let serverId = '';
    let zone = '';
    let volumeId: string | undefined;
    const kc = (args: string[], input?: string) => kubectl(s.env.KUBECONFIG, args, { input });

    beforeAll(async () => {
      s = await startStack({ controllerOnly: { cloudConf: readFileSync(LOOPBACK_CLOUD_CONF, 'utf8') } });
      const found = await findServer();
      serverId = found.id;
      zone = found.az;
      await kc(['create', 'namespace', ns]);
      // kubelet keeps a driver's topology label on its Node after the driver deregisters: the simulator zone of
      // the other e2e suites would still be offered to csi-provisioner (Immediate binding aggregates the labels
      // of every node), and the real Cinder refuses it. This node has no driver now; the label goes.
      await kc(['label', 'node', s.env.KUBE_LOOPBACK_NODE, `${ZONE_KEY}-`]);
      // The Node and its CSINode, as kubelet and node-driver-registrar would have written them on fake-node-0.
      await s.api.core.createNode({
        body: {
          metadata: { name: FAKE_NODE_NAME, labels: { [ZONE_KEY]: zone, 'kubernetes.io/hostname': FAKE_NODE_NAME } },
        },
      });
      await s.api.storage.createCSINode({
        body: {
          metadata: { name: FAKE_NODE_NAME },
          spec: { drivers: [{ name: DRIVER, nodeID: serverId, topologyKeys: [ZONE_KEY] }] },
        },
      });
      // A class of this test only: Immediate binding (no pod will ever be scheduled on fake-node-0).
      await kc(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'storage.k8s.io/v1',
          kind: 'StorageClass',
          metadata: { name: sc },
          provisioner: DRIVER,
          parameters: { 'csi.storage.k8s.io/fstype': 'ext4' },
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'Immediate',
        }),
      );
    }, 240_000);

    afterAll(async () => {
      if (!s) return;
      try {
        await kc(['delete', 'volumeattachment', name, '--ignore-not-found', '--wait=false']).catch(() => undefined);
        await kc(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']).catch(() => undefined);
        await waitUntil(
          'the PV gone',
          120_000,
          async () =>
            (await s.api.core.listPersistentVolume()).items.some((pv) => pv.spec?.claimRef?.namespace === ns)
              ? undefined
              : true,
          500,
        ).catch(() => undefined);
        await kc(['delete', 'storageclass', sc, '--ignore-not-found']).catch(() => undefined);
        await kc(['delete', 'csinode', FAKE_NODE_NAME, '--ignore-not-found']).catch(() => undefined);
        await kc(['delete', 'node', FAKE_NODE_NAME, '--ignore-not-found']).catch(() => undefined);
      } finally {
        await s.stop();
      }
    }, 240_000);

    /** fake-node-0's id and availability zone, from Nova. */
    async function findServer(): Promise<{ id: string; az: string }> {
      const id = await fakeNodeId(clients);
      const base = await clients.keystone.endpoint(['compute']);
      const res = await fetch(`${base}/servers/${id}`, {
        headers: { 'X-Auth-Token': await clients.keystone.token(), Accept: 'application/json' },
      });
      const server = ((await res.json()) as { server: Record<string, string> }).server;
      return { id, az: server['OS-EXT-AZ:availability_zone'] || 'nova' };
    }

    it('binds a claim, attaches it to fake-node-0 (attached: true), then detaches and deletes it: Cinder keeps nothing', async () => {
      await s.api.core.createNamespacedPersistentVolumeClaim({
        namespace: ns,
        body: {
          metadata: { name: 'data' },
          spec: { accessModes: ['ReadWriteOnce'], storageClassName: sc, resources: { requests: { storage: '1Gi' } } },
        },
      });
      const pv = await waitUntil('the claim bound', 120_000, () => boundPv(s.api, ns, 'data'), 500);
      volumeId = pv.spec!.csi!.volumeHandle;
      expect((await clients.cinder.getVolume(volumeId)).status).toBe('available');
      // What the attach/detach controller would create for a pod on fake-node-0.
      await s.api.storage.createVolumeAttachment({
        body: {
          metadata: { name },
          spec: { attacher: DRIVER, nodeName: FAKE_NODE_NAME, source: { persistentVolumeName: pv.metadata!.name! } },
        },
      });
      const va = await waitUntil(
        'attached: true',
        180_000,
        async () => {
          const v = await s.api.storage.readVolumeAttachment({ name });
          if (v.status?.attachError?.message) throw new Error(v.status.attachError.message);
          return v.status?.attached ? v : undefined;
        },
        500,
      );
      expect(va.status?.attached).toBe(true);
      const attached = await clients.cinder.getVolume(volumeId);
      expect(attached.status).toBe('in-use');
      expect(attached.attachments.map((a) => a.server_id)).toEqual([serverId]);

      await s.api.storage.deleteVolumeAttachment({ name });
      await waitUntil(
        'the VolumeAttachment gone',
        180_000,
        async () => ((await readOrUndefined(() => s.api.storage.readVolumeAttachment({ name }))) ? undefined : true),
        500,
      );
      expect((await clients.cinder.getVolume(volumeId)).status).toBe('available');
      await s.api.core.deleteNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns });
      await waitUntil(
        'the PV gone',
        120_000,
        async () =>
          (await readOrUndefined(() => s.api.core.readPersistentVolume({ name: pv.metadata!.name! })))
            ? undefined
            : true,
        500,
      );
      await waitUntil(
        'the Cinder volume gone',
        120_000,
        async () =>
          (await clients.cinder.getVolume(volumeId!).then(
            () => true,
            () => false,
          ))
            ? undefined
            : true,
        1000,
      );
    }, 600_000);
  });
});
