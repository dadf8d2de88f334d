import { mkdir } from 'node:fs/promises';
import { MetadataClient } from '../../src/openstack/metadata';
import { sanitizeLabelValue, ZONE_TOPOLOGY_KEY } from '../../src/csi/node';
import { startSimulator, type Simulator } from '../../src/simulator';
import { NODE_ID, blockCap, codeOf, fsCap, startNodeWorld, type NodeWorld } from '../helpers/node-world';

const VOL = 'c0ffee00-1111-2222-3333-444455556666';

describe('Node service without devices', () => {
  let w: NodeWorld;
  beforeAll(async () => {
    w = await startNodeWorld({ deps: { additionalTopology: { 'topology.kubernetes.io/region': 'RegionOne' } } });
  });
  afterAll(() => w.close());

  it('NodeGetCapabilities lists staging, expansion, stats, volume condition and single-node multi-writer', async () => {
    const res = await w.call('NodeGetCapabilities');
    expect(res.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type).sort()).toEqual([
      'EXPAND_VOLUME',
      'GET_VOLUME_STATS',
      'SINGLE_NODE_MULTI_WRITER',
      'STAGE_UNSTAGE_VOLUME',
      'VOLUME_CONDITION',
    ]);
  });

  it('NodeGetCapabilities adds VOLUME_MOUNT_GROUP only with --volume-mount-group', async () => {
    const v = await startNodeWorld({ deps: { volumeMountGroup: true } });
    try {
      const res = await v.call('NodeGetCapabilities');
      expect(res.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type)).toContain('VOLUME_MOUNT_GROUP');
    } finally {
      await v.close();
    }
    expect(
      (await w.call('NodeGetCapabilities')).capabilities.map((c: { rpc: { type: string } }) => c.rpc.type),
    ).not.toContain('VOLUME_MOUNT_GROUP');
  });

  const stage = (over: object) => ({
    volume_id: VOL,
    staging_target_path: w.path('staging/a'),
    volume_capability: fsCap(),
    ...over,
  });
  const publish = (over: object) => ({
    volume_id: VOL,
    staging_target_path: w.path('staging/a'),
    target_path: w.path('pods/a/mount'),
    volume_capability: fsCap(),
    ...over,
  });
  // Each case: RPC, request builder, field the message must name.
  const cases: Array<[string, string, () => object, string]> = [
    ['NodeStageVolume', 'no volume_id', () => stage({ volume_id: '' }), 'volume_id'],
    ['NodeStageVolume', 'no staging_target_path', () => stage({ staging_target_path: '' }), 'staging_target_path'],
    [
      'NodeStageVolume',
      'a relative staging path',
      () => stage({ staging_target_path: 'kubelet/x' }),
      'staging_target_path',
    ],
    [
      'NodeStageVolume',
      'a staging path outside the kubelet dir',
      () => stage({ staging_target_path: '/etc/x' }),
      'staging_target_path',
    ],
    [
      'NodeStageVolume',
      'a staging path escaping with ..',
      () => stage({ staging_target_path: `${w.kubeletDir}/../etc` }),
      'staging_target_path',
    ],
    ['NodeStageVolume', 'no volume_capability', () => stage({ volume_capability: null }), 'volume_capability'],
    [
      'NodeStageVolume',
      'no access mode',
      () => stage({ volume_capability: { mount: fsCap().mount } }),
      'volume_capability.access_mode',
    ],
    [
      'NodeStageVolume',
      'an unknown fs_type',
      () => stage({ volume_capability: fsCap('ntfs') }),
      'volume_capability.mount.fs_type',
    ],
    ['NodeUnstageVolume', 'no volume_id', () => ({ staging_target_path: w.path('s') }), 'volume_id'],
    [
      'NodeUnstageVolume',
      'a staging path outside',
      () => ({ volume_id: VOL, staging_target_path: '/var/lib/other' }),
      'staging_target_path',
    ],
    ['NodePublishVolume', 'no volume_id', () => publish({ volume_id: '' }), 'volume_id'],
    ['NodePublishVolume', 'no target_path', () => publish({ target_path: '' }), 'target_path'],
    [
      'NodePublishVolume',
      'a target escaping with ..',
      () => publish({ target_path: w.path('pods/../../../root') }),
      'target_path',
    ],
    [
      'NodePublishVolume',
      'no staging_target_path (fs)',
      () => publish({ staging_target_path: '' }),
      'staging_target_path',
    ],
    [
      'NodePublishVolume',
      'no staging_target_path (block)',
      () => publish({ staging_target_path: '', volume_capability: blockCap() }),
      'staging_target_path',
    ],
    ['NodePublishVolume', 'no volume_capability', () => publish({ volume_capability: null }), 'volume_capability'],
    ['NodeUnpublishVolume', 'no volume_id', () => ({ target_path: w.path('t') }), 'volume_id'],
    [
      'NodeUnpublishVolume',
      'a target outside',
      () => ({ volume_id: VOL, target_path: '/tmp/elsewhere' }),
      'target_path',
    ],
    ['NodeExpandVolume', 'no volume_id', () => ({ volume_path: w.path('t') }), 'volume_id'],
    ['NodeExpandVolume', 'no volume_path', () => ({ volume_id: VOL }), 'volume_path'],
    ['NodeExpandVolume', 'a volume_path outside', () => ({ volume_id: VOL, volume_path: '/dev/sda' }), 'volume_path'],
    [
      'NodeExpandVolume',
      'a bad required_bytes',
      () => ({ volume_id: VOL, volume_path: w.path('t'), capacity_range: { required_bytes: '-1' } }),
      'required_bytes',
    ],
    ['NodeGetVolumeStats', 'no volume_id', () => ({ volume_path: w.path('t') }), 'volume_id'],
    ['NodeGetVolumeStats', 'no volume_path', () => ({ volume_id: VOL }), 'volume_path'],
    [
      'NodeGetVolumeStats',
      'a volume_path with ..',
      () => ({ volume_id: VOL, volume_path: `${w.kubeletDir}/a/../../x` }),
      'volume_path',
    ],
  ];
  it.each(cases)('%s with %s answers INVALID_ARGUMENT naming the field', async (rpc, _what, req, field) => {
    const { code, details } = await codeOf(w.call(rpc, req()));
    expect(code).toBe('INVALID_ARGUMENT');
    expect(details).toContain(field);
  });

  it('NodePublishVolume refuses a CSI inline ephemeral volume with UNIMPLEMENTED, like the reference', async () => {
    const req = publish({ staging_target_path: '', volume_context: { 'csi.storage.k8s.io/ephemeral': 'true' } });
    expect((await codeOf(w.call('NodePublishVolume', req))).code).toBe('UNIMPLEMENTED');
  });

  it('NodePublishVolume of a filesystem volume that is not staged answers FAILED_PRECONDITION', async () => {
    const { code, details } = await codeOf(w.call('NodePublishVolume', publish({})));
    expect(code).toBe('FAILED_PRECONDITION');
    expect(details).toMatch(/not staged/);
  });

  it('NodeStageVolume answers DEADLINE_EXCEEDED naming the volume when its device never appears', async () => {
    const started = Date.now();
    const { code, details } = await codeOf(w.call('NodeStageVolume', stage({}), 1_500));
    expect(code).toBe('DEADLINE_EXCEEDED');
    expect(details).toContain(VOL);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it.each(['NodeExpandVolume', 'NodeGetVolumeStats'])('%s of a missing volume_path answers NOT_FOUND', async (rpc) => {
    const { code } = await codeOf(w.call(rpc, { volume_id: VOL, volume_path: w.path('pods/none/mount') }));
    expect(code).toBe('NOT_FOUND');
  });

  it.each(['NodeExpandVolume', 'NodeGetVolumeStats'])(
    '%s of a relative volume_path answers NOT_FOUND, looking at nothing',
    async (rpc) => {
      // csi-sanity's "volume not found" specs send "some/path": no volume is ever published at a relative path.
      const { code, details } = await codeOf(w.call(rpc, { volume_id: 'id', volume_path: 'some/path' }));
      expect(code).toBe('NOT_FOUND');
      expect(details).toContain('some/path');
    },
  );

  it("NodeGetVolumeStats of an unknown volume on an existing, unmounted directory answers NOT_FOUND, not the host's usage", async () => {
    const dir = w.path('pods/unmounted/volumes/kubernetes.io~csi/pvc-x/mount');
    await mkdir(dir, { recursive: true });
    const { code, details } = await codeOf(w.call('NodeGetVolumeStats', { volume_id: VOL, volume_path: dir }));
    expect(code).toBe('NOT_FOUND');
    expect(details).toContain('not mounted');
  });

  it('NodeStageVolume of an id no Cinder volume can have answers NOT_FOUND at once, not at the deadline', async () => {
    const started = Date.now();
    const { code } = await codeOf(w.call('NodeStageVolume', stage({ volume_id: `a/${'x'.repeat(298)}` }), 10_000));
    expect(code).toBe('NOT_FOUND');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it.each([
    ['NodeUnpublishVolume', 'target_path'],
    ['NodeUnstageVolume', 'staging_target_path'],
  ])('%s of a path that never existed succeeds (called twice)', async (rpc, field) => {
    const req = { volume_id: VOL, [field]: w.path('never/there') };
    await expect(w.call(rpc, req)).resolves.toEqual({});
    await expect(w.call(rpc, req)).resolves.toEqual({});
  });
});

describe('NodeGetInfo', () => {
  let sim: Simulator;
  const worlds: NodeWorld[] = [];
  const world = async (o: Parameters<typeof startNodeWorld>[0]) => {
    const w = await startNodeWorld(o);
    worlds.push(w);
    return w;
  };
  const metadataFor = (url: string) =>
    new MetadataClient({ options: { searchOrder: ['metadataService'], requestTimeoutMs: 2_000 }, metadataUrl: url });
  beforeAll(async () => {
    sim = await startSimulator({ devicePlane: false, localServer: { id: NODE_ID, az: 'eu west/1a!' } });
  });
  afterAll(async () => {
    for (const w of worlds) await w.close();
    await sim.stop();
  });

  it('reports the instance id and sanitized zone from the simulator metadata service, plus additional topology', async () => {
    const extra = { 'topology.kubernetes.io/region': 'RegionOne' };
    const w = await world({ deps: { metadata: metadataFor(sim.metadataUrl), additionalTopology: extra } });
    const res = await w.call('NodeGetInfo');
    expect(res.node_id).toBe(NODE_ID);
    expect(res.accessible_topology.segments).toEqual({ [ZONE_TOPOLOGY_KEY]: 'eu-west-1a', ...extra });
    expect(String(res.max_volumes_per_node)).toBe('256');
  });

  it('uses the node id override without asking the metadata sources, and the configured attach limit', async () => {
    const get = jest.fn();
    const w = await world({
      deps: { nodeId: 'override-id', metadata: { get }, withTopology: false },
      blockStorage: { nodeVolumeAttachLimit: 12 },
    });
    const res = await w.call('NodeGetInfo');
    expect(res).toMatchObject({ node_id: 'override-id', accessible_topology: null });
    expect(String(res.max_volumes_per_node)).toBe('12');
    expect(get).not.toHaveBeenCalled();
  });

  it('answers UNAVAILABLE with what each metadata source said when none answers', async () => {
    const w = await world({ deps: { metadata: metadataFor('http://127.0.0.1:9') } });
    const { code, details } = await codeOf(w.call('NodeGetInfo'));
    expect(code).toBe('UNAVAILABLE');
    expect(details).toContain('metadataService');
  });

  it('answers UNAVAILABLE, not INTERNAL, when a metadata source throws a plain error', async () => {
    const w = await world({
      deps: { metadata: { get: async () => Promise.reject(new Error('config drive unreadable')) } },
    });
    const { code, details } = await codeOf(w.call('NodeGetInfo'));
    expect(code).toBe('UNAVAILABLE');
    expect(details).toContain('config drive unreadable');
  });
});

describe('sanitizeLabelValue', () => {
  it.each([
    ['nova', 'nova'],
    ['eu west/1a!', 'eu-west-1a'],
    ['--_zone.a_.', 'zone.a'],
    ['äöü', ''],
    [`${'a'.repeat(62)}-b`, 'a'.repeat(62)],
    ['z'.repeat(80), 'z'.repeat(63)],
  ])('%s → %s', (input, out) => {
    expect(sanitizeLabelValue(input)).toBe(out);
  });
});
