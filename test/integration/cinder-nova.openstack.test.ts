/**
 * CinderClient and NovaClient against the real Cinder 21 (fake backend) and Nova 26 (fake driver) of
 * openstack-loopback (issue #6): volume and snapshot lifecycles with the status sequences polled every
 * 75 ms, extend offline and online, attach/detach on fake-node-0, errors, pagination, and the raw API
 * facts the simulator copies (test/simulator/loopback-parity.test.ts). Everything made is deleted in afterAll.
 */
import { Status } from '../../src/errors';
import type { CinderVolume } from '../../src/openstack/cinder';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  fakeNodeId,
  itName,
  loopbackAuth,
  loopbackClients,
  recordVolume,
  ROOT_VOLUME_NAME,
  waitGone,
} from '../helpers/openstack-loopback';
import { openStackFailure } from '../helpers/openstack-failure';

const SUITE = 'cn';
const ZERO = '00000000-0000-0000-0000-000000000000';

const failure = openStackFailure;

describeOpenStack('Cinder and Nova on openstack-loopback', () => {
  let c: CountingClients;
  let cleanup: Cleanup;
  let server: string;
  /** The volume the lifecycle tests share, in test order: created, extended, attached, detached. */
  let vol: CinderVolume;

  const raw = async (path: string, o: { mv?: string; token?: string | null } = {}) => {
    const base = await c.keystone.endpoint(['volumev3']);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (o.token !== null) headers['X-Auth-Token'] = o.token ?? (await c.keystone.token());
    if (o.mv) headers['OpenStack-API-Version'] = `volume ${o.mv}`;
    const r = await fetch(`${base}${path}`, { headers });
    return { status: r.status, headers: r.headers, json: (await r.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    c = loopbackClients(loopbackAuth());
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    server = await fakeNodeId(c);
  });
  afterAll(async () => {
    await cleanup?.run();
  });

  describe('volumes', () => {
    it('creates a volume that goes creating → available and finds it by id and by name', async () => {
      const name = itName(SUITE, 'main');
      const created = await c.cinder.createVolume({ name, size: 1, metadata: { owner: 'it' } });
      cleanup.volume(created.id);
      expect(created.status).toBe('creating');
      const { statuses, volume } = await recordVolume(c.cinder, created.id, (v) => v.status === 'available', {
        initial: created.status,
      });
      expect(statuses).toEqual(['creating', 'available']);
      expect(volume).toMatchObject({
        name,
        size: 1,
        availability_zone: 'nova',
        volume_type: '__DEFAULT__',
        metadata: { owner: 'it' },
        attachments: [],
        multiattach: false,
      });
      expect((await c.cinder.listVolumesByName(name)).map((v) => v.id)).toEqual([created.id]);
      vol = volume;
    });

    it('extends an available volume through extending back to available', async () => {
      await c.cinder.extendVolume(vol.id, 2);
      const { statuses, volume } = await recordVolume(
        c.cinder,
        vol.id,
        (v) => v.status === 'available' && v.size === 2,
        { initial: 'available' },
      );
      expect(statuses.join(' ')).toMatch(/^available( extending available)?$/);
      expect(volume.size).toBe(2);
    });

    it('answers a smaller extend with INVALID_ARGUMENT and Cinder’s text', async () => {
      const e = await failure(c.cinder.extendVolume(vol.id, 1));
      expect(e.code).toBe(Status.INVALID_ARGUMENT);
      expect(e.serviceMessage).toBe(
        'Invalid input received: New size for extend must be greater than current size. (current: 2, extended: 1).',
      );
    });

    it('answers NOT_FOUND for an unknown volume id', async () => {
      const e = await failure(c.cinder.getVolume(ZERO));
      expect(e.code).toBe(Status.NOT_FOUND);
      expect(e.serviceMessage).toBe(`Volume ${ZERO} could not be found.`);
    });
  });

  describe('attach and detach on fake-node-0', () => {
    it('attaches through reserved (and attaching) to in-use, and both services list the attachment', async () => {
      const att = await c.nova.attachVolume(server, vol.id);
      expect(att).toMatchObject({ id: vol.id, serverId: server, volumeId: vol.id });
      // Nova's fake driver names disks sdX; sda is the boot volume.
      expect(att.device).toMatch(/^\/dev\/sd[b-z]$/);
      const { statuses, volume } = await recordVolume(c.cinder, vol.id, (v) => v.status === 'in-use', {
        initial: 'available',
      });
      expect(statuses[1]).toMatch(/^(reserved|attaching)$/);
      expect(statuses.every((s) => ['available', 'reserved', 'attaching', 'in-use'].includes(s))).toBe(true);
      expect(volume.attachments).toEqual([
        expect.objectContaining({
          server_id: server,
          volume_id: vol.id,
          id: vol.id,
          device: att.device,
          host_name: null,
        }),
      ]);
      expect(volume.attachments[0].attachment_id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await c.nova.listVolumeAttachments(server)).map((a) => a.volumeId)).toContain(vol.id);
    });

    it('refuses a second attach to the same server with FAILED_PRECONDITION naming the server', async () => {
      const e = await failure(c.nova.attachVolume(server, vol.id));
      expect(e.code).toBe(Status.FAILED_PRECONDITION);
      expect(e.serviceMessage).toBe(`Invalid volume: volume ${vol.id} is already attached to instances: ${server}`);
    });

    it('refuses to delete an attached volume with FAILED_PRECONDITION', async () => {
      const e = await failure(c.cinder.deleteVolume(vol.id));
      expect(e.code).toBe(Status.FAILED_PRECONDITION);
      expect(e.status).toBe(400);
      expect(e.serviceMessage).toMatch(/^Invalid volume: Volume status must be available or error/);
    });

    it('extends the in-use volume online (3.42) through extending back to in-use', async () => {
      await c.cinder.extendVolume(vol.id, 3);
      const { statuses, volume } = await recordVolume(c.cinder, vol.id, (v) => v.status === 'in-use' && v.size === 3, {
        initial: 'in-use',
      });
      expect(statuses.join(' ')).toMatch(/^in-use( extending in-use)?$/);
      expect(volume.size).toBe(3);
    });

    it('refuses an offline extend of the in-use volume below 3.42 with Cinder’s text', async () => {
      const base = await c.keystone.endpoint(['volumev3']);
      const r = await fetch(`${base}/volumes/${vol.id}/action`, {
        method: 'POST',
        headers: {
          'X-Auth-Token': await c.keystone.token(),
          'Content-Type': 'application/json',
          'OpenStack-API-Version': 'volume 3.41',
        },
        body: JSON.stringify({ 'os-extend': { new_size: 4 } }),
      });
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({
        badRequest: {
          code: 400,
          message: `Invalid volume: Volume ${vol.id} status must be '{'status': 'available'}' to extend, currently in-use.`,
        },
      });
    });

    it('detaches through detaching to available', async () => {
      await c.nova.detachVolume(server, vol.id);
      const { statuses, volume } = await recordVolume(c.cinder, vol.id, (v) => v.status === 'available', {
        initial: 'in-use',
      });
      expect(statuses.join(' ')).toMatch(/^in-use( detaching)? available$/);
      expect(volume.attachments).toEqual([]);
      expect((await c.nova.listVolumeAttachments(server)).map((a) => a.volumeId)).not.toContain(vol.id);
    });

    it('answers NOT_FOUND for a detach of a volume that is not attached', async () => {
      const e = await failure(c.nova.detachVolume(server, vol.id));
      expect(e.code).toBe(Status.NOT_FOUND);
      expect(e.serviceMessage).toBe(`Instance ${server} is not attached to volume ${vol.id}`);
    });

    it('answers NOT_FOUND for an unknown server, on attach and on get', async () => {
      const e = await failure(c.nova.attachVolume(ZERO, vol.id));
      expect(e.code).toBe(Status.NOT_FOUND);
      expect(e.serviceMessage).toBe(`Instance ${ZERO} could not be found.`);
      expect((await failure(c.nova.getServer(ZERO))).code).toBe(Status.NOT_FOUND);
    });

    it('never sees the boot volume of fake-node-0 change', async () => {
      const [root] = await c.cinder.listVolumesByName(ROOT_VOLUME_NAME);
      expect(root).toMatchObject({
        status: 'in-use',
        attachments: [expect.objectContaining({ server_id: server, device: '/dev/sda' })],
      });
    });
  });

  describe('snapshots and volumes from them', () => {
    let snapId: string;

    it('snapshots a volume through creating to available and lists it by volume', async () => {
      const s = await c.cinder.createSnapshot({
        volumeId: vol.id,
        name: itName(SUITE, 'snap'),
        force: true,
        metadata: { k: 'v' },
      });
      snapId = cleanup.snapshot(s.id);
      expect(s.status).toBe('creating');
      const seen = [s.status];
      for (let got = s; got.status !== 'available';) {
        await new Promise((r) => setTimeout(r, 75));
        got = await c.cinder.getSnapshot(s.id);
        if (seen[seen.length - 1] !== got.status) seen.push(got.status);
        expect(got.status).not.toMatch(/^error/);
      }
      expect(seen).toEqual(['creating', 'available']);
      const listed = await c.cinder.listSnapshots({ volumeId: vol.id });
      expect(listed.items.map((x) => x.id)).toEqual([s.id]);
      expect(listed.items[0]).toMatchObject({ size: 3, volume_id: vol.id, metadata: { k: 'v' } });
    });

    it('creates a volume from the snapshot and a clone of the volume, both creating → available', async () => {
      const fromSnap = await c.cinder.createVolume({ name: itName(SUITE, 'restore'), size: 3, snapshotId: snapId });
      cleanup.volume(fromSnap.id);
      const clone = await c.cinder.createVolume({ name: itName(SUITE, 'clone'), size: 3, sourceVolumeId: vol.id });
      cleanup.volume(clone.id);
      const a = await recordVolume(c.cinder, fromSnap.id, (v) => v.status === 'available', {
        initial: fromSnap.status,
      });
      const b = await recordVolume(c.cinder, clone.id, (v) => v.status === 'available', { initial: clone.status });
      expect([a.statuses, b.statuses]).toEqual([
        ['creating', 'available'],
        ['creating', 'available'],
      ]);
      expect(a.volume.snapshot_id).toBe(snapId);
      expect(b.volume.source_volid).toBe(vol.id);
      for (const id of [fromSnap.id, clone.id]) {
        await c.cinder.deleteVolume(id);
        await waitGone(() => c.cinder.getVolume(id));
      }
    });

    it('refuses a volume smaller than the snapshot with INVALID_ARGUMENT', async () => {
      const e = await failure(c.cinder.createVolume({ name: itName(SUITE, 'small'), size: 2, snapshotId: snapId }));
      expect(e.code).toBe(Status.INVALID_ARGUMENT);
      expect(e.serviceMessage).toBe(
        "Invalid input received: Volume size '2'GB cannot be smaller than the snapshot size 3GB. They must be >= original snapshot size.",
      );
    });

    it('refuses to delete a volume that has snapshots with FAILED_PRECONDITION', async () => {
      expect((await failure(c.cinder.deleteVolume(vol.id))).code).toBe(Status.FAILED_PRECONDITION);
    });

    it('deletes the snapshot, then the volume through deleting until Cinder answers NOT_FOUND', async () => {
      await c.cinder.deleteSnapshot(snapId);
      await waitGone(() => c.cinder.getSnapshot(snapId));
      await c.cinder.deleteVolume(vol.id);
      const seen: string[] = [];
      await waitGone(async () => {
        const v = await c.cinder.getVolume(vol.id);
        if (seen[seen.length - 1] !== v.status) seen.push(v.status);
      });
      expect(seen.every((s) => s === 'deleting')).toBe(true);
    });
  });

  describe('pagination', () => {
    it('pages with limit and marker through every volume, ending on an empty page without a marker', async () => {
      const [root] = await c.cinder.listVolumesByName(ROOT_VOLUME_NAME);
      const seen: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const page = await c.cinder.listVolumes({ limit: 1, marker });
        seen.push(...page.items.map((v) => v.id));
        expect(page.items.length).toBeLessThanOrEqual(1);
        // Cinder links a next page from every full page, so the walk ends on an empty one.
        if (page.items.length === 1) expect(page.nextMarker).toBe(page.items[0].id);
        else expect(page.nextMarker).toBeUndefined();
        marker = page.nextMarker;
        pages++;
      } while (marker && pages < 50);
      // Other suites may create volumes meanwhile, so only the walk's own consistency is asserted.
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toContain(root.id);
      expect(pages).toBe(seen.length + 1);
    });

    it('answers an unknown marker with Cinder’s 404, which the client reports as INVALID_ARGUMENT', async () => {
      const r = await raw(`/volumes/detail?marker=${ZERO}`);
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ itemNotFound: { code: 404, message: `Volume ${ZERO} could not be found.` } });
      expect((await raw(`/snapshots/detail?marker=${ZERO}`)).json).toEqual({
        itemNotFound: { code: 404, message: `Snapshot ${ZERO} could not be found.` },
      });
      const e = await failure(c.cinder.listVolumes({ limit: 1, marker: ZERO }));
      expect(e.kind).toBe('bad-request');
      expect(e.code).toBe(Status.INVALID_ARGUMENT);
      expect(e.message).toContain(`marker ${ZERO} is unknown`);
    });
  });

  describe('raw API facts the simulator copies', () => {
    it('gives every volume view the same fields at 3.0, 3.60 and 3.70, without admin-only ones', async () => {
      const [root] = await c.cinder.listVolumesByName(ROOT_VOLUME_NAME);
      const keys = async (mv: string) => Object.keys((await raw(`/volumes/${root.id}`, { mv })).json.volume).sort();
      expect(await keys('3.0')).toEqual([
        'attachments',
        'availability_zone',
        'bootable',
        'consistencygroup_id',
        'created_at',
        'description',
        'encrypted',
        'id',
        'links',
        'metadata',
        'multiattach',
        'name',
        'os-vol-tenant-attr:tenant_id',
        'replication_status',
        'size',
        'snapshot_id',
        'source_volid',
        'status',
        'updated_at',
        'user_id',
        'volume_type',
      ]);
      expect(
        (await keys('3.60')).filter((k) => !(['group_id', 'service_uuid', 'shared_targets'] as string[]).includes(k)),
      ).toEqual(await keys('3.0'));
      expect(await keys('3.70')).toEqual(expect.arrayContaining(['consumes_quota', 'volume_type_id']));
      expect(await keys('3.70')).not.toContain('migration_status');
    });

    it('refuses unknown filters from 3.31 on and ignores them before', async () => {
      expect((await raw('/volumes/detail?foo=bar&limit=1', { mv: '3.30' })).status).toBe(200);
      expect((await raw('/volumes/detail?foo=bar', { mv: '3.31' })).json).toEqual({
        badRequest: { code: 400, message: 'Invalid filters foo are found in query options.' },
      });
      expect((await raw('/volumes/detail?name~=fake', { mv: '3.34' })).json.badRequest.message).toBe(
        'Invalid filters name~ are found in query options.',
      );
    });

    it.each([
      ['limit=abc', 'limit param must be an integer'],
      ['limit=-1', 'limit param must be positive'],
      ['sort=bogus:asc', 'Invalid input received: Invalid sort key'],
      ['sort=name:up', "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."],
    ])('answers %s with a 400 whose text is “%s”', async (q, message) => {
      expect((await raw(`/volumes/detail?${q}`)).json).toEqual({ badRequest: { code: 400, message } });
    });

    it('answers microversions up to 3.70, echoes them, and refuses 3.71 with 406', async () => {
      const ok = await raw('/volumes?limit=1', { mv: '3.70' });
      expect(ok.headers.get('openstack-api-version')).toBe('volume 3.70');
      expect(ok.headers.get('x-compute-request-id')).toBe(ok.headers.get('x-openstack-request-id'));
      const no = await raw('/volumes?limit=1', { mv: '3.71' });
      expect(no.status).toBe(406);
      expect(no.json).toEqual({
        computeFault: {
          code: 406,
          message: 'Version 3.71 is not supported by the API. Minimum is 3.0 and maximum is 3.70.',
        },
      });
    });

    it('challenges a request without a token with the v3 auth URL', async () => {
      const r = await raw('/volumes', { token: null });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Keystone uri="http://127.0.0.1:5000/v3"');
      expect(r.json).toEqual({
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      });
    });
  });
});
