/**
 * The CSI Controller service over a real gRPC socket, backed by the real Cinder 21 and Nova 26 of
 * openstack-loopback (issue #6): CreateVolume (idempotent, type, AZ, from snapshot, clone), DeleteVolume,
 * Publish/Unpublish on fake-node-0 (also of a multiattach volume, whose type the admin user makes), Expand
 * offline and online, snapshots, ListVolumes paging, ControllerGetVolume and two clouds from one cloud.conf.
 * Everything made is deleted in afterAll.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCloudConfigFiles } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { createClouds } from '../../src/openstack/clients';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  fakeNodeId,
  itName,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
  recordVolume,
} from '../helpers/openstack-loopback';
import { BLOCK_RWX, codeOf, GIB, MOUNT_RWO } from '../helpers/sim-controller';

const SUITE = 'ctl';
const ZERO = '00000000-0000-0000-0000-000000000000';
/** Per-RPC deadline: the real services finish each wait within a few seconds. */
const RPC_DEADLINE_MS = 30_000;
/** A volume type of the loopback's one backend with multiattach on; made by the admin user when missing, deleted at the end. */
const MULTIATTACH_TYPE = 'osl-it-ctl-multiattach';

/** A cloud.conf with the loopback's `[Global]` twice: as `[Global]` and as `[Global "second"]`. */
function twoCloudConf(dir: string): string {
  const global = readFileSync(LOOPBACK_CLOUD_CONF, 'utf8')
    .split(/^\[BlockStorage\]/m)[0]
    .trim();
  const file = join(dir, 'cloud.conf');
  writeFileSync(file, `${global}\n\n${global.replace(/^\[Global\]/m, '[Global "second"]')}\n`, { mode: 0o600 });
  return file;
}

describeOpenStack('CSI Controller on openstack-loopback', () => {
  let dir: string;
  let h: CsiHarness;
  let c: CountingClients;
  let cleanup: Cleanup;
  let node: string;

  const call = <T = any>(rpc: string, req: object = {}) => h.call<T>('Controller', rpc, req, RPC_DEADLINE_MS);
  const createReq = (name: string, over: Record<string, unknown> = {}) => ({
    name,
    capacity_range: { required_bytes: String(GIB) },
    volume_capabilities: [MOUNT_RWO],
    ...over,
  });
  /** CreateVolume, registering the volume for cleanup. */

  const create = async (name: string, over: Record<string, unknown> = {}): Promise<any> => {
    const r = await call('CreateVolume', createReq(name, over));
    cleanup.volume(r.volume.volume_id);
    return r;
  };
  const publish = (volumeId: string, nodeId: string) =>
    call('ControllerPublishVolume', { volume_id: volumeId, node_id: nodeId, volume_capability: MOUNT_RWO });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'osl-ctl-'));
    const conf = loadCloudConfigFiles([twoCloudConf(dir)], { requireCredentials: true });
    const clouds = createClouds(conf.clouds, ['', 'second']);
    const blockStorage: BlockStorageOptions = {
      rescanOnResize: false,
      ignoreVolumeAz: false,
      ignoreVolumeMicroversion: false,
    };
    h = await startHarness([
      {
        definition: loadCsiProto().ControllerService,
        handlers: controllerHandlers({
          clouds,
          blockStorage,
          cluster: 'osl-it',
          withTopology: true,
          pvcAnnotations: false,
          log: logSink('info').log,
        }),
      },
    ]);
    c = loopbackClients(loopbackAuth());
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    node = await fakeNodeId(c);
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
    await cleanup?.run();
    await deleteMultiattachType();
  });

  /** Cinder's volume-type API with an admin token scoped to project demo (types are admin-only). */
  let admin: CountingClients | undefined;
  async function typesApi(
    method: string,
    path = '',
    body?: object,
  ): Promise<{ status: number; json: Record<string, any> }> {
    admin ??= loopbackClients({ ...loopbackAuth(), username: 'admin', userId: undefined });
    const base = await admin.keystone.endpoint(['volumev3']);
    const r = await fetch(`${base}/types${path}`, {
      method,
      headers: {
        'X-Auth-Token': await admin.keystone.token(),
        Accept: 'application/json',
        'Content-Type': 'application/json',
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : {} };
  }

  async function ensureMultiattachType(): Promise<void> {
    const { json } = await typesApi('GET');
    if ((json.volume_types as Array<{ name: string }>).some((t) => t.name === MULTIATTACH_TYPE)) return;
    const r = await typesApi('POST', '', {
      volume_type: { name: MULTIATTACH_TYPE, extra_specs: { multiattach: '<is> True' } },
    });
    expect(r.status).toBe(200);
  }

  async function deleteMultiattachType(): Promise<void> {
    const { json } = await typesApi('GET');
    const t = (json.volume_types as Array<{ id: string; name: string }>).find((x) => x.name === MULTIATTACH_TYPE);
    if (t) expect((await typesApi('DELETE', `/${t.id}`)).status).toBe(202);
  }

  describe('CreateVolume and DeleteVolume', () => {
    let volumeId: string;
    let snapshotId: string;

    it('creates a volume of type __DEFAULT__ in AZ nova and returns the same one when called twice', async () => {
      const name = itName(SUITE, 'vol');
      const params = {
        parameters: { type: '__DEFAULT__', availability: 'nova', 'csi.storage.k8s.io/pvc/name': 'data' },
      };
      const a = await create(name, params);
      expect(a.volume).toMatchObject({
        capacity_bytes: String(GIB),
        accessible_topology: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }],
      });
      const b = await create(name, params);
      expect(b.volume.volume_id).toBe(a.volume.volume_id);
      const v = await c.cinder.getVolume(a.volume.volume_id);
      expect(v).toMatchObject({ name, status: 'available', volume_type: '__DEFAULT__', availability_zone: 'nova' });
      expect(v.metadata).toMatchObject({
        'cinder.csi.openstack.org/cluster': 'osl-it',
        'csi.storage.k8s.io/pvc/name': 'data',
      });
      expect((await c.cinder.listVolumesByName(name)).length).toBe(1);
      volumeId = a.volume.volume_id;
    });

    it('returns ALREADY_EXISTS for the same name with another size', async () => {
      const v = await c.cinder.getVolume(volumeId);
      const e = await codeOf(
        call('CreateVolume', createReq(v.name!, { capacity_range: { required_bytes: String(2 * GIB) } })),
      );
      expect(e.code).toBe('ALREADY_EXISTS');
    });

    it('creates, lists and finds a snapshot, idempotently by name', async () => {
      const name = itName(SUITE, 'snap');
      const a = await call('CreateSnapshot', { source_volume_id: volumeId, name });
      cleanup.snapshot(a.snapshot.snapshot_id);
      expect(a.snapshot).toMatchObject({ source_volume_id: volumeId, ready_to_use: true, size_bytes: String(GIB) });
      const b = await call('CreateSnapshot', { source_volume_id: volumeId, name });
      expect(b.snapshot.snapshot_id).toBe(a.snapshot.snapshot_id);
      const byVolume = await call('ListSnapshots', { source_volume_id: volumeId });
      expect(byVolume.entries.map((e: { snapshot: { snapshot_id: string } }) => e.snapshot.snapshot_id)).toEqual([
        a.snapshot.snapshot_id,
      ]);
      const byId = await call('ListSnapshots', { snapshot_id: a.snapshot.snapshot_id });
      expect(byId.entries).toHaveLength(1);
      snapshotId = a.snapshot.snapshot_id;
    });

    it('creates a volume from the snapshot and a clone of the volume', async () => {
      const fromSnap = await create(itName(SUITE, 'restore'), {
        volume_content_source: { snapshot: { snapshot_id: snapshotId } },
      });
      expect(fromSnap.volume.content_source.snapshot.snapshot_id).toBe(snapshotId);
      expect((await c.cinder.getVolume(fromSnap.volume.volume_id)).snapshot_id).toBe(snapshotId);
      const clone = await create(itName(SUITE, 'clone'), {
        volume_content_source: { volume: { volume_id: volumeId } },
      });
      expect(clone.volume.content_source.volume.volume_id).toBe(volumeId);
      expect((await c.cinder.getVolume(clone.volume.volume_id)).source_volid).toBe(volumeId);
    });

    it('pages ListVolumes with max_entries 2 through more than two pages, listing each volume once', async () => {
      const ids: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const r = await call('ListVolumes', { max_entries: 2, starting_token: token });
        expect(r.entries.length).toBeLessThanOrEqual(2);
        ids.push(...r.entries.map((e: { volume: { volume_id: string } }) => e.volume.volume_id));
        token = r.next_token;
        pages++;
      } while (token && pages < 100);
      expect(pages).toBeGreaterThan(2);
      // Both clouds are the same project, so every volume shows up once per cloud.
      const counts = new Map<string, number>();
      for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
      expect([...counts.values()].every((n) => n === 2)).toBe(true);
      expect(ids).toContain(volumeId);
    });

    it('answers ListVolumes with ABORTED for a token whose Cinder marker is unknown', async () => {
      expect((await codeOf(call('ListVolumes', { max_entries: 2, starting_token: `${ZERO}:` }))).code).toBe('ABORTED');
      expect((await codeOf(call('ListSnapshots', { max_entries: 2, starting_token: ZERO }))).code).toBe('ABORTED');
    });

    it('deletes the snapshot and answers a second DeleteSnapshot with success', async () => {
      await call('DeleteSnapshot', { snapshot_id: snapshotId });
      await expect(c.cinder.getSnapshot(snapshotId)).rejects.toMatchObject({ kind: 'not-found' });
      await call('DeleteSnapshot', { snapshot_id: snapshotId });
    });
  });

  describe('publish, expand and delete', () => {
    let volumeId: string;

    beforeAll(async () => {
      volumeId = (await create(itName(SUITE, 'pub'))).volume.volume_id;
    });

    it('publishes on fake-node-0 through Cinder’s real attach sequence and returns the device', async () => {
      const watching = recordVolume(c.cinder, volumeId, (v) => v.status === 'in-use', { initial: 'available' });
      const r = await publish(volumeId, node);
      expect(r.publish_context.DevicePath).toMatch(/^\/dev\/sd[b-z]$/);
      const { statuses } = await watching;
      expect(statuses[statuses.length - 1]).toBe('in-use');
      expect(statuses.every((s) => ['available', 'reserved', 'attaching', 'in-use'].includes(s))).toBe(true);
      // Called twice: already attached here, so nothing new happens.
      expect((await publish(volumeId, node)).publish_context.DevicePath).toBe(r.publish_context.DevicePath);
    });

    it('reports the published node and a normal condition in ControllerGetVolume', async () => {
      const g = await call('ControllerGetVolume', { volume_id: volumeId });
      expect(g.status).toMatchObject({ published_node_ids: [node], volume_condition: { abnormal: false } });
    });

    it('answers NOT_FOUND for an unknown node, naming node_id', async () => {
      const e = await codeOf(publish(volumeId, ZERO));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.details).toContain('node_id');
    });

    it('refuses DeleteVolume while attached with FAILED_PRECONDITION', async () => {
      expect((await codeOf(call('DeleteVolume', { volume_id: volumeId }))).code).toBe('FAILED_PRECONDITION');
    });

    it('expands the in-use volume online', async () => {
      const r = await call('ControllerExpandVolume', {
        volume_id: volumeId,
        capacity_range: { required_bytes: String(2 * GIB) },
        volume_capability: MOUNT_RWO,
      });
      expect(r).toEqual({ capacity_bytes: String(2 * GIB), node_expansion_required: true });
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ size: 2, status: 'in-use' });
    });

    it('unpublishes through detaching to available, and succeeds when called twice', async () => {
      const watching = recordVolume(c.cinder, volumeId, (v) => v.status === 'available', { initial: 'in-use' });
      await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
      const { statuses } = await watching;
      expect(statuses.join(' ')).toMatch(/^in-use( detaching)? available$/);
      await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
      expect((await call('ControllerGetVolume', { volume_id: volumeId })).status.published_node_ids ?? []).toEqual([]);
    });

    it('expands the available volume', async () => {
      const r = await call('ControllerExpandVolume', {
        volume_id: volumeId,
        capacity_range: { required_bytes: String(3 * GIB) },
        volume_capability: MOUNT_RWO,
      });
      expect(r.capacity_bytes).toBe(String(3 * GIB));
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ size: 3, status: 'available' });
    });

    it('deletes the volume, waits until it is gone, and succeeds when called twice', async () => {
      await call('DeleteVolume', { volume_id: volumeId });
      await expect(c.cinder.getVolume(volumeId)).rejects.toMatchObject({ kind: 'not-found' });
      await call('DeleteVolume', { volume_id: volumeId });
    });
  });

  describe('a multiattach volume', () => {
    it('is refused by Nova below microversion 2.60 without effect, so the attach sent first falls back and attaches with 2.60', async () => {
      await ensureMultiattachType();
      const volumeId = (
        await create(itName(SUITE, 'multi'), {
          volume_capabilities: [BLOCK_RWX],
          parameters: { type: MULTIATTACH_TYPE },
        })
      ).volume.volume_id;
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'available', multiattach: true });
      // The fact ControllerPublish's first attach relies on: without 2.60 Nova refuses even a first server, and nothing changes.
      await expect(c.nova.attachVolume(node, volumeId)).rejects.toMatchObject({
        status: 400,
        serviceMessage: 'Multiattach volumes are only supported starting with compute API version 2.60.',
      });
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'available', attachments: [] });
      expect((await c.nova.listVolumeAttachments(node)).filter((a) => a.volumeId === volumeId)).toEqual([]);

      await call('ControllerPublishVolume', { volume_id: volumeId, node_id: node, volume_capability: BLOCK_RWX });
      const v = await c.cinder.getVolume(volumeId);
      expect(v.status).toBe('in-use');
      expect(v.attachments.map((a) => a.server_id)).toEqual([node]);
      expect((await c.nova.listVolumeAttachments(node)).filter((a) => a.volumeId === volumeId)).toHaveLength(1);

      await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'available', attachments: [] });
      await call('DeleteVolume', { volume_id: volumeId });
    });
  });

  describe('two clouds from one cloud.conf', () => {
    it('creates and deletes a volume in the cloud named by the cloud secret', async () => {
      const secrets = { cloud: 'second' };
      const r = await call('CreateVolume', { ...createReq(itName(SUITE, 'second')), secrets });
      cleanup.volume(r.volume.volume_id);
      expect((await c.cinder.getVolume(r.volume.volume_id)).status).toBe('available');
      await call('DeleteVolume', { volume_id: r.volume.volume_id, secrets });
      await expect(c.cinder.getVolume(r.volume.volume_id)).rejects.toMatchObject({ kind: 'not-found' });
    });

    it('answers INVALID_ARGUMENT naming secrets.cloud for a cloud not in cloud.conf', async () => {
      const e = await codeOf(
        call('CreateVolume', { ...createReq(itName(SUITE, 'nocloud')), secrets: { cloud: 'third' } }),
      );
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.details).toContain('secrets.cloud');
    });
  });
});
