/** ListVolumes (pagination, tokens, several clouds), ControllerExpandVolume and ControllerGetCapabilities over gRPC. */
import {
  BLOCK_RWO,
  GIB,
  MOUNT_RWO,
  type ControllerWorld,
  codeOf,
  createReq,
  startControllerWorld,
} from '../helpers/sim-controller';

const DELAYS = { volumeCreate: 20, volumeDelete: 20, volumeExtend: 60, attach: 40, detach: 20 };
let w: ControllerWorld;
afterEach(() => w.close());

async function listAll(maxEntries: number): Promise<{ ids: string[]; pages: number; entries: any[] }> {
  const ids: string[] = [];
  const entries: any[] = [];
  let token = '';
  let pages = 0;
  do {
    const r = await w.call('ListVolumes', { max_entries: maxEntries, starting_token: token });
    entries.push(...r.entries);
    ids.push(...r.entries.map((e: any) => e.volume.volume_id));
    token = r.next_token;
    pages++;
  } while (token && pages < 50);
  return { ids, pages, entries };
}

describe('ListVolumes', () => {
  beforeEach(async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS } });
  });

  it('pages through more than two pages and lists each volume once, with capacity and published nodes', async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await w.call('CreateVolume', createReq(`pvc-l${i}`))).volume.volume_id);
    await w.call('ControllerPublishVolume', {
      volume_id: created[0],
      node_id: w.sim.localServerId,
      volume_capability: MOUNT_RWO,
    });
    const { ids, pages, entries } = await listAll(2);
    expect(pages).toBeGreaterThan(2);
    expect(ids.sort()).toEqual([...created].sort());
    const first = entries.find((e) => e.volume.volume_id === created[0]);
    expect(first.status.published_node_ids).toEqual([w.sim.localServerId]);
    expect(first.volume.capacity_bytes).toBe(String(GIB));
  });

  it('lists everything in one answer when max_entries is 0', async () => {
    for (let i = 0; i < 3; i++) await w.call('CreateVolume', createReq(`pvc-all${i}`));
    const r = await w.call('ListVolumes', {});
    expect(r.entries).toHaveLength(3);
    expect(r.next_token).toBe('');
  });

  it.each([['garbage'], ['00000000-0000-0000-0000-000000000000:'], ['x:unknown-cloud']])(
    'returns ABORTED for the token %s',
    async (token) => {
      await w.call('CreateVolume', createReq('pvc-tok'));
      expect((await codeOf(w.call('ListVolumes', { max_entries: 1, starting_token: token }))).code).toBe('ABORTED');
    },
  );

  it('returns INVALID_ARGUMENT for a negative max_entries', async () => {
    expect((await codeOf(w.call('ListVolumes', { max_entries: -1 }))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('several clouds', () => {
  it('lists the volumes of every cloud with <marker>:<cloud> tokens and routes by the cloud secret', async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS }, extraClouds: ['east'] });
    const a = (await w.call('CreateVolume', createReq('pvc-a'))).volume.volume_id;
    const b = (await w.call('CreateVolume', createReq('pvc-b', { secrets: { cloud: 'east' } }))).volume.volume_id;
    expect(w.others.get('east')!.getVolume(b)).toBeDefined();
    expect(w.sim.getVolume(b)).toBeUndefined();
    const { ids } = await listAll(1);
    expect(ids.sort()).toEqual([a, b].sort());
    const got = await w.call('ControllerGetVolume', { volume_id: b });
    expect(got.volume.volume_id).toBe(b);
    await w.call('DeleteVolume', { volume_id: b, secrets: { cloud: 'east' } });
    expect(w.others.get('east')!.getVolume(b)).toBeUndefined();
  });
});

describe('ControllerExpandVolume', () => {
  let volumeId: string;
  beforeEach(async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS } });
    volumeId = (await w.call('CreateVolume', createReq('pvc-exp'))).volume.volume_id;
  });
  const expand = (gib: number, cap: object | null = MOUNT_RWO) =>
    w.call('ControllerExpandVolume', {
      volume_id: volumeId,
      capacity_range: { required_bytes: String(gib * GIB) },
      volume_capability: cap,
    });

  it('extends an available volume, waits, and asks the node to grow the filesystem', async () => {
    const r = await expand(3);
    expect(r).toEqual({ capacity_bytes: String(3 * GIB), node_expansion_required: true });
    expect(w.sim.getVolume(volumeId)).toMatchObject({ size: 3, status: 'available' });
  });

  it('extends an in-use volume online', async () => {
    await w.call('ControllerPublishVolume', {
      volume_id: volumeId,
      node_id: w.sim.localServerId,
      volume_capability: MOUNT_RWO,
    });
    await expand(2);
    expect(w.sim.getVolume(volumeId)).toMatchObject({ size: 2, status: 'in-use' });
  });

  it('needs no node expansion for a raw block volume', async () => {
    expect((await expand(2, BLOCK_RWO)).node_expansion_required).toBe(false);
  });

  it('succeeds without an extend when the volume is already large enough (called twice)', async () => {
    await expand(2);
    w.sim.resetCounters();
    expect((await expand(2)).capacity_bytes).toBe(String(2 * GIB));
    expect(w.count('cinder.volume.action')).toBe(0);
  });

  it('fails fast when the extend ends in error_extending', async () => {
    w.sim.failNextExtend(volumeId);
    const e = await codeOf(expand(4));
    expect(e.code).toBe('INTERNAL');
    expect(e.details).toContain('error_extending');
  });

  it('returns NOT_FOUND for an unknown volume', async () => {
    const e = await codeOf(
      w.call('ControllerExpandVolume', { volume_id: 'nope', capacity_range: { required_bytes: String(GIB) } }),
    );
    expect(e.code).toBe('NOT_FOUND');
  });

  it('returns INVALID_ARGUMENT naming capacity_range when it is missing', async () => {
    const e = await codeOf(w.call('ControllerExpandVolume', { volume_id: volumeId }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('capacity_range');
  });
});

describe('ControllerGetCapabilities', () => {
  it('lists the capabilities of issue #4', async () => {
    w = await startControllerWorld();
    const r = await w.call('ControllerGetCapabilities', {});
    expect(r.capabilities.map((c: any) => c.rpc.type).sort()).toEqual([
      'CLONE_VOLUME',
      'CREATE_DELETE_SNAPSHOT',
      'CREATE_DELETE_VOLUME',
      'EXPAND_VOLUME',
      'GET_CAPACITY',
      'GET_VOLUME',
      'LIST_SNAPSHOTS',
      'LIST_VOLUMES',
      'LIST_VOLUMES_PUBLISHED_NODES',
      'MODIFY_VOLUME',
      'PUBLISH_READONLY',
      'PUBLISH_UNPUBLISH_VOLUME',
      'SINGLE_NODE_MULTI_WRITER',
      'VOLUME_CONDITION',
    ]);
  });
});
