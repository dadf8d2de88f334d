import { Status } from '../../src/errors';
import { HttpClient } from '../../src/openstack/http';
import { type ServiceAuth } from '../../src/openstack/keystone';
import { NovaClient } from '../../src/openstack/nova';
import { startSimulator, type Simulator } from '../../src/simulator';
import { type LocalServer, json, startLocalServer } from './local-server';
import { SIM_REGION, type TestClients, clientsFor, passwordAuth, waitFor } from './sim-clients';
import { openStackFailure } from '../helpers/openstack-failure';

const failure = openStackFailure;

describe('NovaClient against the simulator', () => {
  let sim: Simulator;
  let c: TestClients;
  const availableVolume = async (name: string, volumeType?: string) => {
    const v = await c.cinder.createVolume({ name, size: 1, volumeType });
    return waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.status === 'available',
    );
  };

  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION, localServer: { az: 'nova-az1' } });
  });
  afterAll(() => sim.stop());
  beforeEach(() => {
    sim.clearFaults();
    c = clientsFor(passwordAuth(sim));
  });

  it('gets a server with its availability zone', async () => {
    const s = await c.nova.getServer(sim.localServerId);
    expect(s).toMatchObject({ id: sim.localServerId, 'OS-EXT-AZ:availability_zone': 'nova-az1' });
    expect(s.status).toBe('ACTIVE');
  });

  it('shares one GET among calls asking for the same server while it is in flight; a caller that gives up leaves the rest', async () => {
    sim.injectFault('nova.server.get', { kind: 'delay', delayMs: 150, times: 1 });
    sim.resetCounters();
    const quitter = new AbortController();
    const asks = Array.from({ length: 10 }, (_, i) =>
      c.nova.getServer(sim.localServerId, i === 0 ? quitter.signal : undefined),
    );
    quitter.abort(new Error('caller gone'));
    const results = await Promise.allSettled(asks);
    expect(results[0]).toEqual({ status: 'rejected', reason: new Error('caller gone') });
    expect(results.slice(1).map((r) => r.status === 'fulfilled' && r.value.id)).toEqual(
      Array(9).fill(sim.localServerId),
    );
    expect(sim.counters()['nova.server.get']).toBe(1);
    // Once answered, the next call sends its own GET: nothing is cached.
    await c.nova.getServer(sim.localServerId);
    expect(sim.counters()['nova.server.get']).toBe(2);
  });

  it('answers NOT_FOUND for an unknown server', async () => {
    const e = await failure(c.nova.getServer('00000000-0000-4000-8000-000000000000'));
    expect(e.code).toBe(Status.NOT_FOUND);
    expect(e.service).toBe('nova');
  });

  it('attaches, lists and detaches a volume', async () => {
    const v = await availableVolume('pvc-attach');
    const a = await c.nova.attachVolume(sim.localServerId, v.id);
    expect(a).toMatchObject({ serverId: sim.localServerId, volumeId: v.id });
    const inUse = await waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.status === 'in-use',
    );
    expect(inUse.attachments.map((x) => x.server_id)).toEqual([sim.localServerId]);
    expect((await c.nova.listVolumeAttachments(sim.localServerId)).map((x) => x.volumeId)).toContain(v.id);
    await c.nova.detachVolume(sim.localServerId, v.id);
    await waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.status === 'available',
    );
    expect((await c.nova.listVolumeAttachments(sim.localServerId)).map((x) => x.volumeId)).not.toContain(v.id);
  });

  it("keeps Nova's message when attaching a volume already in use by another server", async () => {
    const other = sim.addServer({ name: 'other' });
    const v = await availableVolume('pvc-busy');
    await c.nova.attachVolume(sim.localServerId, v.id);
    await waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.status === 'in-use',
    );
    const e = await failure(c.nova.attachVolume(other, v.id));
    expect([Status.FAILED_PRECONDITION, Status.INVALID_ARGUMENT]).toContain(e.code);
    expect(e.serviceMessage).toBeTruthy();
    expect(e.message).toContain(e.serviceMessage);
  });

  it('attaches a multiattach volume to two servers', async () => {
    const other = sim.addServer({ name: 'other-multi' });
    const v = await availableVolume('pvc-multi', 'multiattach');
    expect(v.multiattach).toBe(true);
    await c.nova.attachVolume(sim.localServerId, v.id, { multiattach: true });
    await waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.status === 'in-use',
    );
    await c.nova.attachVolume(other, v.id, { multiattach: true });
    const both = await waitFor(
      () => c.cinder.getVolume(v.id),
      (x) => x.attachments.length === 2,
    );
    expect(both.attachments.map((x) => x.server_id).sort()).toEqual([sim.localServerId, other].sort());
  });

  it('answers NOT_FOUND when detaching a volume that is not attached there', async () => {
    const v = await availableVolume('pvc-not-attached');
    expect((await failure(c.nova.detachVolume(sim.localServerId, v.id))).code).toBe(Status.NOT_FOUND);
  });
});

describe('NovaClient microversion', () => {
  let server: LocalServer;
  const auth: ServiceAuth = {
    endpoint: async () => server.url + '/v2.1',
    token: async () => 'tok',
    invalidate: () => undefined,
  };
  beforeEach(async () => {
    server = await startLocalServer((_r, res) =>
      json(res, 200, { volumeAttachment: { id: 'v', serverId: 's', volumeId: 'v' } }),
    );
  });
  afterEach(() => server.close());

  it('asks for 2.60 only when the volume is multiattach', async () => {
    const nova = new NovaClient({ keystone: auth, http: new HttpClient() });
    await nova.attachVolume('s', 'v');
    await nova.attachVolume('s', 'v', { multiattach: true });
    expect(
      server.seen.map((r) => [r.headers['x-openstack-nova-api-version'], r.headers['openstack-api-version']]),
    ).toEqual([
      [undefined, undefined],
      ['2.60', 'compute 2.60'],
    ]);
    expect(JSON.parse(server.seen[0].body)).toEqual({ volumeAttachment: { volumeId: 'v' } });
  });
});
