/**
 * Volume retype on the real Cinder 21 of openstack-loopback (issue #18): the raw os-retype facts the
 * simulator copies (src/simulator/cinder-retype.ts, test/simulator/cinder-retype.test.ts), then
 * ControllerModifyVolume and CreateVolume's mutable_parameters over gRPC, of an available volume and of one
 * in use on fake-node-0. The admin user makes the volume types on the loopback's one backend (`fake`) and one
 * on a backend that does not exist; everything made is deleted in afterAll.
 */
import { randomBytes } from 'node:crypto';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  fakeNodeId,
  itName,
  loopbackAuth,
  loopbackClients,
  recordVolume,
} from '../helpers/openstack-loopback';
import { codeOf, GIB, MOUNT_RWO } from '../helpers/sim-controller';

const SUITE = 'rt';
const RPC_DEADLINE_MS = 60_000;
const RUN = randomBytes(3).toString('hex');
/** Two types on the loopback's backend, and one whose backend no Cinder host has. */
const GOLD = `osl-it-rt-gold-${RUN}`;
const SILVER = `osl-it-rt-silver-${RUN}`;
const NOWHERE = `osl-it-rt-nowhere-${RUN}`;
const TYPES: Array<[string, string]> = [
  [GOLD, 'fake'],
  [SILVER, 'fake'],
  [NOWHERE, 'osl-it-rt-no-backend'],
];
const REFUSED =
  'Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, ' +
  'requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.';

type Json = Record<string, any>;

describeOpenStack('volume retype on openstack-loopback', () => {
  let h: CsiHarness;
  let c: CountingClients;
  let driver: CountingClients;
  let admin: CountingClients;
  let cleanup: Cleanup;
  let node: string;

  const call = <T = any>(rpc: string, req: object = {}) => h.call<T>('Controller', rpc, req, RPC_DEADLINE_MS);

  /** A raw Cinder request with the token of `who` (member `c` unless told). */
  async function cinder(
    method: string,
    path: string,
    body?: object,
    who: CountingClients = c,
  ): Promise<{ status: number; json: Json }> {
    const base = await who.keystone.endpoint(['volumev3']);
    const r = await fetch(`${base}${path}`, {
      method,
      headers: {
        'X-Auth-Token': await who.keystone.token(),
        Accept: 'application/json',
        'Content-Type': 'application/json',
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : {} };
  }
  const retype = (id: string, args: object) => cinder('POST', `/volumes/${id}/action`, { 'os-retype': args });

  async function deleteTypes(): Promise<void> {
    const { json } = await cinder('GET', '/types', undefined, admin);
    for (const t of json.volume_types as Array<{ id: string; name: string }>) {
      if (t.name.startsWith(`osl-it-${SUITE}-`))
        expect((await cinder('DELETE', `/types/${t.id}`, undefined, admin)).status).toBe(202);
    }
  }

  /** A volume of `type` made through the API, registered for cleanup, once available. */
  async function rawVolume(type: string): Promise<string> {
    const v = await c.cinder.createVolume({ name: itName(SUITE, 'raw'), size: 1, volumeType: type });
    cleanup.volume(v.id);
    await recordVolume(c.cinder, v.id, (x) => x.status === 'available');
    return v.id;
  }
  /** The statuses a retype passes through, from right after its 202 until the volume is at rest again. */
  const untilRest = (id: string, initial: string) =>
    recordVolume(c.cinder, id, (x) => x.status !== 'retyping', { initial });

  beforeAll(async () => {
    c = loopbackClients(loopbackAuth());
    driver = loopbackClients(loopbackAuth());
    admin = loopbackClients({ ...loopbackAuth(), username: 'admin', userId: undefined });
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    await deleteTypes();
    for (const [name, backend] of TYPES) {
      const r = await cinder(
        'POST',
        '/types',
        { volume_type: { name, extra_specs: { volume_backend_name: backend } } },
        admin,
      );
      expect(r.status).toBe(200);
    }
    const blockStorage: BlockStorageOptions = {
      rescanOnResize: false,
      ignoreVolumeAz: false,
      ignoreVolumeMicroversion: false,
    };
    h = await startHarness([
      {
        definition: loadCsiProto().ControllerService,
        handlers: controllerHandlers({
          clouds: new Map([['', driver]]),
          blockStorage,
          cluster: 'osl-it',
          withTopology: false,
          pvcAnnotations: false,
          log: logSink('info').log,
        }),
      },
    ]);
    node = await fakeNodeId(c);
  });
  afterAll(async () => {
    await h?.close();
    await cleanup?.run();
    if (admin) await deleteTypes();
  });

  describe('Cinder os-retype (what the simulator copies)', () => {
    it('answers 202 and passes through retyping back to available with the new type', async () => {
      const id = await rawVolume(GOLD);
      expect((await retype(id, { new_type: SILVER })).status).toBe(202);
      const { statuses, volume } = await untilRest(id, 'available');
      expect(statuses.join(' ')).toMatch(/^available (retyping )?available$/);
      expect(volume.volume_type).toBe(SILVER);
    });

    it('refuses a same-type retype, and a second retype while one runs, with one 400 text', async () => {
      const id = await rawVolume(GOLD);
      const same = await retype(id, { new_type: GOLD });
      expect(same).toEqual({ status: 400, json: { badRequest: { code: 400, message: REFUSED } } });
      // Cinder moves the volume to retyping before it answers: of two at once, one is refused.
      const both = await Promise.all([retype(id, { new_type: SILVER }), retype(id, { new_type: SILVER })]);
      expect(both.map((r) => r.status).sort()).toEqual([202, 400]);
      expect(both.find((r) => r.status === 400)!.json.badRequest.message).toBe(REFUSED);
      await untilRest(id, 'retyping');
    });

    it('answers 404 for an unknown type and 400 for a missing new_type or an unknown migration_policy', async () => {
      const id = await rawVolume(GOLD);
      const unknown = `osl-it-rt-unknown-${RUN}`;
      expect(await retype(id, { new_type: unknown })).toEqual({
        status: 404,
        json: { itemNotFound: { code: 404, message: `Volume type with name ${unknown} could not be found.` } },
      });
      expect((await retype(id, {})).json.badRequest.message).toBe(
        "Invalid input for field/attribute os-retype. Value: {}. 'new_type' is a required property",
      );
      expect((await retype(id, { new_type: SILVER, migration_policy: 'sometimes' })).json.badRequest.message).toBe(
        "Invalid input for field/attribute migration_policy. Value: sometimes. 'sometimes' is not one of ['on-demand', 'never']",
      );
      expect((await c.cinder.getVolume(id)).status).toBe('available');
    });

    it('accepts a retype to a type no backend takes and puts the volume back with its old type, with any policy', async () => {
      const id = await rawVolume(GOLD);
      for (const policy of ['never', 'on-demand']) {
        expect((await retype(id, { new_type: NOWHERE, migration_policy: policy })).status).toBe(202);
        const { volume } = await untilRest(id, 'retyping');
        expect(volume).toMatchObject({ status: 'available', volume_type: GOLD });
      }
    });

    it('shows a member no volume_backend_name and refuses a member POST /types with 403', async () => {
      const types = (await cinder('GET', '/types')).json.volume_types as Array<{ name: string; extra_specs: object }>;
      expect(types.find((t) => t.name === GOLD)!.extra_specs).toEqual({});
      const r = await cinder('POST', '/types', { volume_type: { name: `osl-it-rt-member-${RUN}` } });
      expect(r).toEqual({
        status: 403,
        json: {
          forbidden: { code: 403, message: "Policy doesn't allow volume_extension:type_create to be performed." },
        },
      });
    });
  });

  describe('ControllerModifyVolume', () => {
    const modify = (id: string, params: Record<string, string>) =>
      call('ControllerModifyVolume', { volume_id: id, mutable_parameters: params });
    const retypeCalls = () => driver.count('volume.retype');
    let volumeId: string;

    it('creates a volume whose mutable type wins over the StorageClass type', async () => {
      const r = await call('CreateVolume', {
        name: itName(SUITE, 'vac'),
        capacity_range: { required_bytes: String(GIB) },
        volume_capabilities: [MOUNT_RWO],
        parameters: { type: GOLD },
        mutable_parameters: { type: SILVER },
      });
      volumeId = cleanup.volume(r.volume.volume_id);
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'available', volume_type: SILVER });
    });

    it('retypes the available volume and answers a repeat without another retype', async () => {
      const before = retypeCalls();
      await modify(volumeId, { type: GOLD });
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'available', volume_type: GOLD });
      await modify(volumeId, { type: GOLD });
      expect(retypeCalls() - before).toBe(1);
    });

    it('retypes it while in use on fake-node-0, where it stays attached', async () => {
      await call('ControllerPublishVolume', { volume_id: volumeId, node_id: node, volume_capability: MOUNT_RWO });
      await modify(volumeId, { type: SILVER });
      const v = await c.cinder.getVolume(volumeId);
      expect(v).toMatchObject({ status: 'in-use', volume_type: SILVER });
      expect(v.attachments.map((a) => a.server_id)).toEqual([node]);
      expect((await c.nova.listVolumeAttachments(node)).filter((a) => a.volumeId === volumeId)).toHaveLength(1);
    });

    it('answers FAILED_PRECONDITION when Cinder cannot place the new type, and leaves the in-use volume as it was', async () => {
      const e = await codeOf(modify(volumeId, { type: NOWHERE, migrationPolicy: 'on-demand' }));
      expect(e.code).toBe('FAILED_PRECONDITION');
      expect(e.details).toContain(`no backend accepts type "${NOWHERE}"`);
      expect(await c.cinder.getVolume(volumeId)).toMatchObject({ status: 'in-use', volume_type: SILVER });
    });

    it('answers INVALID_ARGUMENT naming a type Cinder does not know, and NOT_FOUND for an unknown volume', async () => {
      const e = await codeOf(modify(volumeId, { type: `osl-it-rt-unknown-${RUN}` }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.details).toMatch(/^mutable_parameters\.type "osl-it-rt-unknown-/);
      expect((await codeOf(modify('00000000-0000-0000-0000-000000000000', { type: GOLD }))).code).toBe('NOT_FOUND');
    });

    it('unpublishes and deletes the retyped volume', async () => {
      await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
      await call('DeleteVolume', { volume_id: volumeId });
      await expect(c.cinder.getVolume(volumeId)).rejects.toMatchObject({ kind: 'not-found' });
    });
  });
});
