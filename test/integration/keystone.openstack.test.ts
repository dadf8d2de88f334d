/**
 * KeystoneClient against the real Keystone 22 of openstack-loopback (issue #6): password auth by names,
 * by ids and with the generated cloud.conf, application credentials, one token for many calls, catalog
 * endpoint selection by region and interface, and a wrong password. Creates nothing in the cloud.
 */
import { Status } from '../../src/errors';
import type { CloudAuth } from '../../src/config/types';
import {
  describeOpenStack,
  fakeNodeId,
  LOOPBACK_APPCRED_CONF,
  LOOPBACK_KEYSTONE,
  loopbackAuth,
  loopbackClients,
  loopbackIds,
  loopbackPassword,
} from '../helpers/openstack-loopback';
import { openStackFailure } from '../helpers/openstack-failure';

const CINDER = (projectId: string) => `http://127.0.0.1:8776/v3/${projectId}`;
const NOVA = 'http://127.0.0.1:8774/v2.1';

const failure = openStackFailure;

describeOpenStack('Keystone on openstack-loopback', () => {
  const base = (): CloudAuth => ({
    name: '',
    authUrl: LOOPBACK_KEYSTONE,
    region: 'RegionOne',
    endpointType: 'public',
    tlsInsecure: false,
  });

  describe('authentication', () => {
    it('authenticates with the generated cloud.conf (names plus tenant-id) and is scoped to project demo', async () => {
      const c = loopbackClients(loopbackAuth());
      expect(await c.keystone.projectId()).toBe(loopbackIds().demo_project_id);
      expect(await c.keystone.token()).toMatch(/^gAAAAA/);
    });

    it('authenticates by names only (user, domain and project names)', async () => {
      const auth: CloudAuth = {
        ...base(),
        username: 'demo',
        password: loopbackPassword(),
        userDomainName: 'Default',
        projectName: 'demo',
        projectDomainName: 'Default',
      };
      expect(await loopbackClients(auth).keystone.projectId()).toBe(loopbackIds().demo_project_id);
    });

    it('authenticates by ids only (user-id and tenant-id)', async () => {
      const ids = loopbackIds();
      const auth: CloudAuth = {
        ...base(),
        userId: ids.demo_user_id,
        password: loopbackPassword(),
        projectId: ids.demo_project_id,
      };
      expect(await loopbackClients(auth).keystone.projectId()).toBe(ids.demo_project_id);
    });

    it('authenticates with the application credential of cloud-appcred.conf, which carries the demo scope', async () => {
      const auth = loopbackAuth(LOOPBACK_APPCRED_CONF);
      expect(auth.applicationCredentialId).toBe(loopbackIds().appcred_id);
      const c = loopbackClients(auth);
      expect(await c.keystone.projectId()).toBe(loopbackIds().demo_project_id);
      // The token works for Cinder too: the credential is unrestricted enough for the driver's calls.
      await expect(c.cinder.listVolumes({ limit: 1 })).resolves.toHaveProperty('items');
    });

    it('answers a wrong password with UNAUTHENTICATED and keeps the password out of the message', async () => {
      const secret = 'not-the-loopback-password-4711';
      const c = loopbackClients({
        ...base(),
        username: 'demo',
        password: secret,
        userDomainName: 'Default',
        projectName: 'demo',
        projectDomainName: 'Default',
      });
      const e = await failure(c.keystone.token());
      expect(e.code).toBe(Status.UNAUTHENTICATED);
      expect(e.status).toBe(401);
      expect(e.serviceMessage).toBe('The request you have made requires authentication.');
      expect(e.message).toContain('POST /v3/auth/tokens');
      expect(`${e.message} ${JSON.stringify(e)}`).not.toContain(secret);
      // No retry of a refused authentication.
      expect(c.count('token.create')).toBe(1);
    });

    it('answers an unknown project with the same generic UNAUTHENTICATED', async () => {
      const c = loopbackClients({
        ...base(),
        username: 'demo',
        password: loopbackPassword(),
        userDomainName: 'Default',
        projectName: 'no-such-project',
        projectDomainName: 'Default',
      });
      const e = await failure(c.keystone.token());
      expect(e.code).toBe(Status.UNAUTHENTICATED);
      expect(e.serviceMessage).toBe('The request you have made requires authentication.');
    });
  });

  describe('tokens', () => {
    it('uses one token for many Cinder and Nova calls, also when they start together', async () => {
      const c = loopbackClients(loopbackAuth());
      await Promise.all([
        c.cinder.listVolumes({ limit: 1 }),
        c.cinder.getAbsoluteLimits(),
        c.nova.listVolumeAttachments(await fakeNodeId(c)),
      ]);
      for (let i = 0; i < 5; i++) await c.cinder.listVolumes({ limit: 1 });
      expect(c.count('token.create')).toBe(1);
      expect(c.events.filter((e) => e.service !== 'keystone').length).toBeGreaterThanOrEqual(8);
      expect(c.events.every((e) => e.status !== undefined && e.status < 400)).toBe(true);
    });
  });

  describe('catalog', () => {
    it.each(['public', 'internal', 'admin'] as const)(
      'selects the %s interface of volumev3 and compute in RegionOne',
      async (endpointType) => {
        const c = loopbackClients({ ...loopbackAuth(), endpointType });
        const project = loopbackIds().demo_project_id;
        // up.sh registers one URL for all three interfaces, with %(project_id)s substituted by Keystone.
        expect(await c.keystone.endpoint(['volumev3'])).toBe(CINDER(project));
        expect(await c.keystone.endpoint(['block-storage'])).toBe(CINDER(project));
        expect(await c.keystone.endpoint(['compute'])).toBe(NOVA);
      },
    );

    it('lists public, internal and admin endpoints with region and region_id for every service the driver uses', async () => {
      const token = await loopbackClients(loopbackAuth()).keystone.token();
      // Our client keeps the catalog private; read the token body the way it does.
      const r = await fetch(`${LOOPBACK_KEYSTONE}/auth/tokens`, {
        headers: { 'X-Auth-Token': token, 'X-Subject-Token': token },
      });
      const catalog = (
        (await r.json()) as {
          token: {
            catalog: Array<{
              type: string;
              endpoints: Array<{ interface: string; region: string; region_id: string }>;
            }>;
          };
        }
      ).token.catalog;
      for (const type of ['identity', 'volumev3', 'block-storage', 'compute']) {
        const entry = catalog.find((e) => e.type === type);
        expect(entry?.endpoints.map((e) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
        expect(entry?.endpoints.every((e) => e.region === 'RegionOne' && e.region_id === 'RegionOne')).toBe(true);
      }
    });

    it('answers FAILED_PRECONDITION naming the region when the catalog has no endpoint there', async () => {
      const c = loopbackClients({ ...loopbackAuth(), region: 'RegionTwo' });
      const e = await failure(c.cinder.listVolumes());
      expect(e.code).toBe(Status.FAILED_PRECONDITION);
      expect(e.kind).toBe('endpoint-not-found');
      expect(e.message).toContain('region RegionTwo');
      expect(e.message).toContain('volumev3');
    });
  });
});
