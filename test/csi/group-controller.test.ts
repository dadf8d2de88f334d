/**
 * The GroupController over a real gRPC socket against the simulator: validation, idempotency, the snapshot_ids
 * checks, a resumed Create after an interruption (group, then group snapshot left behind), Delete finishing a
 * half-done Delete, pre-provisioned (bare) group snapshot ids, deadlines and two group snapshots of one volume.
 * The same calls against the real Cinder: test/integration/group-snapshots.openstack.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { parseFlags } from '../../src/config/flags';
import { silentLogger } from '../../src/log';
import { startPlugin } from '../../src/main';
import { callUnary, makeClient } from '../../src/csi/proto';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { groupControllerHandlers, parseGroupParameters } from '../../src/csi/group-controller';
import { identityHandlers } from '../../src/csi/identity';
import { loadCsiProto } from '../../src/csi/proto';
import { lockKeysFor } from '../../src/csi/lock-keys';
import { createClouds, type CloudClients } from '../../src/openstack/clients';
import { CinderGroupsClient } from '../../src/openstack/cinder-groups';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import { codeOf, createReq } from '../helpers/sim-controller';

const GROUP_TYPE = 'csi-groups';

interface World {
  sim: Simulator;
  h: CsiHarness;
  c: CloudClients;
  groups: CinderGroupsClient;

  call<T = any>(rpc: string, req?: object, deadlineMs?: number): Promise<T>;
  volume(name: string): Promise<string>;
  close(): Promise<void>;
}

async function startWorld(sim: SimulatorOptions = {}): Promise<World> {
  const s = await startSimulator({ devicePlane: false, ...sim });
  s.addGroupType(GROUP_TYPE);
  const conf = parseCloudConfig([{ file: 'sim', text: s.cloudConf() }], { requireCredentials: true });
  const clouds = createClouds(conf.clouds, [''], { http: { retry: { initialMs: 1, maxDelayMs: 5 } } });
  const blockStorage: BlockStorageOptions = {
    rescanOnResize: false,
    ignoreVolumeAz: false,
    ignoreVolumeMicroversion: false,
  };
  const log = logSink('info').log;
  const proto = loadCsiProto();
  const h = await startHarness([
    {
      definition: proto.ControllerService,
      handlers: controllerHandlers({
        clouds,
        blockStorage,
        cluster: 't',
        withTopology: false,
        pvcAnnotations: false,
        log,
      }),
    },
    { definition: proto.GroupControllerService, handlers: groupControllerHandlers({ clouds, log }) },
  ]);
  const c = clouds.get('')!;
  return {
    sim: s,
    h,
    c,
    groups: new CinderGroupsClient({ keystone: c.keystone, http: c.http }),
    call: (rpc, req = {}, deadlineMs = 20_000) => h.call('GroupController', rpc, req, deadlineMs),
    volume: async (name) =>
      (await h.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', createReq(name))).volume.volume_id,
    close: async () => {
      await h.close();
      await s.stop();
    },
  };
}

const params = { groupType: GROUP_TYPE };

describe('GroupController (simulator)', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ delays: { snapshotCreate: 20, snapshotDelete: 20 } });
  });
  afterAll(() => w.close());

  it('advertises the group controller service and its one capability', async () => {
    const id = identityHandlers({
      version: 't',
      controller: true,
      groupController: true,
      topology: false,
      readinessProblems: async () => [],
    });
    expect(await id.GetPluginCapabilities({}, {} as never)).toMatchObject({
      capabilities: expect.arrayContaining([{ service: { type: 'GROUP_CONTROLLER_SERVICE' } }]),
    });
    expect(await w.call('GroupControllerGetCapabilities')).toEqual({
      capabilities: [{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' }, type: 'rpc' }],
    });
  });

  it.each([
    ['no name', { source_volume_ids: ['a'] }, 'name is required'],
    ['no source volumes', { name: 'n' }, 'source_volume_ids is required'],
    ['an empty source volume id', { name: 'n', source_volume_ids: ['a', ''] }, 'source_volume_ids[1] is required'],
    ['a volume twice', { name: 'n', source_volume_ids: ['a', 'a'] }, 'source_volume_ids names a volume twice'],
    [
      'an unknown parameter',
      { name: 'n', source_volume_ids: ['a'], parameters: { type: 'x' } },
      'parameters.type is not a known parameter',
    ],
    [
      'an unknown cloud',
      { name: 'n', source_volume_ids: ['a'], secrets: { cloud: 'elsewhere' } },
      'secrets.cloud names a cloud that is not configured',
    ],
  ])('refuses CreateVolumeGroupSnapshot with %s: INVALID_ARGUMENT', async (_what, req, message) => {
    const err = await codeOf(w.call('CreateVolumeGroupSnapshot', req));
    expect(err).toEqual({ code: 'INVALID_ARGUMENT', details: expect.stringContaining(message) });
    expect(err.details).not.toContain('elsewhere');
  });

  it("accepts the snapshotter's csi.storage.k8s.io/ parameters and treats an empty groupType as unset", () => {
    expect(parseGroupParameters({ groupType: 'g', 'csi.storage.k8s.io/volumegroupsnapshot/name': 'x' })).toBe('g');
    expect(parseGroupParameters({ groupType: '' })).toBeUndefined();
  });

  it('requires group_snapshot_id in Get and Delete; an unknown one is NOT_FOUND for Get and OK for Delete', async () => {
    expect((await codeOf(w.call('GetVolumeGroupSnapshot', {}))).code).toBe('INVALID_ARGUMENT');
    expect((await codeOf(w.call('DeleteVolumeGroupSnapshot', {}))).code).toBe('INVALID_ARGUMENT');
    for (const id of ['00000000-0000-0000-0000-000000000000', 'not-an-id', 'a:b', 'x/../y']) {
      expect((await codeOf(w.call('GetVolumeGroupSnapshot', { group_snapshot_id: id }))).code).toBe('NOT_FOUND');
      await expect(w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: id })).resolves.toEqual({});
    }
  });

  it('answers NOT_FOUND for an unknown source volume and INVALID_ARGUMENT without a group type (no default)', async () => {
    const v = await w.volume('nf');
    const unknown = await codeOf(
      w.call('CreateVolumeGroupSnapshot', {
        name: 'nf',
        source_volume_ids: [v, '00000000-0000-0000-0000-000000000000'],
        parameters: params,
      }),
    );
    expect(unknown).toEqual({
      code: 'NOT_FOUND',
      details: expect.stringContaining('source_volume_ids: volume 00000000-0000-0000-0000-000000000000 does not exist'),
    });
    const noType = await codeOf(w.call('CreateVolumeGroupSnapshot', { name: 'nf', source_volume_ids: [v] }));
    expect(noType).toEqual({
      code: 'INVALID_ARGUMENT',
      details: 'parameters.groupType is required: the cloud has no default group type',
    });
    const badType = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'nf', source_volume_ids: [v], parameters: { groupType: 'nope' } }),
    );
    expect(badType.code).toBe('INVALID_ARGUMENT');
    expect(await w.groups.listGroupsByName('nf')).toEqual([]);
  });

  describe('a group snapshot of two volumes', () => {
    let va: string;
    let vb: string;

    let gs: any;
    beforeAll(async () => {
      va = await w.volume('a');
      vb = await w.volume('b');
      gs = (await w.call('CreateVolumeGroupSnapshot', { name: 'two', source_volume_ids: [va, vb], parameters: params }))
        .group_snapshot;
    });

    it('is ready, has one member per volume naming the group snapshot, and leaves the volumes ungrouped', async () => {
      expect(gs.ready_to_use).toBe(true);
      expect(gs.group_snapshot_id).toMatch(/^[0-9a-f-]{36}:[0-9a-f-]{36}$/);
      expect(gs.snapshots.map((s: { source_volume_id: string }) => s.source_volume_id)).toEqual([va, vb].sort());
      for (const s of gs.snapshots)
        expect(s).toMatchObject({
          group_snapshot_id: gs.group_snapshot_id,
          ready_to_use: true,
          size_bytes: String(1024 ** 3),
        });
      for (const v of [va, vb]) expect((await w.groups.getVolume(v)).group_id).toBeNull();
      const [, groupId] = gs.group_snapshot_id.split(':');
      expect(await w.groups.getGroup(groupId)).toMatchObject({ status: 'available', volumes: [] });
    });

    it('is answered again for the same name and volumes in any order; ALREADY_EXISTS for other volumes', async () => {
      const again = (
        await w.call('CreateVolumeGroupSnapshot', { name: 'two', source_volume_ids: [vb, va], parameters: params })
      ).group_snapshot;
      expect(again).toEqual(gs);
      expect(
        (
          await codeOf(
            w.call('CreateVolumeGroupSnapshot', { name: 'two', source_volume_ids: [va], parameters: params }),
          )
        ).code,
      ).toBe('ALREADY_EXISTS');
      expect(await w.groups.listGroupsByName('two')).toHaveLength(1);
    });

    it('is got with or without snapshot_ids; a wrong list is INVALID_ARGUMENT', async () => {
      const ids = gs.snapshots.map((s: { snapshot_id: string }) => s.snapshot_id);
      expect(
        (
          await w.call('GetVolumeGroupSnapshot', {
            group_snapshot_id: gs.group_snapshot_id,
            snapshot_ids: [...ids].reverse(),
          })
        ).group_snapshot,
      ).toEqual(gs);
      expect(
        (await w.call('GetVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id })).group_snapshot,
      ).toEqual(gs);
      const wrong = await codeOf(
        w.call('GetVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id, snapshot_ids: [ids[0], 'other'] }),
      );
      expect(wrong.code).toBe('INVALID_ARGUMENT');
      // Another group's id with this group snapshot's is not this group snapshot.
      const [gsId] = gs.group_snapshot_id.split(':');
      expect(
        (
          await codeOf(
            w.call('GetVolumeGroupSnapshot', { group_snapshot_id: `${gsId}:00000000-0000-0000-0000-000000000000` }),
          )
        ).code,
      ).toBe('NOT_FOUND');
    });

    it('has members that restore volumes and that DeleteSnapshot refuses with FAILED_PRECONDITION', async () => {
      const member = gs.snapshots[0];
      const restored = await w.h.call<{ volume: { volume_id: string } }>(
        'Controller',
        'CreateVolume',
        createReq('restored', { volume_content_source: { snapshot: { snapshot_id: member.snapshot_id } } }),
      );
      expect(w.sim.getVolume(restored.volume.volume_id)?.status).toBe('available');
      const err = await codeOf(w.h.call('Controller', 'DeleteSnapshot', { snapshot_id: member.snapshot_id }));
      expect(err.code).toBe('FAILED_PRECONDITION');
      expect(err.details).toContain('must not be part of a group');
      await w.h.call('Controller', 'DeleteVolume', { volume_id: restored.volume.volume_id });
    });

    it('is deleted with its members and its group; Delete again is OK, Get NOT_FOUND, and the volumes can go', async () => {
      const ids = gs.snapshots.map((s: { snapshot_id: string }) => s.snapshot_id);
      expect(
        (
          await codeOf(
            w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id, snapshot_ids: [ids[0]] }),
          )
        ).code,
      ).toBe('INVALID_ARGUMENT');
      await w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id, snapshot_ids: ids });
      for (const id of ids) expect(w.sim.getSnapshot(id)).toBeUndefined();
      expect(await w.groups.listGroupsByName('two')).toEqual([]);
      await w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id, snapshot_ids: ids });
      expect((await codeOf(w.call('GetVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id }))).code).toBe(
        'NOT_FOUND',
      );
      for (const v of [va, vb]) await w.h.call('Controller', 'DeleteVolume', { volume_id: v });
      expect(w.sim.getVolume(va)).toBeUndefined();
    });
  });

  it('refuses a volume that is in a group not its own with FAILED_PRECONDITION, creating no group', async () => {
    const v = await w.volume('busy');
    const g = await w.groups.createGroup({ name: 'foreign', groupType: GROUP_TYPE, volumeTypes: ['__DEFAULT__'] });
    await until(async () => (await w.groups.getGroup(g.id)).status === 'available');
    await w.groups.updateGroupVolumes(g.id, { add: [v] });
    await until(async () => (await w.groups.getVolume(v)).group_id === g.id);
    const err = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'busy', source_volume_ids: [v], parameters: params }),
    );
    expect(err).toEqual({
      code: 'FAILED_PRECONDITION',
      details: `source_volume_ids: volume ${v} is already in Cinder group ${g.id}; a volume can be in one group only`,
    });
    expect(await w.groups.listGroupsByName('busy')).toEqual([]);
  });

  it('answers INTERNAL for a group snapshot Cinder could not cut, leaving no snapshot, group or grouped volume', async () => {
    const v = await w.volume('broken');
    w.sim.failNextGroupSnapshot();
    const err = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'broken', source_volume_ids: [v], parameters: params }),
    );
    expect(err).toEqual({
      code: 'INTERNAL',
      details: expect.stringMatching(/^Cinder could not create group snapshot \S+ \(status error\)$/),
    });
    expect(w.sim.listSnapshots().filter((s) => s.name === 'broken')).toEqual([]);
    expect(await w.groups.listGroupsByName('broken')).toEqual([]);
    expect((await w.groups.getVolume(v)).group_id).toBeNull();
    // The retry starts afresh and succeeds.
    expect(
      (await w.call('CreateVolumeGroupSnapshot', { name: 'broken', source_volume_ids: [v], parameters: params }))
        .group_snapshot.ready_to_use,
    ).toBe(true);
  });

  it("answers RESOURCE_EXHAUSTED when the project's groups quota is spent, and removes nothing of anyone else", async () => {
    const v = await w.volume('quota');
    const made: string[] = [];
    for (let i = (await w.groups.listGroupsByName('filler')).length; ; i++) {
      try {
        made.push(
          (await w.groups.createGroup({ name: 'filler', groupType: GROUP_TYPE, volumeTypes: ['__DEFAULT__'] })).id,
        );
      } catch {
        break;
      }
    }
    const err = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'quota', source_volume_ids: [v], parameters: params }),
    );
    expect(err).toEqual({
      code: 'RESOURCE_EXHAUSTED',
      details: expect.stringContaining('Maximum number of groups allowed (10) exceeded'),
    });
    for (const id of made) {
      await until(async () => (await w.groups.getGroup(id)).status === 'available');
      await w.groups.deleteGroup(id);
    }
    await until(async () => (await w.groups.listGroupsByName('filler')).length === 0);
  });

  it('carries on with the group an interrupted Create left holding the volumes, and with a group snapshot left uncollected', async () => {
    const v = await w.volume('resume');
    // As a Create cut off after the group was filled: the group exists, named like the group snapshot, holding v.
    const g = await w.groups.createGroup({ name: 'resume', groupType: GROUP_TYPE, volumeTypes: ['__DEFAULT__'] });
    await until(async () => (await w.groups.getGroup(g.id)).status === 'available');
    await w.groups.updateGroupVolumes(g.id, { add: [v] });
    await until(async () => (await w.groups.getVolume(v)).group_id === g.id);
    const gs = (
      await w.call('CreateVolumeGroupSnapshot', { name: 'resume', source_volume_ids: [v], parameters: params })
    ).group_snapshot;
    expect(gs.group_snapshot_id.split(':')[1]).toBe(g.id);
    expect((await w.groups.getVolume(v)).group_id).toBeNull();

    // As a Create cut off after the group snapshot was made: the volume is still in the group.
    const v2 = await w.volume('resume2');
    const g2 = await w.groups.createGroup({ name: 'resume2', groupType: GROUP_TYPE, volumeTypes: ['__DEFAULT__'] });
    await until(async () => (await w.groups.getGroup(g2.id)).status === 'available');
    await w.groups.updateGroupVolumes(g2.id, { add: [v2] });
    await until(async () => (await w.groups.getVolume(v2)).group_id === g2.id);
    const made = await w.groups.createGroupSnapshot({ groupId: g2.id, name: 'resume2' });
    const gs2 = (
      await w.call('CreateVolumeGroupSnapshot', { name: 'resume2', source_volume_ids: [v2], parameters: params })
    ).group_snapshot;
    expect(gs2.group_snapshot_id).toBe(`${made.id}:${g2.id}`);
    expect((await w.groups.getVolume(v2)).group_id).toBeNull();
  });

  it('deletes the group a Delete interrupted after the group snapshot left behind', async () => {
    const v = await w.volume('half');
    const gs = (await w.call('CreateVolumeGroupSnapshot', { name: 'half', source_volume_ids: [v], parameters: params }))
      .group_snapshot;
    const [gsId, groupId] = gs.group_snapshot_id.split(':');
    await w.groups.deleteGroupSnapshot(gsId);
    await until(async () => w.sim.listSnapshots().every((s) => s.name !== 'half'));
    await until(
      async () =>
        await w.groups.getGroupSnapshot(gsId).then(
          () => false,
          () => true,
        ),
    );
    await w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: gs.group_snapshot_id });
    await expect(w.groups.getGroup(groupId)).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('gets and deletes a pre-provisioned group snapshot by its bare Cinder id, leaving its group to its owner', async () => {
    const v = await w.volume('static');
    const g = await w.groups.createGroup({ name: 'static', groupType: GROUP_TYPE, volumeTypes: ['__DEFAULT__'] });
    await until(async () => (await w.groups.getGroup(g.id)).status === 'available');
    await w.groups.updateGroupVolumes(g.id, { add: [v] });
    await until(async () => (await w.groups.getVolume(v)).group_id === g.id);
    const made = await w.groups.createGroupSnapshot({ groupId: g.id, name: 'static' });
    await until(async () => (await w.groups.getGroupSnapshot(made.id)).status === 'available');
    const got = (await w.call('GetVolumeGroupSnapshot', { group_snapshot_id: made.id })).group_snapshot;
    expect(got).toMatchObject({
      group_snapshot_id: made.id,
      ready_to_use: true,
      snapshots: [{ source_volume_id: v, group_snapshot_id: made.id }],
    });
    await w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: made.id });
    expect(await w.groups.getGroup(g.id)).toMatchObject({ volumes: [v] });

    // Without a name, Cinder's members are found through the snapshot_ids the CO passes.
    const unnamed = await w.groups.createGroupSnapshot({ groupId: g.id, name: '' });
    await until(async () => (await w.groups.getGroupSnapshot(unnamed.id)).status === 'available');
    const member = w.sim.listSnapshots().find((x) => x.volume_id === v && x.name === '')!;
    const seen = (await w.call('GetVolumeGroupSnapshot', { group_snapshot_id: unnamed.id, snapshot_ids: [member.id] }))
      .group_snapshot;
    expect(seen).toMatchObject({
      group_snapshot_id: unnamed.id,
      ready_to_use: true,
      snapshots: [{ snapshot_id: member.id, source_volume_id: v }],
    });
    expect(
      (
        await codeOf(
          w.call('GetVolumeGroupSnapshot', {
            group_snapshot_id: unnamed.id,
            snapshot_ids: ['00000000-0000-0000-0000-000000000000'],
          }),
        )
      ).code,
    ).toBe('INVALID_ARGUMENT');
    await w.call('DeleteVolumeGroupSnapshot', { group_snapshot_id: unnamed.id, snapshot_ids: [member.id] });
    expect(w.sim.getSnapshot(member.id)).toBeUndefined();
  });
});

describe('GroupController in the plugin process', () => {
  it('is served with the Controller, and advertised only then', async () => {
    const sim = await startSimulator({ devicePlane: false });
    const dir = mkdtempSync(join(tmpdir(), 'grp-'));
    const conf = join(dir, 'cloud.conf');
    writeFileSync(conf, sim.cloudConf(), { mode: 0o600 });
    const caps = async (socket: string) => {
      const id = makeClient('Identity', `unix://${socket}`);
      try {
        return JSON.stringify(await callUnary(id, 'GetPluginCapabilities', {}));
      } finally {
        id.close();
      }
    };
    try {
      const plugin = await startPlugin(
        parseFlags([`--endpoint=unix://${dir}/c.sock`, `--cloud-config=${conf}`, '--provide-node-service=false']),
        silentLogger,
      );
      try {
        expect(await caps(`${dir}/c.sock`)).toContain('GROUP_CONTROLLER_SERVICE');
        const g = makeClient('GroupController', `unix://${dir}/c.sock`);
        expect(await callUnary(g, 'GroupControllerGetCapabilities', {})).toEqual({
          capabilities: [{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' }, type: 'rpc' }],
        });
        g.close();
      } finally {
        await plugin.stop(0);
      }
      const node = await startPlugin(
        parseFlags([
          `--endpoint=unix://${dir}/n.sock`,
          '--provide-controller-service=false',
          `--node-id=${sim.localServerId}`,
          `--kubelet-dir=${dir}`,
          `--fuse-state-dir=${dir}/fuse`,
          `--fuse-supervisor-socket=${dir}/sup.sock`,
        ]),
        silentLogger,
      );
      try {
        expect(await caps(`${dir}/n.sock`)).not.toContain('GROUP_CONTROLLER_SERVICE');
      } finally {
        await node.stop(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sim.stop();
    }
  });
});

describe('GroupController (simulator, slow Cinder)', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ delays: { snapshotCreate: 500, snapshotDelete: 20 } });
  });
  afterAll(() => w.close());

  it('answers DEADLINE_EXCEEDED within the deadline, and the retry finishes with the same group', async () => {
    const v = await w.volume('slow');
    const started = Date.now();
    const err = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'slow', source_volume_ids: [v], parameters: params }, 700),
    );
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeLessThan(1500);
    const gs = (await w.call('CreateVolumeGroupSnapshot', { name: 'slow', source_volume_ids: [v], parameters: params }))
      .group_snapshot;
    expect(gs.ready_to_use).toBe(true);
    expect(await w.groups.listGroupsByName('slow')).toHaveLength(1);
    expect((await w.groups.getVolume(v)).group_id).toBeNull();
  });

  it('lets two group snapshots of one volume take turns: the second is ABORTED while the first runs', async () => {
    const v = await w.volume('shared');
    expect(lockKeysFor('CreateVolumeGroupSnapshot', { name: 'x', source_volume_ids: [v] })).toEqual([
      'group snapshot name x',
      `group snapshot of volume ${v}`,
    ]);
    const first = w.call('CreateVolumeGroupSnapshot', { name: 'shared-1', source_volume_ids: [v], parameters: params });
    await new Promise((r) => setTimeout(r, 200));
    const second = await codeOf(
      w.call('CreateVolumeGroupSnapshot', { name: 'shared-2', source_volume_ids: [v], parameters: params }),
    );
    expect(second.code).toBe('ABORTED');
    expect((await first).group_snapshot.ready_to_use).toBe(true);
    const again = (
      await w.call('CreateVolumeGroupSnapshot', { name: 'shared-2', source_volume_ids: [v], parameters: params })
    ).group_snapshot;
    expect(again.snapshots).toHaveLength(1);
  });
});

async function until(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
