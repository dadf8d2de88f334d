/**
 * ControllerModifyVolume (and CreateVolume's mutable_parameters) over gRPC against the simulator: validation,
 * retype of available and in-use volumes, idempotency, a retype in progress, the refusals Cinder leaves for
 * the volume to tell, and per-volume serialization.
 */
import { MOUNT_RWO, type ControllerWorld, codeOf, createReq, startControllerWorld } from '../helpers/sim-controller';

const DELAYS = { volumeCreate: 10, volumeDelete: 10, attach: 20, detach: 10, volumeRetype: 300 };
let w: ControllerWorld;

beforeAll(async () => {
  w = await startControllerWorld({ sim: { delays: DELAYS } });
  w.sim.createVolumeType('gold', { volume_backend_name: 'fake' });
  w.sim.createVolumeType('silver', { volume_backend_name: 'fake' });
  w.sim.createVolumeType('remote', { volume_backend_name: 'fake-2' });
  w.sim.createVolumeType('nowhere', { volume_backend_name: 'no-such-backend' });
});
afterAll(() => w.close());

let seq = 0;
async function volume(type = 'gold'): Promise<string> {
  return (await w.call('CreateVolume', createReq(`pvc-mod-${++seq}`, { parameters: { type } }))).volume.volume_id;
}
const modify = (volumeId: string, params: Record<string, string>, deadlineMs?: number) =>
  w.call('ControllerModifyVolume', { volume_id: volumeId, mutable_parameters: params }, deadlineMs);
const typeOf = (id: string) => w.sim.getVolume(id)!.volume_type;
const retypes = () => w.count('cinder.volume.retype');

describe('ControllerModifyVolume', () => {
  beforeEach(() => w.sim.resetCounters());

  it('advertises MODIFY_VOLUME', async () => {
    const caps = (await w.call('ControllerGetCapabilities')).capabilities.map((c: any) => c.rpc.type);
    expect(caps).toContain('MODIFY_VOLUME');
  });

  it('refuses a request without volume_id, and keys that cannot change, naming them', async () => {
    const id = await volume();
    const cases: Array<[object, RegExp]> = [
      [{ mutable_parameters: { type: 'silver' } }, /^volume_id /],
      [
        { volume_id: id, mutable_parameters: { availability: 'nova' } },
        /^mutable_parameters\.availability cannot change/,
      ],
      [{ volume_id: id, mutable_parameters: { fsType: 'xfs' } }, /^mutable_parameters\.fsType cannot change/],
      [{ volume_id: id, mutable_parameters: { iops: '100' } }, /^mutable_parameters\.iops is not a mutable parameter/],
      [
        { volume_id: id, mutable_parameters: { type: 'silver', migrationPolicy: 'always' } },
        /^mutable_parameters\.migrationPolicy "always" must be never or on-demand/,
      ],
      [{ volume_id: id, mutable_parameters: { type: ' ' } }, /^mutable_parameters\.type must name a volume type/],
      [
        { volume_id: 'obj1:s3:bucket:', mutable_parameters: { type: 'silver' } },
        /^mutable_parameters\.type is not supported by object volumes/,
      ],
    ];
    for (const [req, message] of cases) {
      const e = await codeOf(w.call('ControllerModifyVolume', req));
      expect(e).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(e.details).toMatch(message);
    }
    expect(retypes()).toBe(0);
    expect(typeOf(id)).toBe('gold');
  });

  it('answers NOT_FOUND for a volume that does not exist', async () => {
    const e = await codeOf(modify('00000000-0000-0000-0000-000000000000', { type: 'silver' }));
    expect(e.code).toBe('NOT_FOUND');
  });

  it('retypes an available volume, waiting through retyping, and answers a repeat without another retype', async () => {
    const id = await volume();
    await modify(id, { type: 'silver' });
    expect(typeOf(id)).toBe('silver');
    expect(w.sim.getVolume(id)!.status).toBe('available');
    expect(w.sim.volumeHistory(id).map((h) => h.status)).toEqual(['creating', 'available', 'retyping', 'available']);
    await modify(id, { type: 'silver' });
    expect(retypes()).toBe(1);
  });

  it('retypes an in-use volume in place: it stays attached to its node', async () => {
    const id = await volume();
    await w.call('ControllerPublishVolume', {
      volume_id: id,
      node_id: w.sim.localServerId,
      volume_capability: MOUNT_RWO,
    });
    await modify(id, { type: 'silver' });
    expect(w.sim.getVolume(id)).toMatchObject({
      status: 'in-use',
      volume_type: 'silver',
      attachments: [{ server_id: w.sim.localServerId }],
    });
  });

  it('waits out a retype in progress (a timed-out call) instead of starting another', async () => {
    const id = await volume();
    expect((await codeOf(modify(id, { type: 'silver' }, 100))).code).toBe('DEADLINE_EXCEEDED');
    expect(w.sim.getVolume(id)!.status).toBe('retyping');
    await modify(id, { type: 'silver' });
    expect(typeOf(id)).toBe('silver');
    expect(retypes()).toBe(1);
  });

  it('answers ABORTED to a second call on the same volume while the first runs', async () => {
    const id = await volume();
    const first = modify(id, { type: 'silver' });
    await new Promise((r) => setTimeout(r, 50));
    expect((await codeOf(modify(id, { type: 'gold' }))).code).toBe('ABORTED');
    await first;
    expect(typeOf(id)).toBe('silver');
  });

  it('answers INVALID_ARGUMENT naming a volume type Cinder does not know', async () => {
    const id = await volume();
    const e = await codeOf(modify(id, { type: 'platinum' }));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(e.details).toMatch(/^mutable_parameters\.type "platinum" is not a volume type/);
  });

  it('answers FAILED_PRECONDITION when Cinder puts the volume back with its old type, naming migrationPolicy', async () => {
    const id = await volume();
    const never = await codeOf(modify(id, { type: 'remote' }));
    expect(never.code).toBe('FAILED_PRECONDITION');
    expect(never.details).toMatch(/migrationPolicy "never" forbids/);
    const nowhere = await codeOf(modify(id, { type: 'nowhere', migrationPolicy: 'on-demand' }));
    expect(nowhere.code).toBe('FAILED_PRECONDITION');
    expect(nowhere.details).toMatch(/no backend accepts type "nowhere"/);
    expect(typeOf(id)).toBe('gold');
    await modify(id, { type: 'remote', migrationPolicy: 'on-demand' });
    expect(typeOf(id)).toBe('remote');
  });

  it('answers ABORTED while the volume is in a passing state and FAILED_PRECONDITION for an error state', async () => {
    const id = await volume();
    w.sim.setVolumeStatus(id, 'extending');
    expect((await codeOf(modify(id, { type: 'silver' }))).code).toBe('ABORTED');
    w.sim.setVolumeStatus(id, 'error');
    const e = await codeOf(modify(id, { type: 'silver' }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toMatch(/status error/);
    expect(retypes()).toBe(0);
    w.sim.setVolumeStatus(id, 'available');
  });

  it('answers INTERNAL when the volume lands in an error status during its retype', async () => {
    const id = await volume();
    const call = codeOf(modify(id, { type: 'silver' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(w.sim.getVolume(id)!.status).toBe('retyping');
    w.sim.setVolumeStatus(id, 'error');
    const e = await call;
    expect(e.code).toBe('INTERNAL');
    expect(e.details).toMatch(/left it in status error/);
    w.sim.setVolumeStatus(id, 'available');
  });

  it('accepts no key or migrationPolicy alone (nothing to change) for an existing volume, NOT_FOUND for an unknown one', async () => {
    const id = await volume();
    await modify(id, { migrationPolicy: 'on-demand' });
    await w.call('ControllerModifyVolume', { volume_id: id });
    expect(retypes()).toBe(0);
    expect(
      (await codeOf(w.call('ControllerModifyVolume', { volume_id: '00000000-0000-0000-0000-000000000000' }))).code,
    ).toBe('NOT_FOUND');
  });
});

describe('CreateVolume with mutable_parameters', () => {
  it('creates the volume with the mutable type, which wins over the StorageClass type', async () => {
    const r = await w.call(
      'CreateVolume',
      createReq('pvc-mod-create', {
        parameters: { type: 'gold' },
        mutable_parameters: { type: 'silver', migrationPolicy: 'on-demand' },
      }),
    );
    expect(typeOf(r.volume.volume_id)).toBe('silver');
  });

  it('refuses an immutable key given as a mutable parameter, naming it', async () => {
    const e = await codeOf(
      w.call('CreateVolume', createReq('pvc-mod-create-bad', { mutable_parameters: { availability: 'nova' } })),
    );
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(e.details).toMatch(/^mutable_parameters\.availability/);
  });
});
