/**
 * The simulator's generic groups and group snapshots: the scenario observed on openstack-loopback's Cinder 21
 * (test/helpers/cinder-groups-scenario.ts; the same scenario runs against the real Cinder in
 * test/integration/group-snapshots.openstack.test.ts).
 */
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { createClouds, type CloudClients } from '../../src/openstack/clients';
import { startSimulator, type Simulator } from '../../src/simulator';
import { groupApiScenario, rawCinder, waitRaw } from '../helpers/cinder-groups-scenario';

describe('simulator: Cinder generic groups and group snapshots', () => {
  let sim: Simulator;
  let c: CloudClients;
  beforeAll(async () => {
    sim = await startSimulator({
      devicePlane: false,
      delays: { snapshotCreate: 30, snapshotDelete: 30, volumeCreate: 10 },
    });
    c = createClouds(
      parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true }).clouds,
    ).get('')!;
  });
  afterAll(() => sim.stop());

  const volume = async (name: string) => {
    const v = await c.cinder.createVolume({ name, size: 1 });
    await waitRaw(rawCinder(c), `/volumes/${v.id}`, 'volume', 'available');
    return v.id;
  };

  it('answers the group API as Cinder 21 does, refusals included', async () => {
    const groupType = 'sim-gt';
    sim.addGroupType(groupType);
    const volumes: [string, string] = [await volume('ga'), await volume('gb')];
    await groupApiScenario({ cinder: rawCinder(c), groupType, volumes, prefix: 'sim', track: () => undefined });
    expect(sim.listSnapshots()).toEqual([]);
  });

  it('lists every group snapshot below 3.29, where Cinder ignores filters', async () => {
    const cinder = rawCinder(c);
    sim.addGroupType('sim-gt-list');
    const v = await volume('gl');
    const g = (
      await cinder('POST', '/groups', {
        group: { name: 'gl', group_type: 'sim-gt-list', volume_types: ['__DEFAULT__'] },
      })
    ).json.group.id;
    await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
    await cinder('PUT', `/groups/${g}`, { group: { add_volumes: v } });
    await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
    const gs = (await cinder('POST', '/group_snapshots', { group_snapshot: { group_id: g, name: 'gl-gs' } }, '3.14'))
      .json.group_snapshot.id;
    expect(
      (await cinder('GET', '/group_snapshots/detail?name=other', undefined, '3.14')).json.group_snapshots.map(
        (x: { id: string }) => x.id,
      ),
    ).toEqual([gs]);
    expect((await cinder('GET', '/group_snapshots/detail?name=other', undefined, '3.29')).json.group_snapshots).toEqual(
      [],
    );
    expect((await cinder('GET', '/group_snapshots', undefined, '3.13')).status).toBe(404);
  });

  it('counts groups against the groups quota of 10', async () => {
    const cinder = rawCinder(c);
    sim.addGroupType('sim-gt-quota');
    const existing = (await cinder('GET', '/groups')).json.groups.length as number;
    for (let i = existing; i < 10; i++) {
      expect(
        (
          await cinder('POST', '/groups', {
            group: { name: `q${i}`, group_type: 'sim-gt-quota', volume_types: ['__DEFAULT__'] },
          })
        ).status,
      ).toBe(202);
    }
    const over = await cinder('POST', '/groups', {
      group: { name: 'q-over', group_type: 'sim-gt-quota', volume_types: ['__DEFAULT__'] },
    });
    expect(over).toMatchObject({
      status: 413,
      json: { overLimit: { code: 413, message: 'Maximum number of groups allowed (10) exceeded' } },
    });
  });
});
