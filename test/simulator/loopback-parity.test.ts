/**
 * The simulator answers as the real services do where openstack-loopback showed it did not (issue #6).
 * Every expectation here was observed on openstack-loopback (Cinder 21/Nova 26, Keystone 22); the
 * integration suite in test/integration pins the same facts against the real cloud.
 */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, call, passwordAuth } from './client';

const ZERO = '00000000-0000-0000-0000-000000000000';

describe('simulator parity with openstack-loopback', () => {
  let sim: Simulator;
  let api: Api;
  beforeAll(async () => {
    sim = await startSimulator({ delays: { attach: 20, detach: 20 } });
    api = await Api.login(sim);
  });
  afterAll(() => sim.stop());

  describe('cinder views', () => {
    it('shows a member no admin-only volume fields and leaves the tenant attribute out of the create answer', async () => {
      const created = await api.cinder('POST', '/volumes', { volume: { size: 1, name: 'view' } }, '3.60');
      expect(created.json.volume).not.toHaveProperty('os-vol-tenant-attr:tenant_id');
      const id = created.json.volume.id as string;
      await api.volumeStatus(id, 'available');
      for (const mv of ['3.0', '3.42', '3.60', '3.70']) {
        const v = (await api.cinder('GET', `/volumes/${id}`, undefined, mv)).json.volume;
        expect(v).toHaveProperty('os-vol-tenant-attr:tenant_id', sim.credentials.projectId);
        expect(v).not.toHaveProperty('migration_status');
        expect(v).not.toHaveProperty('provider_id');
      }
    });

    it('leaves the extended snapshot attributes out of the create answer only', async () => {
      const vol = await api.createVolume({ name: 'snap-src' });
      await api.volumeStatus(vol, 'available');
      const created = (await api.cinder('POST', '/snapshots', { snapshot: { volume_id: vol, name: 's' } })).json
        .snapshot;
      expect(Object.keys(created).sort()).toEqual([
        'created_at',
        'description',
        'id',
        'metadata',
        'name',
        'size',
        'status',
        'updated_at',
        'volume_id',
      ]);
      const shown = (await api.cinder('GET', `/snapshots/${created.id}`)).json.snapshot;
      expect(shown).toHaveProperty('os-extended-snapshot-attributes:project_id', sim.credentials.projectId);
    });

    it('sends x-compute-request-id on Cinder answers too', async () => {
      const r = await api.cinder('GET', '/volumes');
      expect(r.headers.get('x-compute-request-id')).toBe(r.headers.get('x-openstack-request-id'));
    });

    it('lists volume types without qos_specs_id, with the access flag only in the list', async () => {
      const list = (await api.cinder('GET', '/types')).json.volume_types[0];
      expect(list).not.toHaveProperty('qos_specs_id');
      expect(list).toHaveProperty('os-volume-type-access:is_public', true);
      const shown = (await api.cinder('GET', '/types/default')).json.volume_type;
      expect(Object.keys(shown).sort()).toEqual(['description', 'extra_specs', 'id', 'is_public', 'name']);
    });

    it('lists availability zones', async () => {
      const r = await api.cinder('GET', '/os-availability-zone');
      expect(r.json).toEqual({ availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true } }] });
    });

    it('answers an unknown availability zone without the "Invalid input received" prefix', async () => {
      const r = await api.cinder('POST', '/volumes', { volume: { size: 1, availability_zone: 'nosuch' } });
      expect(r.json).toEqual({ badRequest: { code: 400, message: "Availability zone 'nosuch' is invalid." } });
    });
  });

  describe('cinder list parameters', () => {
    it.each([
      ['3.30', 200],
      ['3.31', 400],
      ['3.60', 400],
    ])('at microversion %s answers %i for an unknown filter', async (mv, code) => {
      const r = await api.cinder('GET', '/volumes/detail?foo=bar', undefined, mv);
      expect(r.status).toBe(code);
      if (code === 400) expect(r.json.badRequest.message).toBe('Invalid filters foo are found in query options.');
    });

    it('refuses the name~ LIKE filter from 3.31 on, which the default resource_filters.json does not enable', async () => {
      const r = await api.cinder('GET', '/volumes/detail?name~=x', undefined, '3.34');
      expect(r.json).toEqual({
        badRequest: { code: 400, message: 'Invalid filters name~ are found in query options.' },
      });
    });

    it('accepts the configured filters, paging keys and all_tenants at 3.60', async () => {
      const q = 'name=a&status=available&availability_zone=nova&limit=2&sort=name:asc&with_count=true&all_tenants=1';
      expect((await api.cinder('GET', `/volumes/detail?${q}`, undefined, '3.60')).status).toBe(200);
      expect(
        (await api.cinder('GET', `/snapshots/detail?volume_id=${ZERO}&status=available`, undefined, '3.60')).status,
      ).toBe(200);
      expect((await api.cinder('GET', '/snapshots/detail?size=1', undefined, '3.60')).json.badRequest.message).toBe(
        'Invalid filters size are found in query options.',
      );
    });

    it.each([
      ['limit=abc', 'limit param must be an integer'],
      ['limit=-1', 'limit param must be positive'],
      ['sort=bogus:asc', 'Invalid input received: Invalid sort key'],
      ['sort=name:up', "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."],
    ])('answers %s with Cinder’s own 400 text', async (q, message) => {
      expect((await api.cinder('GET', `/volumes/detail?${q}`)).json).toEqual({ badRequest: { code: 400, message } });
    });

    it('answers an unknown snapshot marker with the snapshot’s 404', async () => {
      expect((await api.cinder('GET', `/snapshots/detail?marker=${ZERO}`)).status).toBe(404);
    });
  });

  describe('nova attachments', () => {
    it('names the servers when the volume is attached already, records host_name null, and keeps bdm_uuid apart', async () => {
      const id = await api.createVolume({ name: 'twice' });
      await api.volumeStatus(id, 'available');
      const path = `/servers/${sim.localServerId}/os-volume_attachments`;
      expect((await api.nova('POST', path, { volumeAttachment: { volumeId: id } })).status).toBe(200);
      await api.volumeStatus(id, 'in-use');
      const again = await api.nova('POST', path, { volumeAttachment: { volumeId: id } });
      expect(again.json).toEqual({
        badRequest: {
          code: 400,
          message: `Invalid volume: volume ${id} is already attached to instances: ${sim.localServerId}`,
        },
      });
      const att = (await api.cinder('GET', `/volumes/${id}`)).json.volume.attachments[0];
      expect(att.host_name).toBeNull();
      const listed = (await api.nova('GET', path, undefined, '2.89')).json.volumeAttachments[0];
      expect(listed.attachment_id).toBe(att.attachment_id);
      expect(listed.bdm_uuid).toMatch(/^[0-9a-f-]{36}$/);
      expect(listed.bdm_uuid).not.toBe(listed.attachment_id);
    });

    it('lists a describedby link in its version document', async () => {
      const r = await call('GET', `${sim.url}/compute/v2.1/`);
      expect(r.json.version.links).toContainEqual({
        rel: 'describedby',
        type: 'text/html',
        href: 'http://docs.openstack.org/',
      });
    });
  });

  describe('keystone and 401s', () => {
    it("keeps only Cinder's root public: its /v3/ version document needs a token", async () => {
      expect((await call('GET', `${sim.url}/volume/`)).status).toBe(300);
      expect((await call('GET', `${sim.url}/volume/v3/`)).status).toBe(401);
      const withToken = await call('GET', `${sim.url}/volume/v3/`, { headers: { 'X-Auth-Token': api.token } });
      expect(withToken.status).toBe(200);
      expect(withToken.json.versions[0].id).toBe('v3.0');
    });

    it('challenges with the v3 auth URL on Cinder, Nova and Keystone 401s', async () => {
      const want = `Keystone uri="${sim.keystoneUrl}"`;
      expect(
        (await call('GET', `${sim.url}/volume/v3/${sim.credentials.projectId}/volumes`)).headers.get(
          'www-authenticate',
        ),
      ).toBe(want);
      expect((await call('GET', `${sim.url}/compute/v2.1/servers`)).headers.get('www-authenticate')).toBe(want);
      const bad = passwordAuth(sim) as { auth: { identity: { password: { user: { password: string } } } } };
      bad.auth.identity.password.user.password = 'wrong';
      const r = await call('POST', `${sim.keystoneUrl}/auth/tokens`, { body: bad });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe(want);
      expect(r.json).toEqual({
        error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' },
      });
    });

    it('answers an unknown project scope with the generic 401, naming nothing', async () => {
      const body = passwordAuth(sim) as { auth: { scope: { project: { name: string } } } };
      body.auth.scope.project.name = 'nosuch';
      const r = await call('POST', `${sim.keystoneUrl}/auth/tokens`, { body });
      expect(r.status).toBe(401);
      expect(r.json.error.message).toBe('The request you have made requires authentication.');
    });
  });
});
