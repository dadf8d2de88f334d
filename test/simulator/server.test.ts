/** The simulator's HTTP front: HTTPS, HEAD, malformed bodies, Nova discovery and microversions, cloud.conf text. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from '../../src/mount/exec';
import { startSimulator, type Simulator } from '../../src/simulator';
import { describeIf } from '../helpers/prereq';
import { Api, call, passwordAuth } from './client';

describe('simulator http front', () => {
  let sim: Simulator;
  let api: Api;
  beforeAll(async () => {
    sim = await startSimulator({ region: 'RegionTwo' });
    api = await Api.login(sim);
  });
  afterAll(() => sim.stop());

  it('listens on 127.0.0.1 and derives the Keystone and metadata URLs from its URL', () => {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sim.keystoneUrl).toBe(`${sim.url}/identity/v3`);
    expect(sim.metadataUrl).toBe(`${sim.url}/metadata`);
  });

  it('answers 400 badRequest with Cinder’s body for malformed JSON', async () => {
    const res = await fetch(`${sim.url}/volume/v3/${sim.credentials.projectId}/volumes`, {
      method: 'POST',
      headers: { 'X-Auth-Token': api.token, 'Content-Type': 'application/json' },
      body: '{"volume": ',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ badRequest: { code: 400, message: 'Malformed request body' } });
  });

  it('answers HEAD on a token like GET but without a body', async () => {
    const res = await fetch(`${sim.keystoneUrl}/auth/tokens`, {
      method: 'HEAD',
      headers: { 'X-Auth-Token': api.token, 'X-Subject-Token': api.token },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('serves Nova’s version document with the 2.93 maximum and negotiates OpenStack-API-Version: compute', async () => {
    const v = await call('GET', `${sim.url}/compute/v2.1`);
    expect(v.json.version).toMatchObject({ id: 'v2.1', version: '2.93', min_version: '2.1' });
    const r = await call('GET', `${sim.url}/compute/v2.1/servers/detail`, {
      headers: { 'X-Auth-Token': api.token, 'OpenStack-API-Version': 'compute 2.79' },
    });
    expect(r.headers.get('openstack-api-version')).toBe('compute 2.79');
    expect(r.headers.get('x-openstack-nova-api-version')).toBe('2.79');
    expect(r.headers.get('x-openstack-request-id')).toMatch(/^req-/);
  });

  it('writes the region into the catalog and cloud.conf, named sections included', async () => {
    const t = await call('POST', `${sim.keystoneUrl}/auth/tokens`, { body: passwordAuth(sim) });
    expect(t.json.token.catalog[0].endpoints[0].region).toBe('RegionTwo');
    expect(sim.cloudConf()).toContain('region=RegionTwo');
    expect(sim.cloudConf({ cloudName: 'east' })).toMatch(/^\[Global "east"\]\n/);
  });

  it('rejects invalid options when starting', async () => {
    await expect(startSimulator({ delayScale: -1 })).rejects.toThrow(/delayScale/);
    await expect(startSimulator({ delays: { attach: Number.NaN } })).rejects.toThrow(/delays.attach/);
  });
});

describeIf('simulator over https', { commands: ['openssl'] }, () => {
  let dir: string;
  let sim: Simulator;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    await execFile('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    sim = await startSimulator({ tls: { cert, key } });
  });
  afterAll(async () => {
    await sim?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with the given certificate and names it as ca-file in cloud.conf', async () => {
    expect(sim.url).toMatch(/^https:\/\//);
    const conf = sim.cloudConf();
    const ca = /^ca-file=(.+)$/m.exec(conf)![1];
    const caPem = await readFile(ca, 'utf8');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${sim.url}/volume/`, { ca: caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(300);
  });
});
