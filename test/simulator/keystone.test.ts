/** Keystone v3 of the simulator: auth methods and scopes, 401 bodies, expiry, validation, revocation, catalog. */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, call, issueToken, passwordAuth, sleep } from './client';

describe('simulator keystone', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(() => sim.stop());

  const tokens = () => `${sim.keystoneUrl}/auth/tokens`;
  const identity = (method: string, data: unknown, scope?: unknown) => ({
    auth: { identity: { methods: [method], [method]: data }, ...(scope ? { scope } : {}) },
  });

  it('issues a project-scoped token for a password by user name and domain, with expiry, user, project and catalog', async () => {
    const before = Date.now();
    const r = await call('POST', tokens(), { body: passwordAuth(sim) });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-subject-token')).toMatch(/^gAAAAAB/);
    const t = r.json.token;
    expect(t.user).toMatchObject({
      id: sim.credentials.userId,
      name: 'demo',
      domain: { id: 'default', name: 'Default' },
    });
    expect(t.project).toMatchObject({ id: sim.credentials.projectId, name: 'demo', domain: { name: 'Default' } });
    expect(t.methods).toEqual(['password']);
    const expires = Date.parse(t.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(Array.isArray(t.catalog)).toBe(true);
  });

  it('accepts a password by user id with a project scope by id', async () => {
    const c = sim.credentials;
    const body = identity(
      'password',
      { user: { id: c.userId, password: c.password } },
      { project: { id: c.projectId } },
    );
    const r = await call('POST', tokens(), { body });
    expect(r.status).toBe(201);
    expect(r.json.token.project.id).toBe(c.projectId);
  });

  it('issues a token for an application credential by id and by name plus user, scoped to its project', async () => {
    const c = sim.credentials;
    const byId = await call('POST', tokens(), {
      body: identity('application_credential', {
        id: c.applicationCredentialId,
        secret: c.applicationCredentialSecret,
      }),
    });
    expect(byId.status).toBe(201);
    expect(byId.json.token.application_credential).toMatchObject({ id: c.applicationCredentialId, name: 'csi' });
    expect(byId.json.token.project.id).toBe(c.projectId);
    const byName = await call('POST', tokens(), {
      body: identity('application_credential', {
        name: c.applicationCredentialName,
        secret: c.applicationCredentialSecret,
        user: { name: 'demo', domain: { name: 'Default' } },
      }),
    });
    expect(byName.status).toBe(201);
  });

  it('re-scopes an existing token with the token method and keeps its expiry', async () => {
    const first = await call('POST', tokens(), { body: passwordAuth(sim) });
    const id = first.headers.get('x-subject-token');
    const r = await call('POST', tokens(), {
      body: identity('token', { id }, { project: { id: sim.credentials.projectId } }),
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-subject-token')).not.toBe(id);
    expect(r.json.token.expires_at).toBe(first.json.token.expires_at);
    expect(r.json.token.methods).toEqual(['token']);
  });

  it('scopes a trustee password to the OS-TRUST:trust scope, naming trustor and trustee', async () => {
    const t = sim.trust;
    const body = identity(
      'password',
      { user: { name: t.trusteeUsername, domain: { name: 'Default' }, password: t.trusteePassword } },
      { 'OS-TRUST:trust': { id: t.id } },
    );
    const r = await call('POST', tokens(), { body });
    expect(r.status).toBe(201);
    expect(r.json.token['OS-TRUST:trust']).toMatchObject({
      id: t.id,
      trustee_user: { id: t.trusteeUserId },
      trustor_user: { id: sim.credentials.userId },
    });
    expect(r.json.token.project.id).toBe(sim.credentials.projectId);
  });

  it('refuses a trustee scoping to the project directly, since it holds no role there', async () => {
    const t = sim.trust;
    const body = identity(
      'password',
      { user: { name: t.trusteeUsername, domain: { name: 'Default' }, password: t.trusteePassword } },
      { project: { id: sim.credentials.projectId } },
    );
    expect((await call('POST', tokens(), { body })).status).toBe(401);
  });

  it.each([
    ['a wrong password', { user: { name: 'demo', domain: { name: 'Default' }, password: 'nope' } }],
    ['an unknown user', { user: { name: 'ghost', domain: { name: 'Default' }, password: 'secret-password' } }],
    ['a user in another domain', { user: { name: 'demo', domain: { name: 'Other' }, password: 'secret-password' } }],
  ])('answers 401 with Keystone’s error body for %s', async (_what, password) => {
    const r = await call('POST', tokens(), { body: identity('password', password) });
    expect(r.status).toBe(401);
    expect(r.json).toEqual({ error: { code: 401, message: expect.any(String), title: 'Unauthorized' } });
  });

  it('answers 401 for a wrong application credential secret and an unknown project', async () => {
    const c = sim.credentials;
    const ac = await call('POST', tokens(), {
      body: identity('application_credential', { id: c.applicationCredentialId, secret: 'x' }),
    });
    expect(ac.status).toBe(401);
    const proj = await call('POST', tokens(), {
      body: identity('password', { user: { id: c.userId, password: c.password } }, { project: { id: 'nope' } }),
    });
    expect(proj.status).toBe(401);
  });

  it('answers 400 with Keystone’s error body for a body without auth', async () => {
    const r = await call('POST', tokens(), { body: { nothing: true } });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 400, title: 'Bad Request' });
  });

  it('validates a token with GET and answers 404 for an unknown subject', async () => {
    const token = await issueToken(sim);
    const ok = await call('GET', tokens(), { headers: { 'X-Auth-Token': token, 'X-Subject-Token': token } });
    expect(ok.status).toBe(200);
    expect(ok.json.token.user.id).toBe(sim.credentials.userId);
    const missing = await call('GET', tokens(), {
      headers: { 'X-Auth-Token': token, 'X-Subject-Token': 'gAAAAABnope' },
    });
    expect(missing.status).toBe(404);
    const unauth = await call('GET', tokens(), { headers: { 'X-Auth-Token': 'bad', 'X-Subject-Token': token } });
    expect(unauth.status).toBe(401);
  });

  it('lists volumev3, block-storage and compute with public, internal and admin endpoints in the region', async () => {
    const r = await call('POST', tokens(), { body: passwordAuth(sim) });
    const catalog = r.json.token.catalog as Array<{
      type: string;
      endpoints: Array<{ interface: string; region: string; url: string }>;
    }>;
    const pid = sim.credentials.projectId;
    const urls = (type: string) =>
      Object.fromEntries(catalog.find((s) => s.type === type)!.endpoints.map((e) => [e.interface, e.url]));
    expect(urls('volumev3')).toEqual({
      public: `${sim.url}/volume/v3/${pid}`,
      internal: `${sim.url}/internal/volume/v3/${pid}`,
      admin: `${sim.url}/admin/volume/v3/${pid}`,
    });
    expect(urls('block-storage').public).toBe(`${sim.url}/volume/v3/${pid}`);
    expect(urls('compute')).toEqual({
      public: `${sim.url}/compute/v2.1`,
      internal: `${sim.url}/internal/compute/v2.1`,
      admin: `${sim.url}/admin/compute/v2.1`,
    });
    for (const s of catalog) for (const e of s.endpoints) expect(e.region).toBe('RegionOne');
  });

  it('serves the internal endpoint with the same handlers and counts the interface used', async () => {
    const api = await Api.login(sim);
    sim.resetCounters();
    const r = await call('GET', `${sim.url}/internal/volume/v3/${sim.credentials.projectId}/types`, {
      headers: { 'X-Auth-Token': api.token },
    });
    expect(r.status).toBe(200);
    expect(sim.counters()).toMatchObject({ 'cinder.types.list': 1, 'interface.internal': 1 });
    expect(sim.counters()['interface.public']).toBeUndefined();
  });

  it('answers 401 from Cinder and Nova after revokeAllTokens, with the auth_token body', async () => {
    const api = await Api.login(sim);
    expect((await api.cinder('GET', '/volumes')).status).toBe(200);
    sim.revokeAllTokens();
    const c = await api.cinder('GET', '/volumes');
    expect(c.status).toBe(401);
    expect(c.json.error).toMatchObject({ code: 401, title: 'Unauthorized' });
    expect(c.headers.get('www-authenticate')).toContain('Keystone uri=');
    expect((await api.nova('GET', `/servers/${sim.localServerId}`)).status).toBe(401);
  });

  it('answers 400 "Malformed request url" when the URL names another project than the token', async () => {
    const api = await Api.login(sim);
    const r = await call('GET', `${sim.url}/volume/v3/another/volumes`, { headers: { 'X-Auth-Token': api.token } });
    expect(r.status).toBe(400);
    expect(r.json.badRequest.message).toBe('Malformed request url');
  });
});

describe('simulator keystone token expiry', () => {
  it('expires tokens after tokenLifetimeMs: services answer 401 and validation 404', async () => {
    const sim = await startSimulator({ tokenLifetimeMs: 150 });
    try {
      const api = await Api.login(sim);
      expect((await api.cinder('GET', '/volumes')).status).toBe(200);
      const fresh = await issueToken(sim);
      await sleep(200);
      expect((await api.cinder('GET', '/volumes')).status).toBe(401);
      expect((await api.nova('GET', '/servers/detail')).status).toBe(401);
      const later = await issueToken(sim);
      const v = await call('GET', `${sim.keystoneUrl}/auth/tokens`, {
        headers: { 'X-Auth-Token': later, 'X-Subject-Token': fresh },
      });
      expect(v.status).toBe(404);
    } finally {
      await sim.stop();
    }
  });
});
