import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CloudAuth } from '../../src/config/types';
import { Status } from '../../src/errors';
import { type OpenStackError } from '../../src/openstack/errors';
import { buildAuthBody, VOLUME_SERVICE_TYPES } from '../../src/openstack/keystone';
import { startSimulator, type Simulator } from '../../src/simulator';
import { captureLogger, makeCertificates } from './local-server';
import { SIM_REGION, clientsFor, passwordAuth } from './sim-clients';

const BASE: CloudAuth = { name: '', authUrl: 'http://k/v3', endpointType: 'public', tlsInsecure: false };

async function failure(p: Promise<unknown>): Promise<OpenStackError> {
  try {
    await p;
  } catch (e) {
    return e as OpenStackError;
  }
  throw new Error('expected a failure');
}

describe('buildAuthBody', () => {
  it.each<[string, Partial<CloudAuth>, unknown]>([
    [
      'password by user id, project id',
      { userId: 'u1', password: 'pw', projectId: 'p1' },
      {
        identity: { methods: ['password'], password: { user: { id: 'u1', password: 'pw' } } },
        scope: { project: { id: 'p1' } },
      },
    ],
    [
      'password by name and domain, project by name and domain',
      { username: 'demo', userDomainName: 'Default', password: 'pw', projectName: 'demo', projectDomainId: 'default' },
      {
        identity: {
          methods: ['password'],
          password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'pw' } },
        },
        scope: { project: { name: 'demo', domain: { id: 'default' } } },
      },
    ],
    [
      'application credential by id, unscoped',
      { applicationCredentialId: 'ac1', applicationCredentialSecret: 's', projectId: 'p1' },
      { identity: { methods: ['application_credential'], application_credential: { id: 'ac1', secret: 's' } } },
    ],
    [
      'application credential by name and user',
      {
        applicationCredentialName: 'csi',
        applicationCredentialSecret: 's',
        username: 'demo',
        userDomainName: 'Default',
      },
      {
        identity: {
          methods: ['application_credential'],
          application_credential: { name: 'csi', secret: 's', user: { name: 'demo', domain: { name: 'Default' } } },
        },
      },
    ],
    [
      'pre-issued token with project scope',
      { token: 'tok', projectId: 'p1' },
      { identity: { methods: ['token'], token: { id: 'tok' } }, scope: { project: { id: 'p1' } } },
    ],
    [
      'trust with trustee overriding user and password',
      { trustId: 't1', userId: 'u1', password: 'pw', trusteeId: 'u2', trusteePassword: 'pw2', projectId: 'p1' },
      {
        identity: { methods: ['password'], password: { user: { id: 'u2', password: 'pw2' } } },
        scope: { 'OS-TRUST:trust': { id: 't1' } },
      },
    ],
  ])('builds %s', (_name, auth, expected) => {
    expect(buildAuthBody({ ...BASE, ...auth }).auth).toEqual(expected);
  });

  it.each<[string, Partial<CloudAuth>, RegExp]>([
    ['no credentials at all', {}, /no usable credentials/],
    ['a username without a domain', { username: 'demo', password: 'pw' }, /user-domain-name/],
    ['a project name without a domain', { userId: 'u', password: 'pw', projectName: 'demo' }, /tenant-domain-name/],
  ])('refuses %s with FAILED_PRECONDITION naming the keys', (_name, auth, message) => {
    expect(() => buildAuthBody({ ...BASE, name: 'east', ...auth })).toThrow(
      expect.objectContaining({ code: Status.FAILED_PRECONDITION, message: expect.stringMatching(message) }),
    );
    expect(() => buildAuthBody({ ...BASE, name: 'east', ...auth })).toThrow(/\[Global "east"\]/);
  });
});

describe('KeystoneClient against the simulator', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION });
  });
  afterAll(() => sim.stop());
  beforeEach(() => {
    sim.clearFaults();
    sim.resetCounters();
  });
  const created = () => sim.counters()['keystone.token.create'] ?? 0;

  it('authenticates once and reuses the token for later calls', async () => {
    const { keystone, cinder } = clientsFor(passwordAuth(sim));
    await cinder.listVolumes();
    await cinder.listVolumes();
    await keystone.token();
    expect(created()).toBe(1);
  });

  it('shares one in-flight authentication among concurrent callers', async () => {
    const { keystone } = clientsFor(passwordAuth(sim));
    const tokens = await Promise.all(Array.from({ length: 10 }, () => keystone.token()));
    expect(new Set(tokens).size).toBe(1);
    expect(created()).toBe(1);
  });

  it.each<[string, (s: Simulator) => Partial<CloudAuth>]>([
    [
      'a user id and project id',
      (s) => ({
        username: undefined,
        userDomainName: undefined,
        userId: s.credentials.userId,
        projectName: undefined,
        projectId: s.credentials.projectId,
      }),
    ],
    [
      'an application credential id',
      (s) => ({
        username: undefined,
        password: undefined,
        projectName: undefined,
        applicationCredentialId: s.credentials.applicationCredentialId,
        applicationCredentialSecret: s.credentials.applicationCredentialSecret,
      }),
    ],
    [
      'an application credential name and user',
      (s) => ({
        password: undefined,
        projectName: undefined,
        applicationCredentialName: s.credentials.applicationCredentialName,
        applicationCredentialSecret: s.credentials.applicationCredentialSecret,
      }),
    ],
    [
      'a trust with trustee credentials',
      (s) => ({
        username: undefined,
        password: undefined,
        projectName: undefined,
        trustId: s.trust.id,
        trusteeId: s.trust.trusteeUserId,
        trusteePassword: s.trust.trusteePassword,
      }),
    ],
  ])('authenticates with %s and reaches Cinder', async (_name, over) => {
    const { cinder } = clientsFor(passwordAuth(sim, over(sim)));
    await expect(cinder.listVolumes()).resolves.toMatchObject({ items: expect.any(Array) });
  });

  it('exchanges a pre-issued token for a scoped one', async () => {
    const token = await clientsFor(passwordAuth(sim)).keystone.token();
    const { cinder } = clientsFor({
      ...BASE,
      authUrl: sim.keystoneUrl,
      region: SIM_REGION,
      token,
      projectId: sim.credentials.projectId,
    });
    await expect(cinder.listVolumes()).resolves.toBeDefined();
  });

  it('rejects a wrong password with UNAUTHENTICATED, without the password in the message or the log', async () => {
    const { logger, lines } = captureLogger();
    const { keystone } = clientsFor(passwordAuth(sim, { password: 'wrong-secret-xyz' }), { logger });
    const e = await failure(keystone.token());
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(e.service).toBe('keystone');
    expect(e.message).toContain('requires authentication');
    expect(e.message).not.toContain('wrong-secret-xyz');
    expect(lines.join('')).not.toContain('wrong-secret-xyz');
  });

  it('never logs the token or the password during normal use', async () => {
    const { logger, lines } = captureLogger();
    const { keystone, cinder } = clientsFor(passwordAuth(sim), { logger });
    await cinder.listVolumes();
    const token = await keystone.token();
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    expect(log).not.toContain(token);
    expect(log).not.toContain(sim.credentials.password);
  });

  it('re-authenticates when the cached token nears expires_at', async () => {
    let offset = 0;
    const { keystone } = clientsFor(passwordAuth(sim), { now: () => Date.now() + offset });
    const first = await keystone.token();
    offset = 10 * 3600_000; // far beyond the simulator's token lifetime
    const second = await keystone.token();
    expect(second).not.toBe(first);
    expect(created()).toBe(2);
  });

  it('recovers from tokens revoked mid-operation with one re-authentication and no error', async () => {
    const { cinder } = clientsFor(passwordAuth(sim));
    await cinder.listVolumes();
    sim.revokeAllTokens();
    await expect(cinder.listVolumes()).resolves.toBeDefined();
    expect(created()).toBe(2);
  });

  it('stops after one re-authentication in a 401 storm and answers UNAUTHENTICATED', async () => {
    const { cinder, events } = clientsFor(passwordAuth(sim));
    sim.injectFault('cinder.volume.list', { kind: 'http-status', status: 401, times: 50 });
    const e = await failure(cinder.listVolumes());
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(created()).toBe(2);
    expect(events.filter((ev) => ev.service === 'cinder')).toHaveLength(2);
  });

  it('names the missing service, region and interface when the catalog lacks it', async () => {
    const { keystone } = clientsFor(passwordAuth(sim));
    const e = await failure(keystone.endpoint(['object-store']));
    expect(e.code).toBe(Status.FAILED_PRECONDITION);
    expect(e.message).toMatch(/object-store.*region RegionOne, interface public/);
    const other = await failure(
      clientsFor(passwordAuth(sim, { region: 'RegionTwo' })).keystone.endpoint(VOLUME_SERVICE_TYPES),
    );
    expect(other.message).toMatch(/volumev3 or block-storage.*RegionTwo/);
  });

  it('selects the catalog interface given by os-endpoint-type', async () => {
    const { keystone, cinder } = clientsFor(passwordAuth(sim, { endpointType: 'internal' }));
    expect(await keystone.endpoint(VOLUME_SERVICE_TYPES)).toMatch(/\/internal\/volume\/v3\//);
    expect(await clientsFor(passwordAuth(sim)).keystone.endpoint(VOLUME_SERVICE_TYPES)).not.toMatch(/internal/);
    await cinder.listVolumes();
    expect(sim.counters()['interface.internal']).toBe(1);
  });

  it('swaps credentials on reload and drops the cached token', async () => {
    const auth = passwordAuth(sim);
    const { keystone } = clientsFor(auth);
    await keystone.token();
    keystone.reload({ ...auth, password: 'rotated-away' });
    await expect(keystone.token()).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    keystone.reload(auth);
    await expect(keystone.token()).resolves.toEqual(expect.any(String));
    expect(created()).toBe(3);
  });
});

describe('KeystoneClient with short-lived tokens', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION, tokenLifetimeMs: 300 });
  });
  afterAll(() => sim.stop());

  it('re-authenticates once, without an error, when the token expires between two calls', async () => {
    // A frozen clock keeps the client believing its token is fresh, so only the server's 401 reveals expiry.
    const frozen = Date.now();
    const { cinder } = clientsFor(passwordAuth(sim), { now: () => frozen, expiryMarginMs: 0 });
    sim.resetCounters();
    await cinder.listVolumes();
    await new Promise((r) => setTimeout(r, 400));
    await expect(cinder.listVolumes()).resolves.toBeDefined();
    expect(sim.counters()['keystone.token.create']).toBe(2);
  });
});

describe('KeystoneClient over TLS', () => {
  let dir: string;
  let sim: Simulator;
  let caFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'os-sim-tls-'));
    const certs = await makeCertificates(dir);
    caFile = certs.caFile;
    sim = await startSimulator({ region: SIM_REGION, tls: { cert: certs.cert.toString(), key: certs.key.toString() } });
  });
  afterAll(async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('authenticates over https with the CA from ca-file', async () => {
    expect(sim.keystoneUrl).toMatch(/^https:/);
    const { cinder } = clientsFor(passwordAuth(sim, { caFile }));
    await expect(cinder.listVolumes()).resolves.toBeDefined();
  });

  it('refuses the simulator certificate without the CA', async () => {
    const e = await failure(clientsFor(passwordAuth(sim)).keystone.token());
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.message).toMatch(/certificate|CERT/i);
  });
});
