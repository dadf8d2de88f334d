/**
 * ControllerPublishVolume's `readonly` on the real Cinder 21 and Nova 26 of openstack-loopback: the mode recorded
 * per node in the volume's metadata before a read-only attach, a publish with the other mode ALREADY_EXISTS, and
 * a read-write publish after a read-only one replacing the record on the now in-use volume (Cinder lets a
 * member update the metadata of an in-use volume). Everything made is deleted in afterAll.
 */
import { loadCloudConfigFiles } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { createClouds } from '../../src/openstack/clients';
import { readonlyKey } from '../../src/block/block-readonly';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  fakeNodeId,
  itName,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
} from '../helpers/openstack-loopback';
import { codeOf, GIB, MOUNT_RWO } from '../helpers/sim-controller';

const SUITE = 'ro';
const RPC_DEADLINE_MS = 60_000;

describeOpenStack('ControllerPublishVolume readonly on openstack-loopback', () => {
  let h: CsiHarness;
  let c: CountingClients;
  let cleanup: Cleanup;
  let node: string;

  const call = <T = any>(rpc: string, req: object = {}) => h.call<T>('Controller', rpc, req, RPC_DEADLINE_MS);
  const publish = (volumeId: string, readonly: boolean) =>
    call('ControllerPublishVolume', { volume_id: volumeId, node_id: node, volume_capability: MOUNT_RWO, readonly });

  beforeAll(async () => {
    const conf = loadCloudConfigFiles([LOOPBACK_CLOUD_CONF], { requireCredentials: true });
    const blockStorage: BlockStorageOptions = {
      rescanOnResize: false,
      ignoreVolumeAz: false,
      ignoreVolumeMicroversion: false,
    };
    h = await startHarness([
      {
        definition: loadCsiProto().ControllerService,
        handlers: controllerHandlers({
          clouds: createClouds(conf.clouds),
          blockStorage,
          cluster: 'osl-it',
          withTopology: true,
          pvcAnnotations: false,
          log: logSink('info').log,
        }),
      },
    ]);
    c = loopbackClients(loopbackAuth());
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    node = await fakeNodeId(c);
  });
  afterAll(async () => {
    await h?.close();
    await cleanup?.run();
  });

  it('records the mode, refuses the other one with ALREADY_EXISTS, and replaces the record after an unpublish', async () => {
    const r = await call('CreateVolume', {
      name: itName(SUITE, 'vol'),
      capacity_range: { required_bytes: String(GIB) },
      volume_capabilities: [MOUNT_RWO],
    });
    const id = cleanup.volume(r.volume.volume_id);
    await publish(id, true);
    expect((await c.cinder.getVolume(id)).metadata[readonlyKey(node)]).toBe('true');
    await expect(publish(id, true)).resolves.toBeDefined();
    expect((await codeOf(publish(id, false))).code).toBe('ALREADY_EXISTS');
    await call('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    await publish(id, false);
    const v = await c.cinder.getVolume(id);
    expect({ status: v.status, record: v.metadata[readonlyKey(node)] }).toEqual({ status: 'in-use', record: 'false' });
    await expect(publish(id, false)).resolves.toBeDefined();
    expect((await codeOf(publish(id, true))).code).toBe('ALREADY_EXISTS');
    await call('ControllerUnpublishVolume', { volume_id: id, node_id: node });
  });
});
