import { type CloudAuth } from '../../src/config/types';
import { createClouds } from '../../src/openstack/clients';
import { type RequestEvent } from '../../src/openstack/http';
import { MetadataClient } from '../../src/openstack/metadata';
import { startSimulator, type Simulator } from '../../src/simulator';
import { SIM_REGION, passwordAuth } from './sim-clients';

describe('createClouds', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION });
  });
  afterAll(() => sim.stop());

  it('builds one set of clients per --cloud-name that share one token per cloud', async () => {
    const clouds = new Map<string, CloudAuth>([
      ['', passwordAuth(sim)],
      ['east', passwordAuth(sim, { name: 'east', endpointType: 'internal' })],
    ]);
    const events: RequestEvent[] = [];
    sim.resetCounters();
    const built = createClouds(clouds, ['', 'east'], { onRequest: (e) => events.push(e), userAgentExtra: ['test/1'] });
    expect([...built.keys()]).toEqual(['', 'east']);
    await built.get('')!.cinder.listVolumes();
    await built.get('')!.nova.getServer(sim.localServerId);
    await built.get('east')!.cinder.listVolumes();
    expect(sim.counters()['keystone.token.create']).toBe(2);
    expect(sim.counters()['interface.internal']).toBe(1);
    expect(events.map((e) => `${e.service}.${e.operation}`)).toEqual([
      'keystone.token.create',
      'cinder.volume.list',
      'nova.server.get',
      'keystone.token.create',
      'cinder.volume.list',
    ]);
  });

  it('names a --cloud-name that has no section', () => {
    expect(() => createClouds(new Map([['', passwordAuth(sim)]]), ['west'])).toThrow(
      /\[Global "west"\].*--cloud-name=west/,
    );
  });
});

describe('MetadataClient against the simulator', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION });
  });
  afterAll(() => sim.stop());

  it('reads the node identity from the simulator metadata service', async () => {
    const m = await new MetadataClient({
      options: { searchOrder: ['metadataService'], requestTimeoutMs: 2000 },
      metadataUrl: sim.metadataUrl,
    }).get();
    expect(m).toMatchObject({ uuid: sim.localServerId, source: 'metadataService' });
  });
});
