/**
 * A conformance suite in the spirit of kubernetes-csi sanity: every required field missing gives
 * INVALID_ARGUMENT naming it, every mutating call succeeds when repeated, and a volume goes through its
 * whole lifecycle (create → snapshot → publish → expand → unpublish → delete) against one simulator.
 */
import {
  MOUNT_RWO,
  GIB,
  type ControllerWorld,
  codeOf,
  createReq,
  startControllerWorld,
} from '../helpers/sim-controller';

const DELAYS = {
  volumeCreate: 20,
  volumeDelete: 20,
  volumeExtend: 20,
  attach: 40,
  detach: 20,
  snapshotCreate: 20,
  snapshotDelete: 20,
};
let w: ControllerWorld;
beforeAll(async () => {
  w = await startControllerWorld({ sim: { delays: DELAYS } });
});
afterAll(() => w.close());

const ID = '00000000-0000-0000-0000-000000000000';
const noCap = { access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const noMode = { mount: { fs_type: '', mount_flags: [] }, access_mode: null };

describe('required fields', () => {
  it.each([
    ['CreateVolume', 'name', { volume_capabilities: [MOUNT_RWO] }],
    ['CreateVolume', 'volume_capabilities', { name: 'x' }],
    ['CreateVolume', 'volume_capabilities[0].access_type', { name: 'x', volume_capabilities: [noCap] }],
    ['CreateVolume', 'volume_capabilities[0].access_mode', { name: 'x', volume_capabilities: [noMode] }],
    [
      'CreateVolume',
      'capacity_range.required_bytes',
      { name: 'x', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: '-1' } },
    ],
    [
      'CreateVolume',
      'volume_content_source.snapshot.snapshot_id',
      { name: 'x', volume_capabilities: [MOUNT_RWO], volume_content_source: { snapshot: { snapshot_id: '' } } },
    ],
    ['DeleteVolume', 'volume_id', {}],
    ['ControllerPublishVolume', 'volume_id', { node_id: 'n', volume_capability: MOUNT_RWO }],
    ['ControllerPublishVolume', 'node_id', { volume_id: ID, volume_capability: MOUNT_RWO }],
    ['ControllerPublishVolume', 'volume_capability', { volume_id: ID, node_id: 'n' }],
    ['ControllerUnpublishVolume', 'volume_id', { node_id: 'n' }],
    ['ValidateVolumeCapabilities', 'volume_id', { volume_capabilities: [MOUNT_RWO] }],
    ['ValidateVolumeCapabilities', 'volume_capabilities', { volume_id: ID }],
    ['ControllerGetVolume', 'volume_id', {}],
    ['ControllerExpandVolume', 'volume_id', { capacity_range: { required_bytes: String(GIB) } }],
    ['ControllerExpandVolume', 'capacity_range', { volume_id: ID }],
    ['CreateSnapshot', 'name', { source_volume_id: ID }],
    ['CreateSnapshot', 'source_volume_id', { name: 's' }],
    ['DeleteSnapshot', 'snapshot_id', {}],
    ['ListVolumes', 'max_entries', { max_entries: -1 }],
    ['ListSnapshots', 'max_entries', { max_entries: -1 }],
  ])('%s without %s is INVALID_ARGUMENT naming the field', async (rpc, field, req) => {
    const e = await codeOf(w.call(rpc, req));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain(field);
  });
});

describe('idempotency and lifecycle', () => {
  it('answers every mutating call the same when it is made twice, through a whole lifecycle', async () => {
    const node = w.sim.localServerId;
    const twice = async (rpc: string, req: object) => {
      const a = await w.call(rpc, req);
      const b = await w.call(rpc, req);
      expect(b).toEqual(a);
      return a;
    };
    const vol = await twice('CreateVolume', createReq('pvc-life'));
    const volumeId = vol.volume.volume_id;
    const snap = await twice('CreateSnapshot', { name: 'snap-life', source_volume_id: volumeId });
    const pub = await twice('ControllerPublishVolume', {
      volume_id: volumeId,
      node_id: node,
      volume_capability: MOUNT_RWO,
    });
    expect(pub.publish_context.DevicePath).toBeTruthy();
    await twice('ControllerExpandVolume', {
      volume_id: volumeId,
      capacity_range: { required_bytes: String(2 * GIB) },
      volume_capability: MOUNT_RWO,
    });
    expect(w.sim.getVolume(volumeId)).toMatchObject({ size: 2, status: 'in-use' });
    await twice('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    await twice('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await twice('DeleteVolume', { volume_id: volumeId });
    expect(w.sim.listVolumes()).toHaveLength(0);
    expect(w.sim.listSnapshots()).toHaveLength(0);
  });

  it('lists a created volume and a created snapshot', async () => {
    const vol = await w.call('CreateVolume', createReq('pvc-listed'));
    const snap = await w.call('CreateSnapshot', { name: 'snap-listed', source_volume_id: vol.volume.volume_id });
    const vols = await w.call('ListVolumes', {});
    expect(vols.entries.map((e: any) => e.volume.volume_id)).toContain(vol.volume.volume_id);
    const snaps = await w.call('ListSnapshots', {});
    expect(snaps.entries.map((e: any) => e.snapshot.snapshot_id)).toContain(snap.snapshot.snapshot_id);
    await w.call('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await w.call('DeleteVolume', { volume_id: vol.volume.volume_id });
  });
});
