/**
 * Volume group snapshots against the real Cinder 21 of openstack-loopback: the raw group API with its refusals
 * (the scenario the simulator is pinned to, test/helpers/cinder-groups-scenario.ts), then the driver's
 * GroupController over a real gRPC socket: Create (idempotent, ALREADY_EXISTS), Get, a member snapshot as
 * CreateVolume's source and refused by DeleteSnapshot, Delete, and the volumes left deletable. The admin user
 * makes the group types (one plain, one with consistent_group_snapshot_enabled) and removes them after.
 */
import { randomBytes } from 'node:crypto';
import { loadCloudConfigFiles } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { groupControllerHandlers } from '../../src/csi/group-controller';
import { loadCsiProto } from '../../src/csi/proto';
import { createClouds } from '../../src/openstack/clients';
import { CinderGroupsClient } from '../../src/openstack/cinder-groups';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { groupApiScenario, rawCinder, waitRaw, type RawCinder } from '../helpers/cinder-groups-scenario';
import { logSink } from '../helpers/log-sink';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  itName,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
  recordVolume,
} from '../helpers/openstack-loopback';
import { codeOf, GIB, MOUNT_RWO } from '../helpers/sim-controller';

const SUITE = 'grp';
const RPC_DEADLINE_MS = 60_000;

describeOpenStack('volume group snapshots on openstack-loopback', () => {
  const tag = randomBytes(3).toString('hex');
  /** Group types of this run, made by the admin: a plain one and one asking for consistent group snapshots. */
  const GROUP_TYPE = `osl-it-${SUITE}-gt-${tag}`;
  const CG_TYPE = `osl-it-${SUITE}-cgt-${tag}`;
  let h: CsiHarness;
  let c: CountingClients;
  let admin: CountingClients;
  let cinder: RawCinder;
  let asAdmin: RawCinder;
  let cleanup: Cleanup;
  const groups = new Set<string>();
  const groupSnapshots = new Set<string>();

  const call = <T = any>(service: 'Controller' | 'GroupController', rpc: string, req: object = {}) =>
    h.call<T>(service, rpc, req, RPC_DEADLINE_MS);
  const createVolume = async (name: string, over: object = {}): Promise<string> => {
    const r = await call('Controller', 'CreateVolume', {
      name,
      capacity_range: { required_bytes: String(GIB) },
      volume_capabilities: [MOUNT_RWO],
      ...over,
    });
    return cleanup.volume(r.volume.volume_id);
  };

  beforeAll(async () => {
    const conf = loadCloudConfigFiles([LOOPBACK_CLOUD_CONF], { requireCredentials: true });
    const clouds = createClouds(conf.clouds, ['']);
    const blockStorage: BlockStorageOptions = {
      rescanOnResize: false,
      ignoreVolumeAz: true,
      ignoreVolumeMicroversion: false,
    };
    const log = logSink('info').log;
    const proto = loadCsiProto();
    h = await startHarness([
      {
        definition: proto.ControllerService,
        handlers: controllerHandlers({
          clouds,
          blockStorage,
          cluster: 'osl-it',
          withTopology: false,
          pvcAnnotations: false,
          log,
        }),
      },
      { definition: proto.GroupControllerService, handlers: groupControllerHandlers({ clouds, log }) },
    ]);
    c = loopbackClients(loopbackAuth());
    admin = loopbackClients({ ...loopbackAuth(), username: 'admin', userId: undefined });
    cinder = rawCinder(c);
    asAdmin = rawCinder(admin);
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    for (const [name, specs] of [
      [GROUP_TYPE, {}],
      [CG_TYPE, { consistent_group_snapshot_enabled: '<is> True' }],
    ] as const) {
      const r = await asAdmin(
        'POST',
        '/group_types',
        { group_type: { name, is_public: true, group_specs: specs } },
        '3.11',
      );
      expect(r.status).toBe(202);
    }
  });

  afterAll(async () => {
    await h?.close();
    // Group snapshots before groups before volumes; each step tolerates what is already gone.
    for (const id of groupSnapshots) {
      if ((await cinder('DELETE', `/group_snapshots/${id}`, undefined, '3.14')).status === 202)
        await waitRaw(cinder, `/group_snapshots/${id}`, 'group_snapshot', 'gone');
    }
    for (const id of groups) {
      const g = await cinder('GET', `/groups/${id}?list_volume=True`);
      if (g.status !== 200) continue;
      if (g.json.group.volumes.length > 0) {
        await cinder('PUT', `/groups/${id}`, { group: { remove_volumes: g.json.group.volumes.join(',') } });
        await waitRaw(cinder, `/groups/${id}`, 'group', 'available');
      }
      if ((await cinder('POST', `/groups/${id}/action`, { delete: { 'delete-volumes': false } })).status === 202)
        await waitRaw(cinder, `/groups/${id}`, 'group', 'gone');
    }
    await cleanup?.run();
    const types = (await asAdmin('GET', '/group_types', undefined, '3.11')).json.group_types as Array<{
      id: string;
      name: string;
    }>;
    for (const t of types.filter((x) => x.name === GROUP_TYPE || x.name === CG_TYPE)) {
      expect((await asAdmin('DELETE', `/group_types/${t.id}`, undefined, '3.11')).status).toBe(202);
    }
  });

  it('answers the group API as the simulator was pinned to, refusals included', async () => {
    const va = await createVolume(itName(SUITE, 'raw-a'));
    const vb = await createVolume(itName(SUITE, 'raw-b'));
    const track = (kind: 'group' | 'group_snapshot', id: string) =>
      void (kind === 'group' ? groups : groupSnapshots).add(id);
    await groupApiScenario({ cinder, groupType: GROUP_TYPE, volumes: [va, vb], prefix: itName(SUITE, 'raw'), track });
  });

  describe('the GroupController', () => {
    let va: string;
    let vb: string;
    let name: string;

    let first: any;

    beforeAll(async () => {
      va = await createVolume(itName(SUITE, 'a'));
      vb = await createVolume(itName(SUITE, 'b'));
      name = itName(SUITE, 'gs');
    });

    it('advertises CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT', async () => {
      const r = await call('GroupController', 'GroupControllerGetCapabilities');
      expect(r.capabilities).toEqual([{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' }, type: 'rpc' }]);
    });

    it('cuts a group snapshot of two volumes, and leaves the volumes out of any group', async () => {
      first = await call('GroupController', 'CreateVolumeGroupSnapshot', {
        name,
        source_volume_ids: [va, vb],
        parameters: { groupType: GROUP_TYPE },
      });
      const gs = first.group_snapshot;
      const [gsId, groupId] = gs.group_snapshot_id.split(':');
      groupSnapshots.add(gsId);
      groups.add(groupId);
      expect(gs.ready_to_use).toBe(true);
      expect(gs.snapshots.map((s: { source_volume_id: string }) => s.source_volume_id).sort()).toEqual([va, vb].sort());
      for (const s of gs.snapshots)
        expect(s).toMatchObject({
          ready_to_use: true,
          size_bytes: String(GIB),
          group_snapshot_id: gs.group_snapshot_id,
        });
      const groupsApi = new CinderGroupsClient({ keystone: c.keystone, http: c.http });
      expect((await groupsApi.getGroup(groupId)).volumes).toEqual([]);
      expect((await groupsApi.getGroupSnapshot(gsId)).status).toBe('available');
      for (const v of [va, vb]) expect((await groupsApi.getVolume(v)).group_id).toBeNull();
    });

    it('answers the same group snapshot for the same name and volumes, ALREADY_EXISTS for other volumes', async () => {
      const again = await call('GroupController', 'CreateVolumeGroupSnapshot', {
        name,
        source_volume_ids: [vb, va],
        parameters: { groupType: GROUP_TYPE },
      });
      expect(again.group_snapshot.group_snapshot_id).toBe(first.group_snapshot.group_snapshot_id);
      const err = await codeOf(
        call('GroupController', 'CreateVolumeGroupSnapshot', {
          name,
          source_volume_ids: [va],
          parameters: { groupType: GROUP_TYPE },
        }),
      );
      expect(err.code).toBe('ALREADY_EXISTS');
    });

    it('gets the group snapshot, checking snapshot_ids', async () => {
      const id = first.group_snapshot.group_snapshot_id;
      const ids = first.group_snapshot.snapshots.map((s: { snapshot_id: string }) => s.snapshot_id);
      const got = await call('GroupController', 'GetVolumeGroupSnapshot', { group_snapshot_id: id, snapshot_ids: ids });
      expect(got.group_snapshot).toEqual(first.group_snapshot);
      const mismatch = await codeOf(
        call('GroupController', 'GetVolumeGroupSnapshot', { group_snapshot_id: id, snapshot_ids: [ids[0]] }),
      );
      expect(mismatch.code).toBe('INVALID_ARGUMENT');
      const unknown = await codeOf(
        call('GroupController', 'GetVolumeGroupSnapshot', {
          group_snapshot_id: '00000000-0000-0000-0000-000000000000',
        }),
      );
      expect(unknown.code).toBe('NOT_FOUND');
    });

    it('restores a volume from a member snapshot; DeleteSnapshot of a member is FAILED_PRECONDITION', async () => {
      const member = first.group_snapshot.snapshots[0];
      const restored = await call('Controller', 'CreateVolume', {
        name: itName(SUITE, 'restored'),
        capacity_range: { required_bytes: String(GIB) },
        volume_capabilities: [MOUNT_RWO],
        volume_content_source: { snapshot: { snapshot_id: member.snapshot_id } },
      });
      cleanup.volume(restored.volume.volume_id);
      expect(restored.volume.content_source).toEqual({
        snapshot: { snapshot_id: member.snapshot_id },
        type: 'snapshot',
      });
      expect((await c.cinder.getVolume(restored.volume.volume_id)).snapshot_id).toBe(member.snapshot_id);
      const err = await codeOf(call('Controller', 'DeleteSnapshot', { snapshot_id: member.snapshot_id }));
      expect(err.code).toBe('FAILED_PRECONDITION');
    });

    it('refuses a volume that is in another group with FAILED_PRECONDITION, leaving no group behind', async () => {
      const g = (
        await cinder('POST', '/groups', {
          group: { name: itName(SUITE, 'foreign'), group_type: GROUP_TYPE, volume_types: ['__DEFAULT__'] },
        })
      ).json.group.id;
      groups.add(g);
      await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
      await cinder('PUT', `/groups/${g}`, { group: { add_volumes: va } });
      await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
      const other = itName(SUITE, 'gs-busy');
      const err = await codeOf(
        call('GroupController', 'CreateVolumeGroupSnapshot', {
          name: other,
          source_volume_ids: [va, vb],
          parameters: { groupType: GROUP_TYPE },
        }),
      );
      expect(err.code).toBe('FAILED_PRECONDITION');
      expect(err.details).toContain(`already in Cinder group ${g}`);
      expect((await cinder('GET', `/groups/detail?name=${other}`, undefined, '3.13')).json.groups).toEqual([]);
      await cinder('PUT', `/groups/${g}`, { group: { remove_volumes: va } });
      await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
    });

    it('deletes the group snapshot and its group; again OK; then Get is NOT_FOUND and the volumes can be deleted', async () => {
      const gs = first.group_snapshot;
      const ids = gs.snapshots.map((s: { snapshot_id: string }) => s.snapshot_id);
      const mismatch = await codeOf(
        call('GroupController', 'DeleteVolumeGroupSnapshot', {
          group_snapshot_id: gs.group_snapshot_id,
          snapshot_ids: [ids[0]],
        }),
      );
      expect(mismatch.code).toBe('INVALID_ARGUMENT');
      await call('GroupController', 'DeleteVolumeGroupSnapshot', {
        group_snapshot_id: gs.group_snapshot_id,
        snapshot_ids: ids,
      });
      const [gsId, groupId] = gs.group_snapshot_id.split(':');
      expect((await cinder('GET', `/group_snapshots/${gsId}`, undefined, '3.14')).status).toBe(404);
      expect((await cinder('GET', `/groups/${groupId}`)).status).toBe(404);
      for (const id of ids) expect((await cinder('GET', `/snapshots/${id}`, undefined, '3.0')).status).toBe(404);
      await call('GroupController', 'DeleteVolumeGroupSnapshot', {
        group_snapshot_id: gs.group_snapshot_id,
        snapshot_ids: ids,
      });
      const gone = await codeOf(
        call('GroupController', 'GetVolumeGroupSnapshot', {
          group_snapshot_id: gs.group_snapshot_id,
          snapshot_ids: ids,
        }),
      );
      expect(gone.code).toBe('NOT_FOUND');
      await call('Controller', 'DeleteVolume', { volume_id: vb });
      await expect(c.cinder.getVolume(vb)).rejects.toMatchObject({ kind: 'not-found' });
    });

    it("cuts a group snapshot with a consistent_group_snapshot_enabled group type (the fake backend takes Cinder's generic path)", async () => {
      const gs = (
        await call('GroupController', 'CreateVolumeGroupSnapshot', {
          name: itName(SUITE, 'gs-cg'),
          source_volume_ids: [va],
          parameters: { groupType: CG_TYPE },
        })
      ).group_snapshot;
      const [gsId, groupId] = gs.group_snapshot_id.split(':');
      groupSnapshots.add(gsId);
      groups.add(groupId);
      expect(gs).toMatchObject({ ready_to_use: true });
      expect(gs.snapshots).toHaveLength(1);
      await call('GroupController', 'DeleteVolumeGroupSnapshot', {
        group_snapshot_id: gs.group_snapshot_id,
        snapshot_ids: [gs.snapshots[0].snapshot_id],
      });
      expect((await cinder('GET', `/groups/${groupId}`)).status).toBe(404);
    });

    it('refuses an unknown group type with INVALID_ARGUMENT and no group type at all (the cloud has no default) likewise', async () => {
      for (const parameters of [{ groupType: `${GROUP_TYPE}-nope` }, {}]) {
        const n = itName(SUITE, 'gs-nt');
        const err = await codeOf(
          call('GroupController', 'CreateVolumeGroupSnapshot', { name: n, source_volume_ids: [va], parameters }),
        );
        expect(err.code).toBe('INVALID_ARGUMENT');
        expect(err.details).toContain('parameters.groupType');
        expect((await cinder('GET', `/groups/detail?name=${n}`, undefined, '3.13')).json.groups).toEqual([]);
      }
      await recordVolume(c.cinder, va, (v) => v.status === 'available');
    });
  });
});
