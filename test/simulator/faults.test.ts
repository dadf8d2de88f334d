/** Injected faults and request counters of the simulator: each fault kind, matching, `times`, counters. */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, call, issueToken, passwordAuth } from './client';

describe('simulator faults and counters', () => {
  let sim: Simulator;
  let api: Api;
  beforeAll(async () => {
    sim = await startSimulator();
    api = await Api.login(sim);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.clearFaults());

  it('answers an injected 503 with Cinder’s serviceUnavailable body, once by default', async () => {
    sim.injectFault('cinder.volume.list', { kind: 'http-status', status: 503 });
    const r = await api.cinder('GET', '/volumes/detail');
    expect(r.status).toBe(503);
    expect(r.json.serviceUnavailable.code).toBe(503);
    expect((await api.cinder('GET', '/volumes/detail')).status).toBe(200);
  });

  it('answers an injected 500 on Keystone with its error body and a 401 with Keystone’s shape on Nova', async () => {
    sim.injectFault('keystone.token.create', { kind: 'http-status', status: 500 });
    const k = await call('POST', `${sim.keystoneUrl}/auth/tokens`, { body: passwordAuth(sim) });
    expect(k.status).toBe(500);
    expect(k.json.error).toMatchObject({ code: 500, title: 'Internal Server Error' });
    sim.injectFault('nova.server.get', { kind: 'http-status', status: 401 });
    const n = await api.nova('GET', `/servers/${sim.localServerId}`);
    expect(n.status).toBe(401);
    expect(n.json.error).toMatchObject({ code: 401, title: 'Unauthorized' });
  });

  it('answers 429 with Retry-After for a retry-after fault, for the given number of times', async () => {
    sim.injectFault('nova.attachment.list', { kind: 'retry-after', retryAfterSeconds: 7, times: 2 });
    const path = `/servers/${sim.localServerId}/os-volume_attachments`;
    for (let i = 0; i < 2; i++) {
      const r = await api.nova('GET', path);
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('7');
      expect(r.json.overLimit).toMatchObject({ code: 429, retryAfter: '7' });
    }
    expect((await api.nova('GET', path)).status).toBe(200);
  });

  it('resets the connection for a reset fault', async () => {
    sim.injectFault('cinder.volume.get', { kind: 'reset' });
    await expect(api.cinder('GET', '/volumes/whatever')).rejects.toThrow();
    expect((await api.cinder('GET', '/volumes/whatever')).status).toBe(404);
  });

  it('slows the response by delayMs for a delay fault', async () => {
    sim.injectFault('cinder.types.list', { kind: 'delay', delayMs: 150 });
    const t0 = Date.now();
    const r = await api.cinder('GET', '/types');
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
  });

  it('revokes every token for a revoke-tokens fault, so the request itself gets 401', async () => {
    const token = await issueToken(sim);
    const a = new Api(sim, token);
    sim.injectFault('cinder.limits.get', { kind: 'revoke-tokens' });
    expect((await a.cinder('GET', '/limits')).status).toBe(401);
    a.token = await issueToken(sim);
    expect((await a.cinder('GET', '/limits')).status).toBe(200);
    api.token = a.token;
  });

  it('expires every token for an expire-tokens fault, so the request itself gets 401, and a new token works', async () => {
    const a = new Api(sim, await issueToken(sim));
    sim.injectFault('cinder.limits.get', { kind: 'expire-tokens' });
    const r = await a.cinder('GET', '/limits');
    expect(r.status).toBe(401);
    expect((await a.cinder('GET', '/limits')).status).toBe(401);
    a.token = await issueToken(sim);
    expect((await a.cinder('GET', '/limits')).status).toBe(200);
    api.token = a.token;
  });

  it('acts on the request and then drops the connection for a drop-response fault', async () => {
    const before = sim.listVolumes().length;
    sim.injectFault('cinder.volume.create', { kind: 'drop-response' });
    await expect(api.cinder('POST', '/volumes', { volume: { size: 1, name: 'dropped' } })).rejects.toThrow();
    const made = sim.listVolumes().filter((v) => v.name === 'dropped');
    expect(sim.listVolumes()).toHaveLength(before + 1);
    expect(made).toHaveLength(1);
    expect((await api.cinder('GET', `/volumes/${made[0].id}`)).status).toBe(200);
  });

  it('puts Nova and Cinder out of step about an attachment with desyncAttachment, either way', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = await api.createVolume({ name: `desync-${i}` });
      await api.volumeStatus(id, 'available');
      expect(
        (
          await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
            volumeAttachment: { volumeId: id },
          })
        ).status,
      ).toBe(200);
      await api.volumeStatus(id, 'in-use');
      ids.push(id);
    }
    const [novaLost, cinderLost] = ids;
    sim.desyncAttachment(novaLost, sim.localServerId, 'nova');
    sim.desyncAttachment(cinderLost, sim.localServerId, 'cinder');
    const listed = (
      await api.nova('GET', `/servers/${sim.localServerId}/os-volume_attachments`)
    ).json.volumeAttachments.map((a: { volumeId: string }) => a.volumeId);
    expect(listed).toContain(cinderLost);
    expect(listed).not.toContain(novaLost);
    expect(sim.getVolume(novaLost)).toMatchObject({
      status: 'in-use',
      attachments: [{ server_id: sim.localServerId }],
    });
    expect(sim.getVolume(cinderLost)).toMatchObject({ status: 'available', attachments: [] });
    expect(() => sim.desyncAttachment(cinderLost, sim.localServerId, 'nova')).toThrow(/not attached/);
  });

  it('matches a prefix ending in * and affects all requests with times Infinity', async () => {
    sim.injectFault('cinder.*', { kind: 'http-status', status: 502, times: Infinity });
    expect((await api.cinder('GET', '/types')).status).toBe(502);
    expect((await api.cinder('GET', '/limits')).status).toBe(502);
    expect((await api.nova('GET', '/servers/detail')).status).toBe(200);
    sim.clearFaults();
    expect((await api.cinder('GET', '/types')).status).toBe(200);
  });

  it('counts every request per operation name, faulted ones included, until reset', async () => {
    sim.resetCounters();
    sim.injectFault('cinder.volume.create', { kind: 'http-status', status: 500 });
    await api.cinder('POST', '/volumes', { volume: { size: 1 } });
    const id = await api.createVolume({});
    await api.cinder('GET', `/volumes/${id}`);
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } });
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-reserve': {} });
    await api.nova('GET', '/servers/detail');
    await call('GET', `${sim.url}/compute/v2.1`);
    await issueToken(sim);
    expect(sim.counters()).toEqual({
      'cinder.volume.create': 2,
      'cinder.volume.get': 1,
      'cinder.volume.extend': 1,
      'cinder.volume.action': 1,
      'nova.server.list': 1,
      'nova.versions': 1,
      'keystone.token.create': 1,
      'interface.public': 7,
    });
    sim.resetCounters();
    expect(sim.counters()).toEqual({});
  });

  it('answers unknown paths with 404 and counts them as unknown', async () => {
    sim.resetCounters();
    const r = await api.cinder('GET', '/nonsense');
    expect(r.status).toBe(404);
    expect(r.json.itemNotFound.code).toBe(404);
    expect(sim.counters()['cinder.unknown']).toBe(1);
  });
});
