/**
 * The simulator's os-retype and volume types, each answer as observed on openstack-loopback (Cinder 21);
 * test/integration/retype.openstack.test.ts pins the same facts against the real Cinder.
 */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, waitFor } from './client';

const REFUSED = /^Invalid volume: Retype needs volume to be in available or in-use state/;

describe('simulator os-retype', () => {
  let sim: Simulator;
  let api: Api;
  beforeAll(async () => {
    sim = await startSimulator({ delays: { volumeRetype: 200, attach: 10, detach: 10 } });
    api = await Api.login(sim);
    sim.createVolumeType('gold', { volume_backend_name: 'fake' });
    sim.createVolumeType('silver', { volume_backend_name: 'fake' });
    sim.createVolumeType('remote', { volume_backend_name: 'fake-2' });
    sim.createVolumeType('nowhere', { volume_backend_name: 'no-such-backend' });
  });
  afterAll(() => sim.stop());

  const retype = (id: string, args: Record<string, unknown>) =>
    api.cinder('POST', `/volumes/${id}/action`, { 'os-retype': args });
  async function volumeOf(type: string): Promise<string> {
    const id = await api.createVolume({ volume_type: type });
    await api.volumeStatus(id, 'available');
    return id;
  }
  /** Waits until the volume leaves retyping and returns its statuses since `from` and its type. */
  async function settled(id: string, from: number): Promise<{ statuses: string[]; type: string }> {
    await waitFor(() => sim.getVolume(id)?.status !== 'retyping', 3000, `volume ${id} to finish retyping`);
    const v = sim.getVolume(id)!;
    return { statuses: v.statusHistory.slice(from).map((h) => h.status), type: v.volume_type };
  }

  it('retypes an available volume: 202, retyping, then available with the new type', async () => {
    const id = await volumeOf('gold');
    const from = sim.getVolume(id)!.statusHistory.length;
    const r = await retype(id, { new_type: 'silver' });
    expect(r.status).toBe(202);
    expect(sim.getVolume(id)!.status).toBe('retyping');
    expect(await settled(id, from)).toEqual({ statuses: ['retyping', 'available'], type: 'silver' });
  });

  it('retypes an in-use volume in place and leaves it in-use and attached', async () => {
    const id = await volumeOf('gold');
    expect(
      (
        await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
          volumeAttachment: { volumeId: id },
        })
      ).status,
    ).toBe(200);
    await api.volumeStatus(id, 'in-use');
    const from = sim.getVolume(id)!.statusHistory.length;
    expect((await retype(id, { new_type: 'silver' })).status).toBe(202);
    expect(await settled(id, from)).toEqual({ statuses: ['retyping', 'in-use'], type: 'silver' });
    expect(sim.getVolume(id)!.attachments.map((a) => a.server_id)).toEqual([sim.localServerId]);
  });

  it('refuses a retype to the same type and one of a volume already retyping with the one 400 text', async () => {
    const id = await volumeOf('gold');
    const same = await retype(id, { new_type: 'gold' });
    expect(same.status).toBe(400);
    expect(same.json.badRequest.message).toMatch(REFUSED);
    expect((await retype(id, { new_type: 'silver' })).status).toBe(202);
    const busy = await retype(id, { new_type: 'gold' });
    expect(busy.status).toBe(400);
    expect(busy.json.badRequest.message).toMatch(REFUSED);
    await settled(id, 0);
  });

  it('answers 404 for an unknown type and 400 for a missing new_type or an unknown migration_policy', async () => {
    const id = await volumeOf('gold');
    const unknown = await retype(id, { new_type: 'osl-nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.itemNotFound.message).toBe('Volume type with name osl-nope could not be found.');
    const missing = await retype(id, {});
    expect(missing.status).toBe(400);
    expect(missing.json.badRequest.message).toBe(
      "Invalid input for field/attribute os-retype. Value: {}. 'new_type' is a required property",
    );
    const policy = await retype(id, { new_type: 'silver', migration_policy: 'sometimes' });
    expect(policy.status).toBe(400);
    expect(policy.json.badRequest.message).toBe(
      "Invalid input for field/attribute migration_policy. Value: sometimes. 'sometimes' is not one of ['on-demand', 'never']",
    );
    expect(sim.getVolume(id)!.status).toBe('available');
  });

  it('accepts a retype it cannot do and puts the volume back with its old type: no backend, or a migration with policy never', async () => {
    for (const [type, policy] of [
      ['nowhere', 'on-demand'],
      ['nowhere', 'never'],
      ['remote', 'never'],
    ]) {
      const id = await volumeOf('gold');
      const from = sim.getVolume(id)!.statusHistory.length;
      expect((await retype(id, { new_type: type, migration_policy: policy })).status).toBe(202);
      expect(await settled(id, from)).toEqual({ statuses: ['retyping', 'available'], type: 'gold' });
    }
  });

  it('migrates to another backend with policy on-demand', async () => {
    const id = await volumeOf('gold');
    expect((await retype(id, { new_type: 'remote', migration_policy: 'on-demand' })).status).toBe(202);
    expect((await settled(id, 0)).type).toBe('remote');
    // Now on fake-2: back to a type of fake is a migration again.
    expect((await retype(id, { new_type: 'silver' })).status).toBe(202);
    expect((await settled(id, 0)).type).toBe('remote');
  });

  it('shows a member no volume_backend_name and refuses a member POST /types with 403', async () => {
    const types = (await api.cinder('GET', '/types')).json.volume_types as Array<{ name: string; extra_specs: object }>;
    expect(types.find((t) => t.name === 'gold')!.extra_specs).toEqual({});
    expect(types.find((t) => t.name === 'multiattach')!.extra_specs).toEqual({ multiattach: '<is> True' });
    const r = await api.cinder('POST', '/types', { volume_type: { name: 'mine' } });
    expect(r.status).toBe(403);
    expect(r.json.forbidden.message).toBe("Policy doesn't allow volume_extension:type_create to be performed.");
  });
});
