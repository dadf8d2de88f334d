/** GetCapacity against the simulator's Cinder quotas (quota set with usage, per-type keys, absolute limits) over gRPC. */
import { GIB, type ControllerWorld, codeOf, createReq, startControllerWorld } from '../helpers/sim-controller';
import { UNLIMITED_BYTES } from '../../src/csi/controller-capacity';

const ZONE = { segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } };
let w: ControllerWorld;
beforeEach(async () => {
  w = await startControllerWorld({ sim: { quota: { gigabytes: 20 } } });
});
afterEach(() => w.close());

const capacity = (parameters: Record<string, string> = {}, over: object = {}) =>
  w.call('GetCapacity', { parameters, accessible_topology: ZONE, ...over });
const gib = (n: number) => String(n * GIB);

describe('GetCapacity', () => {
  it('is advertised', async () => {
    const res = await w.call('ControllerGetCapabilities');
    expect(res.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type)).toContain('GET_CAPACITY');
  });

  it('answers the project-wide gigabytes quota less what volumes and snapshots use, and drops by what is created', async () => {
    expect((await capacity()).available_capacity).toBe(gib(20));
    const v = (await w.call('CreateVolume', createReq('pvc-cap', { capacity_range: { required_bytes: gib(3) } })))
      .volume;
    expect((await capacity()).available_capacity).toBe(gib(17));
    await w.call('CreateSnapshot', { name: 'snap-cap', source_volume_id: v.volume_id });
    expect((await capacity()).available_capacity).toBe(gib(14));
    // The same in any zone: Cinder's quotas are per project.
    expect((await capacity({}, { accessible_topology: null })).available_capacity).toBe(gib(14));
  });

  it("takes the tightest of the project-wide and the volume type's quota, per `type` parameter", async () => {
    w.sim.setQuota({ typeGigabytes: { multiattach: 5 } });
    expect((await capacity({ type: 'multiattach' })).available_capacity).toBe(gib(5));
    expect((await capacity({ type: '__DEFAULT__' })).available_capacity).toBe(gib(20));
    await w.call(
      'CreateVolume',
      createReq('pvc-multi', { capacity_range: { required_bytes: gib(2) }, parameters: { type: 'multiattach' } }),
    );
    expect((await capacity({ type: 'multiattach' })).available_capacity).toBe(gib(3));
    expect((await capacity()).available_capacity).toBe(gib(18));
    // Past the type's quota the simulator refuses like Cinder (413), which CreateVolume answers RESOURCE_EXHAUSTED.
    const e = await codeOf(
      w.call(
        'CreateVolume',
        createReq('pvc-multi-2', { capacity_range: { required_bytes: gib(4) }, parameters: { type: 'multiattach' } }),
      ),
    );
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('gigabytes_multiattach');
    // The project-wide quota binds when it is the tighter one.
    w.sim.setQuota({ gigabytes: 4 });
    expect((await capacity({ type: 'multiattach' })).available_capacity).toBe(gib(2));
  });

  it('reports per_volume_gigabytes as maximum_volume_size, and CreateVolume past it is RESOURCE_EXHAUSTED', async () => {
    expect((await capacity()).maximum_volume_size).toBeNull();
    w.sim.setQuota({ perVolumeGigabytes: 4 });
    expect((await capacity()).maximum_volume_size).toEqual({ value: gib(4) });
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-big', { capacity_range: { required_bytes: gib(5) } })),
    );
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('answers the largest int64 when no quota is finite, and 0 (not negative) when usage exceeds a lowered quota', async () => {
    w.sim.setQuota({ gigabytes: -1 });
    expect((await capacity()).available_capacity).toBe(UNLIMITED_BYTES);
    await w.call('CreateVolume', createReq('pvc-over', { capacity_range: { required_bytes: gib(3) } }));
    w.sim.setQuota({ gigabytes: 2 });
    expect((await capacity()).available_capacity).toBe('0');
  });

  it('falls back to the absolute limits when policy hides the quota set (403)', async () => {
    w.sim.injectFault('cinder.quota-set.get', { kind: 'http-status', status: 403 });
    w.sim.setQuota({ typeGigabytes: { multiattach: 1 } });
    // Only the project-wide figure is known then.
    expect((await capacity({ type: 'multiattach' })).available_capacity).toBe(gib(20));
    expect(w.count('cinder.limits.get')).toBe(1);
  });

  it('answers INVALID_ARGUMENT naming an unknown parameter or a bad capability', async () => {
    const e = await codeOf(capacity({ bogus: 'x' }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain('parameters.bogus');
    const c = await codeOf(capacity({}, { volume_capabilities: [{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }));
    expect(c.code).toBe('INVALID_ARGUMENT');
  });
});
