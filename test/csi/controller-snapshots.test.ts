/** CreateSnapshot, DeleteSnapshot and ListSnapshots (Cinder snapshots and backups) over gRPC against the simulator. */
import { GIB, type ControllerWorld, codeOf, createReq, startControllerWorld } from '../helpers/sim-controller';

const DELAYS = {
  volumeCreate: 20,
  volumeDelete: 20,
  attach: 40,
  detach: 20,
  snapshotCreate: 60,
  snapshotDelete: 40,
  backupCreate: 80,
  backupDelete: 40,
};
let w: ControllerWorld;
let volumeId: string;
beforeEach(async () => {
  w = await startControllerWorld({ sim: { delays: DELAYS } });
  volumeId = (await w.call('CreateVolume', createReq('pvc-snap'))).volume.volume_id;
});
afterEach(() => w.close());

const snapshot = (name: string, over: object = {}) =>
  w.call('CreateSnapshot', { name, source_volume_id: volumeId, ...over });

describe('CreateSnapshot', () => {
  it('creates a snapshot, waits until it is ready and reports size and time', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await snapshot('snap-1', { parameters: { 'csi.storage.k8s.io/volumesnapshot/name': 'vs1' } });
    expect(r.snapshot).toMatchObject({ source_volume_id: volumeId, ready_to_use: true, size_bytes: String(GIB) });
    expect(Number(r.snapshot.creation_time.seconds)).toBeGreaterThanOrEqual(before - 1);
    const s = w.sim.getSnapshot(r.snapshot.snapshot_id)!;
    expect(s.status).toBe('available');
    expect(s.metadata).toMatchObject({
      'cinder.csi.openstack.org/cluster': 'test-cluster',
      'csi.storage.k8s.io/volumesnapshot/name': 'vs1',
    });
  });

  it('returns the same snapshot when called twice', async () => {
    const a = await snapshot('snap-twice');
    const b = await snapshot('snap-twice');
    expect(b.snapshot.snapshot_id).toBe(a.snapshot.snapshot_id);
    expect(w.sim.listSnapshots()).toHaveLength(1);
  });

  it('returns ALREADY_EXISTS when the name exists for another volume', async () => {
    await snapshot('snap-dup');
    const other = (await w.call('CreateVolume', createReq('pvc-other'))).volume.volume_id;
    expect((await codeOf(w.call('CreateSnapshot', { name: 'snap-dup', source_volume_id: other }))).code).toBe(
      'ALREADY_EXISTS',
    );
  });

  it('needs force-create for an in-use volume', async () => {
    await w.call('ControllerPublishVolume', {
      volume_id: volumeId,
      node_id: w.sim.localServerId,
      volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
    });
    expect((await codeOf(snapshot('snap-inuse'))).code).toBe('FAILED_PRECONDITION');
    const r = await snapshot('snap-inuse-forced', { parameters: { 'force-create': 'true' } });
    expect(r.snapshot.ready_to_use).toBe(true);
  });

  it('makes a backup through an intermediate snapshot, which it deletes', async () => {
    const r = await snapshot('bk-1', { parameters: { type: 'backup' } });
    expect(w.sim.getBackup(r.snapshot.snapshot_id)!.status).toBe('available');
    expect(r.snapshot.ready_to_use).toBe(true);
    expect(r.snapshot.source_volume_id).toBe(volumeId);
    await new Promise((res) => setTimeout(res, 100));
    expect(w.sim.listSnapshots()).toHaveLength(0);
    const again = await snapshot('bk-1', { parameters: { type: 'backup' } });
    expect(again.snapshot.snapshot_id).toBe(r.snapshot.snapshot_id);
  });

  it('returns NOT_FOUND when the source volume does not exist', async () => {
    expect(
      (await codeOf(w.call('CreateSnapshot', { name: 's', source_volume_id: '00000000-0000-0000-0000-000000000000' })))
        .code,
    ).toBe('NOT_FOUND');
  });

  it.each([
    ['parameters.type', { type: 'clone' }],
    ['parameters.force-create', { 'force-create': 'maybe' }],
    ['parameters.colour', { colour: 'blue' }],
  ])('returns INVALID_ARGUMENT naming %s', async (field, parameters) => {
    const e = await codeOf(snapshot('snap-bad', { parameters }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain(field);
  });
});

describe('DeleteSnapshot', () => {
  it('deletes a snapshot and waits until it is gone, so the volume can be deleted next', async () => {
    const r = await snapshot('snap-del');
    await w.call('DeleteSnapshot', { snapshot_id: r.snapshot.snapshot_id });
    expect(w.sim.getSnapshot(r.snapshot.snapshot_id)).toBeUndefined();
    await w.call('DeleteVolume', { volume_id: volumeId });
  });

  it('succeeds for an unknown id and when called twice', async () => {
    const r = await snapshot('snap-del2');
    await w.call('DeleteSnapshot', { snapshot_id: r.snapshot.snapshot_id });
    await w.call('DeleteSnapshot', { snapshot_id: r.snapshot.snapshot_id });
    await w.call('DeleteSnapshot', { snapshot_id: '00000000-0000-0000-0000-000000000000' });
  });

  it('deletes a backup', async () => {
    const r = await snapshot('bk-del', { parameters: { type: 'backup' } });
    await w.call('DeleteSnapshot', { snapshot_id: r.snapshot.snapshot_id });
    expect(w.sim.getBackup(r.snapshot.snapshot_id)).toBeUndefined();
  });
});

describe('ListSnapshots', () => {
  it('finds one snapshot by id and answers an empty list for an unknown id', async () => {
    const r = await snapshot('snap-l1');
    const one = await w.call('ListSnapshots', { snapshot_id: r.snapshot.snapshot_id });
    expect(one.entries.map((e: any) => e.snapshot.snapshot_id)).toEqual([r.snapshot.snapshot_id]);
    expect((await w.call('ListSnapshots', { snapshot_id: 'unknown' })).entries).toEqual([]);
  });

  it('filters by source volume', async () => {
    const other = (await w.call('CreateVolume', createReq('pvc-other2'))).volume.volume_id;
    await snapshot('snap-a');
    await w.call('CreateSnapshot', { name: 'snap-b', source_volume_id: other });
    const r = await w.call('ListSnapshots', { source_volume_id: other });
    expect(r.entries.map((e: any) => e.snapshot.source_volume_id)).toEqual([other]);
  });

  it('pages through more than two pages', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await snapshot(`snap-p${i}`)).snapshot.snapshot_id);
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const r = await w.call('ListSnapshots', { max_entries: 2, starting_token: token });
      seen.push(...r.entries.map((e: any) => e.snapshot.snapshot_id));
      token = r.next_token;
      pages++;
    } while (token);
    expect(pages).toBeGreaterThan(2);
    expect(new Set(seen)).toEqual(ids);
  });

  it('returns ABORTED for a token it did not issue', async () => {
    expect((await codeOf(w.call('ListSnapshots', { max_entries: 1, starting_token: 'bogus' }))).code).toBe('ABORTED');
  });
});
