/** CreateVolume, DeleteVolume, ControllerGetVolume and ValidateVolumeCapabilities against the simulator over gRPC. */
import {
  BLOCK_RWO,
  BLOCK_RWX,
  GIB,
  MOUNT_RWO,
  ZONE_KEY,
  type ControllerWorld,
  codeOf,
  createReq,
  startControllerWorld,
} from '../helpers/sim-controller';
import { CinderClient, type CreateVolumeRequest } from '../../src/openstack/cinder';
import { pvcReadError, type PvcAnnotationGetter } from '../../src/kube/pvc-annotations';

const DELAYS = {
  volumeCreate: 60,
  volumeDelete: 30,
  attach: 60,
  detach: 30,
  snapshotCreate: 30,
  snapshotDelete: 20,
  backupCreate: 40,
  backupDelete: 20,
};
let w: ControllerWorld;
afterEach(() => w?.close());

describe('CreateVolume', () => {
  beforeEach(async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS, availabilityZones: ['nova', 'zone-b'] } });
  });

  it('creates a 1 GiB volume by default and waits until it is available', async () => {
    const r = await w.call('CreateVolume', { name: 'pvc-a', volume_capabilities: [MOUNT_RWO] });
    expect(r.volume.capacity_bytes).toBe(String(GIB));
    const v = w.sim.getVolume(r.volume.volume_id)!;
    expect(v.status).toBe('available');
    expect(v.size).toBe(1);
    expect(r.volume.accessible_topology).toEqual([{ segments: { [ZONE_KEY]: 'nova' } }]);
  });

  it('rounds capacity up to whole GiB', async () => {
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-round', { capacity_range: { required_bytes: String(GIB + 1) } }),
    );
    expect(r.volume.capacity_bytes).toBe(String(2 * GIB));
  });

  it('returns OUT_OF_RANGE when limit_bytes is below the rounded size', async () => {
    const e = await codeOf(
      w.call(
        'CreateVolume',
        createReq('pvc-lim', { capacity_range: { required_bytes: String(GIB + 1), limit_bytes: String(GIB + 2) } }),
      ),
    );
    expect(e.code).toBe('OUT_OF_RANGE');
  });

  it('passes type and availability and writes cluster and PVC metadata', async () => {
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-meta', {
        parameters: {
          type: 'multiattach',
          availability: 'zone-b',
          fsType: 'ext4',
          'csi.storage.k8s.io/pvc/name': 'data',
          'csi.storage.k8s.io/pvc/namespace': 'ns1',
          'csi.storage.k8s.io/pv/name': 'pv-1',
        },
      }),
    );
    const v = w.sim.getVolume(r.volume.volume_id)!;
    expect(v.volume_type).toBe('multiattach');
    expect(v.availability_zone).toBe('zone-b');
    expect(v.metadata).toMatchObject({
      'cinder.csi.openstack.org/cluster': 'test-cluster',
      'csi.storage.k8s.io/pvc/name': 'data',
      'csi.storage.k8s.io/pvc/namespace': 'ns1',
      'csi.storage.k8s.io/pv/name': 'pv-1',
    });
    expect(r.volume.accessible_topology).toEqual([{ segments: { [ZONE_KEY]: 'zone-b' } }]);
  });

  it('returns INVALID_ARGUMENT naming an unknown parameter', async () => {
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-typo', { parameters: { tpye: 'fast' } })));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('parameters.tpye');
  });

  it('takes the zone from preferred topology before requisite', async () => {
    const accessibility_requirements = {
      requisite: [{ segments: { [ZONE_KEY]: 'nova' } }],
      preferred: [{ segments: { [ZONE_KEY]: 'zone-b' } }],
    };
    const r = await w.call('CreateVolume', createReq('pvc-topo', { accessibility_requirements }));
    expect(w.sim.getVolume(r.volume.volume_id)!.availability_zone).toBe('zone-b');
  });

  it('returns the same volume when called twice with the same name and size', async () => {
    const a = await w.call('CreateVolume', createReq('pvc-twice'));
    const b = await w.call('CreateVolume', createReq('pvc-twice'));
    expect(b.volume.volume_id).toBe(a.volume.volume_id);
    expect(w.sim.listVolumes()).toHaveLength(1);
  });

  it('returns ALREADY_EXISTS when the name exists with another size', async () => {
    await w.call('CreateVolume', createReq('pvc-size'));
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-size', { capacity_range: { required_bytes: String(2 * GIB) } })),
    );
    expect(e.code).toBe('ALREADY_EXISTS');
  });

  it('finds the volume a timed-out call created when the call is retried', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, volumeCreate: 800 } } });
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-slow'), 300));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(w.sim.listVolumes()[0].status).toBe('creating');
    const r = await w.call('CreateVolume', createReq('pvc-slow'));
    expect(w.sim.listVolumes()).toHaveLength(1);
    expect(r.volume.volume_id).toBe(w.sim.listVolumes()[0].id);
    expect(w.sim.getVolume(r.volume.volume_id)!.status).toBe('available');
  });

  it('says what it waited for and the last status when the deadline passes', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, volumeCreate: 2000 } } });
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-dl'), 400));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    // The client only sees its own deadline; the server's answer (in its log) says what it waited for.
    await new Promise((r) => setTimeout(r, 100));
    const line = w.h.sink.lines.find((l) => l.msg === 'CreateVolume failed');
    // grpc-js may report the client's deadline to the server as a cancellation first.
    expect(['DEADLINE_EXCEEDED', 'CANCELLED']).toContain(line?.code);
    expect(String(line?.error)).toMatch(/volume .* to become available: last seen status creating/);
  });

  it('fails fast when the volume goes to error, deletes it, and a retry makes a fresh one', async () => {
    w.sim.failNextVolumeCreate('pvc-err', 'No valid backend was found');
    const started = Date.now();
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-err')));
    expect(Date.now() - started).toBeLessThan(2000);
    // "No valid backend" is Cinder's way of saying no backend has room.
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('status error: No valid backend was found');
    await new Promise((r) => setTimeout(r, 100));
    expect(w.sim.listVolumes()).toHaveLength(0);
    const r = await w.call('CreateVolume', createReq('pvc-err'));
    expect(w.sim.getVolume(r.volume.volume_id)!.status).toBe('available');
  });

  it("reports Cinder's own reason from its user messages, and the code from the state whatever the reason says", async () => {
    w.sim.failNextVolumeCreate('pvc-err-driver', 'Volume driver reported an error: backend lost its lock');
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-err-driver')));
    // `error` out of `creating`: the cloud could not allocate it (the old code chose INTERNAL from this text).
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('Volume driver reported an error: backend lost its lock');
    expect(w.count('cinder.message.list')).toBe(1);
  });

  it("reports the simulator's default scheduler fault (no weighted backend) as RESOURCE_EXHAUSTED", async () => {
    w.sim.failNextVolumeCreate('pvc-err-default');
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-err-default')));
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('Could not find any available weighted backend');
  });

  it('returns RESOURCE_EXHAUSTED when Cinder answers 413 for quota', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { quota: { gigabytes: 2 } } });
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-big', { capacity_range: { required_bytes: String(5 * GIB) } })),
    );
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('keeps polling through 5xx answers to its status GETs', async () => {
    w.sim.injectFault('cinder.volume.get', { kind: 'http-status', status: 503, times: 6 });
    const r = await w.call('CreateVolume', createReq('pvc-5xx'));
    expect(w.sim.getVolume(r.volume.volume_id)!.status).toBe('available');
    expect(w.count('cinder.volume.get')).toBeGreaterThan(6);
  });

  it('creates from a snapshot and asks the node to resize when the volume is larger', async () => {
    const src = await w.call('CreateVolume', createReq('pvc-src'));
    const snap = await w.call('CreateSnapshot', { name: 'snap-src', source_volume_id: src.volume.volume_id });
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-restore', {
        capacity_range: { required_bytes: String(3 * GIB) },
        volume_content_source: { snapshot: { snapshot_id: snap.snapshot.snapshot_id } },
      }),
    );
    expect(r.volume.volume_context).toEqual({ 'cinder.csi.openstack.org/resizeRequired': 'true' });
    expect(r.volume.content_source.snapshot.snapshot_id).toBe(snap.snapshot.snapshot_id);
    expect(w.sim.getVolume(r.volume.volume_id)!.size).toBe(3);
  });

  it('treats a snapshot id that is a backup id as a backup to restore', async () => {
    const src = await w.call('CreateVolume', createReq('pvc-bsrc'));
    const backup = await w.call('CreateSnapshot', {
      name: 'bk-src',
      source_volume_id: src.volume.volume_id,
      parameters: { type: 'backup' },
    });
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-from-backup', {
        volume_content_source: { snapshot: { snapshot_id: backup.snapshot.snapshot_id } },
      }),
    );
    expect(w.sim.getVolume(r.volume.volume_id)!.status).toBe('available');
    expect(r.volume.content_source.snapshot.snapshot_id).toBe(backup.snapshot.snapshot_id);
  });

  it('clones a volume', async () => {
    const src = await w.call('CreateVolume', createReq('pvc-orig'));
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-clone', { volume_content_source: { volume: { volume_id: src.volume.volume_id } } }),
    );
    expect(r.volume.content_source.volume.volume_id).toBe(src.volume.volume_id);
    expect(r.volume.volume_context).toEqual({});
  });

  it.each([
    ['snapshot', { snapshot: { snapshot_id: '00000000-0000-0000-0000-000000000000' } }],
    ['volume', { volume: { volume_id: '00000000-0000-0000-0000-000000000000' } }],
  ])('returns NOT_FOUND when the %s source does not exist', async (_k, volume_content_source) => {
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-nosrc', { volume_content_source })));
    expect(e.code).toBe('NOT_FOUND');
  });

  it('refuses a multi-node mode on a type without multiattach, naming the mode', async () => {
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-rwx', { volume_capabilities: [BLOCK_RWX] })));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('MULTI_NODE_MULTI_WRITER');
    await new Promise((r) => setTimeout(r, 100));
    expect(w.sim.listVolumes()).toHaveLength(0);
  });

  it('refuses a multi-node mode on a filesystem volume', async () => {
    const cap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
    const e = await codeOf(
      w.call(
        'CreateVolume',
        createReq('pvc-rwx-fs', { volume_capabilities: [cap], parameters: { type: 'multiattach' } }),
      ),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('MULTI_NODE_MULTI_WRITER');
  });

  it('accepts a multi-node block volume of a multiattach type', async () => {
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-rwx-ok', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } }),
    );
    expect(w.sim.getVolume(r.volume.volume_id)!.multiattach).toBe(true);
  });

  it('returns INVALID_ARGUMENT for an unknown cloud secret', async () => {
    const e = await codeOf(w.call('CreateVolume', createReq('pvc-cloud', { secrets: { cloud: 'nowhere' } })));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('secrets.cloud');
  });
});

describe('CreateVolume topology options', () => {
  it('echoes the requested zone with ignore-volume-az', async () => {
    w = await startControllerWorld({ blockStorage: { ignoreVolumeAz: true } });
    const accessibility_requirements = { requisite: [], preferred: [{ segments: { [ZONE_KEY]: 'compute-az' } }] };
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-ign', { parameters: { availability: 'nova' }, accessibility_requirements }),
    );
    expect(r.volume.accessible_topology).toEqual([{ segments: { [ZONE_KEY]: 'compute-az' } }]);
  });

  it('reports no topology when topology is off', async () => {
    w = await startControllerWorld({ deps: { withTopology: false } });
    const r = await w.call('CreateVolume', createReq('pvc-notopo'));
    expect(r.volume.accessible_topology).toEqual([]);
  });

  it('resolves affinity names to ids as scheduler hints with --pvc-annotations', async () => {
    w = await startControllerWorld({ deps: { pvcAnnotations: true } });
    const other = await w.call('CreateVolume', createReq('pvc-neighbour'));
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-aff', { parameters: { 'cinder.csi.openstack.org/anti-affinity': 'pvc-neighbour' } }),
    );
    expect(r.volume.volume_context['cinder.csi.openstack.org/anti-affinity']).toBe(other.volume.volume_id);
    const e = await codeOf(
      w.call(
        'CreateVolume',
        createReq('pvc-aff2', { parameters: { 'cinder.csi.openstack.org/affinity': 'no-such-volume' } }),
      ),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
  });
});

describe('CreateVolume with PVC annotations from the Kubernetes API (--pvc-annotations)', () => {
  const AFF = 'cinder.csi.openstack.org/affinity';
  const ANTI = 'cinder.csi.openstack.org/anti-affinity';
  const pvcParams = (namespace: string, name: string) => ({
    'csi.storage.k8s.io/pvc/namespace': namespace,
    'csi.storage.k8s.io/pvc/name': name,
  });
  /** PVCs by `namespace/name`; records every lookup. */
  let pvcs: Map<string, Record<string, string>>;
  let lookups: string[];
  const fakeGetter: PvcAnnotationGetter = async (namespace, name, signal) => {
    lookups.push(`${namespace}/${name}`);
    expect(signal).toBeInstanceOf(AbortSignal);
    const a = pvcs.get(`${namespace}/${name}`);
    if (!a) throw pvcReadError({ code: 404, message: 'HTTP-Code: 404' }, namespace, name);
    return a;
  };
  let created: jest.SpyInstance;
  const hintsSent = () => created.mock.calls.map((c) => (c[0] as CreateVolumeRequest).schedulerHints);

  beforeEach(async () => {
    pvcs = new Map();
    lookups = [];
    created = jest.spyOn(CinderClient.prototype, 'createVolume');
    w = await startControllerWorld({ sim: { delays: DELAYS }, deps: { pvcAnnotations: fakeGetter } });
  });
  afterEach(() => created.mockRestore());

  it("turns the PVC's affinity and anti-affinity annotations (names or ids) into Cinder scheduler hints", async () => {
    const near = (await w.call('CreateVolume', createReq('pvc-near'))).volume.volume_id;
    const far1 = (await w.call('CreateVolume', createReq('pvc-far-1'))).volume.volume_id;
    const far2 = (await w.call('CreateVolume', createReq('pvc-far-2'))).volume.volume_id;
    pvcs.set('team-a/data', { [AFF]: 'pvc-near', [ANTI]: ` ${far1}, pvc-far-2 `, 'other/annotation': 'x' });
    created.mockClear();
    const r = await w.call('CreateVolume', createReq('pvc-hinted', { parameters: pvcParams('team-a', 'data') }));
    expect(lookups).toEqual(['team-a/data']);
    expect(hintsSent()).toEqual([{ same_host: [near], different_host: [far1, far2] }]);
    expect(r.volume.volume_context).toMatchObject({ [AFF]: near, [ANTI]: `${far1},${far2}` });
    const v = w.sim.getVolume(r.volume.volume_id)!;
    expect(v.status).toBe('available');
    expect(v.metadata).toMatchObject({
      'csi.storage.k8s.io/pvc/name': 'data',
      'csi.storage.k8s.io/pvc/namespace': 'team-a',
    });
  });

  it('sends no hints for a PVC without the annotations', async () => {
    pvcs.set('team-a/plain', { 'volume.kubernetes.io/storage-provisioner': 'cinder.csi.openstack.org' });
    const r = await w.call('CreateVolume', createReq('pvc-plain', { parameters: pvcParams('team-a', 'plain') }));
    expect(lookups).toEqual(['team-a/plain']);
    expect(hintsSent()).toEqual([undefined]);
    expect(r.volume.volume_context).toEqual({});
  });

  it('reads nothing when the provisioner does not name the PVC (no --extra-create-metadata)', async () => {
    await w.call('CreateVolume', createReq('pvc-anon', { parameters: { 'csi.storage.k8s.io/pvc/name': 'data' } }));
    await w.call('CreateVolume', createReq('pvc-anon-2'));
    expect(lookups).toEqual([]);
    expect(hintsSent()).toEqual([undefined, undefined]);
  });

  it('returns INVALID_ARGUMENT naming the PVC when Kubernetes has no such PVC, and creates nothing', async () => {
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-orphan', { parameters: pvcParams('team-a', 'gone') })),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('PVC team-a/gone');
    expect(w.count('cinder.volume.create')).toBe(0);
  });

  it('returns UNAVAILABLE when the Kubernetes API cannot be reached', async () => {
    await w.close();
    const refused = Object.assign(new Error('request to https://10.0.0.1:443 failed, reason: connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
    });
    const down: PvcAnnotationGetter = async (namespace, name) => {
      throw pvcReadError(refused, namespace, name);
    };
    w = await startControllerWorld({ deps: { pvcAnnotations: down } });
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-k8s-down', { parameters: pvcParams('team-a', 'data') })),
    );
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details).toContain('PVC team-a/data');
    expect(w.count('cinder.volume.create')).toBe(0);
  });

  it('answers UNAVAILABLE for a getter failing without a gRPC code', async () => {
    await w.close();
    w = await startControllerWorld({
      deps: { pvcAnnotations: async () => Promise.reject(new Error('socket hang up')) },
    });
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-k8s-odd', { parameters: pvcParams('team-a', 'data') })),
    );
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details).toContain('PVC team-a/data: socket hang up');
  });

  it('returns INVALID_ARGUMENT when an annotation names a volume Cinder does not have', async () => {
    pvcs.set('team-a/data', { [AFF]: 'no-such-volume' });
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-bad-aff', { parameters: pvcParams('team-a', 'data') })),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('no-such-volume');
  });

  it('still accepts the keys as StorageClass parameters, and lets the PVC annotation win for the same key', async () => {
    const a = (await w.call('CreateVolume', createReq('pvc-a'))).volume.volume_id;
    const b = (await w.call('CreateVolume', createReq('pvc-b'))).volume.volume_id;
    created.mockClear();
    await w.call('CreateVolume', createReq('pvc-param-only', { parameters: { [ANTI]: 'pvc-a' } }));
    pvcs.set('team-a/data', { [ANTI]: 'pvc-b' });
    await w.call(
      'CreateVolume',
      createReq('pvc-both', { parameters: { [AFF]: 'pvc-a', [ANTI]: 'pvc-a', ...pvcParams('team-a', 'data') } }),
    );
    expect(hintsSent()).toEqual([{ different_host: [a] }, { same_host: [a], different_host: [b] }]);
  });
});

describe('DeleteVolume', () => {
  beforeEach(async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS } });
  });

  it('succeeds for an unknown volume id', async () => {
    await expect(w.call('DeleteVolume', { volume_id: '00000000-0000-0000-0000-000000000000' })).resolves.toEqual({});
  });

  it('waits until the volume is gone, and succeeds when called twice', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-del'));
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id });
    expect(w.sim.getVolume(r.volume.volume_id)).toBeUndefined();
    await w.call('DeleteVolume', { volume_id: r.volume.volume_id });
  });

  it('returns FAILED_PRECONDITION while the volume is attached', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-att'));
    await w.call('ControllerPublishVolume', {
      volume_id: r.volume.volume_id,
      node_id: w.sim.localServerId,
      volume_capability: MOUNT_RWO,
    });
    const e = await codeOf(w.call('DeleteVolume', { volume_id: r.volume.volume_id }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toContain(w.sim.localServerId);
  });

  it("a retry after a timed-out delete waits for the deletion under way instead of failing on Cinder's refusal", async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, volumeDelete: 800 } } });
    const id2 = (await w.call('CreateVolume', createReq('pvc-slowdel'))).volume.volume_id;
    expect((await codeOf(w.call('DeleteVolume', { volume_id: id2 }, 150))).code).toBe('DEADLINE_EXCEEDED');
    expect(w.sim.getVolume(id2)?.status).toBe('deleting');
    await w.call('DeleteVolume', { volume_id: id2 });
    expect(w.sim.getVolume(id2)).toBeUndefined();
    expect(w.count('cinder.volume.delete')).toBe(2);
  });

  it("refuses a volume that has snapshots with FAILED_PRECONDITION and Cinder's reason", async () => {
    const r = await w.call('CreateVolume', createReq('pvc-snapped'));
    await w.call('CreateSnapshot', { name: 'snap-of-pvc-snapped', source_volume_id: r.volume.volume_id });
    const e = await codeOf(w.call('DeleteVolume', { volume_id: r.volume.volume_id }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toMatch(/have snapshots/);
    expect(w.sim.getVolume(r.volume.volume_id)?.status).toBe('available');
  });
});

describe('ControllerGetVolume', () => {
  beforeEach(async () => {
    w = await startControllerWorld({ sim: { delays: DELAYS } });
  });

  it('returns NOT_FOUND for an unknown volume', async () => {
    expect((await codeOf(w.call('ControllerGetVolume', { volume_id: 'nope' }))).code).toBe('NOT_FOUND');
  });

  it('lists the nodes a volume is published to and a normal condition', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-get'));
    await w.call('ControllerPublishVolume', {
      volume_id: r.volume.volume_id,
      node_id: w.sim.localServerId,
      volume_capability: MOUNT_RWO,
    });
    const g = await w.call('ControllerGetVolume', { volume_id: r.volume.volume_id });
    expect(g.status.published_node_ids).toEqual([w.sim.localServerId]);
    expect(g.status.volume_condition).toEqual({ abnormal: false, message: '' });
    expect(g.volume.capacity_bytes).toBe(String(GIB));
  });

  it('reports abnormal when the server it is attached to was deleted', async () => {
    const node = w.sim.addServer({ name: 'doomed' });
    const r = await w.call('CreateVolume', createReq('pvc-orphan'));
    await w.call('ControllerPublishVolume', {
      volume_id: r.volume.volume_id,
      node_id: node,
      volume_capability: MOUNT_RWO,
    });
    w.sim.deleteServer(node);
    const g = await w.call('ControllerGetVolume', { volume_id: r.volume.volume_id });
    expect(g.status.volume_condition.abnormal).toBe(true);
    expect(g.status.volume_condition.message).toContain(node);
  });

  it('reports abnormal when the volume is in error', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-broken'));
    w.sim.setVolumeStatus(r.volume.volume_id, 'error');
    const g = await w.call('ControllerGetVolume', { volume_id: r.volume.volume_id });
    expect(g.status.volume_condition).toEqual({ abnormal: true, message: 'volume status is error' });
  });
});

describe('ValidateVolumeCapabilities', () => {
  beforeEach(async () => {
    w = await startControllerWorld();
  });

  it('returns NOT_FOUND for an unknown volume', async () => {
    const e = await codeOf(
      w.call('ValidateVolumeCapabilities', { volume_id: 'nope', volume_capabilities: [MOUNT_RWO] }),
    );
    expect(e.code).toBe('NOT_FOUND');
  });

  it('confirms single-node modes', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-val'));
    const v = await w.call('ValidateVolumeCapabilities', {
      volume_id: r.volume.volume_id,
      volume_capabilities: [MOUNT_RWO, BLOCK_RWO],
    });
    expect(v.confirmed.volume_capabilities).toHaveLength(2);
  });

  it('does not confirm a multi-node mode on a volume without multiattach', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-val2'));
    const v = await w.call('ValidateVolumeCapabilities', {
      volume_id: r.volume.volume_id,
      volume_capabilities: [BLOCK_RWX],
    });
    expect(v.confirmed).toBeNull();
    expect(v.message).toContain('MULTI_NODE_MULTI_WRITER');
  });

  it('confirms a multi-node block mode on a multiattach volume', async () => {
    const r = await w.call('CreateVolume', createReq('pvc-val3', { parameters: { type: 'multiattach' } }));
    const v = await w.call('ValidateVolumeCapabilities', {
      volume_id: r.volume.volume_id,
      volume_capabilities: [BLOCK_RWX],
    });
    expect(v.confirmed.volume_capabilities).toHaveLength(1);
  });
});
