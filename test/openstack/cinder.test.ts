import { Status } from '../../src/errors';
import { CinderClient, type CinderVolume } from '../../src/openstack/cinder';
import { isNotFound } from '../../src/openstack/errors';
import { HttpClient } from '../../src/openstack/http';
import { type ServiceAuth } from '../../src/openstack/keystone';
import { startSimulator, type Simulator } from '../../src/simulator';
import { type LocalServer, json, startLocalServer } from './local-server';
import { SIM_REGION, type TestClients, clientsFor, passwordAuth, waitFor } from './sim-clients';
import { openStackFailure } from '../helpers/openstack-failure';

const failure = openStackFailure;

describe('CinderClient against the simulator', () => {
  let sim: Simulator;
  let c: TestClients;
  const volumeIs = (id: string, status: string) =>
    waitFor(
      () => c.cinder.getVolume(id),
      (v) => v.status === status,
    );
  const newVolume = async (name: string, size = 1): Promise<CinderVolume> => {
    const v = await c.cinder.createVolume({ name, size });
    return volumeIs(v.id, 'available');
  };

  beforeAll(async () => {
    sim = await startSimulator({ region: SIM_REGION, quota: { volumes: 50, gigabytes: 100, snapshots: 50 } });
  });
  afterAll(() => sim.stop());
  beforeEach(() => {
    sim.clearFaults();
    sim.resetCounters();
    c = clientsFor(passwordAuth(sim));
  });

  it('creates a volume with name, size, AZ, metadata and scheduler hints, then gets it', async () => {
    const v = await c.cinder.createVolume({
      name: 'pvc-create',
      size: 2,
      availabilityZone: 'nova',
      metadata: { 'csi.storage.k8s.io/pvc/name': 'data' },
      schedulerHints: { same_host: [] },
    });
    expect(['creating', 'available']).toContain(v.status);
    const got = await volumeIs(v.id, 'available');
    expect(got).toMatchObject({
      id: v.id,
      name: 'pvc-create',
      size: 2,
      availability_zone: 'nova',
      metadata: { 'csi.storage.k8s.io/pvc/name': 'data' },
      attachments: [],
    });
    expect(sim.getVolume(v.id)?.size).toBe(2);
  });

  it('creates a volume from a snapshot and from another volume', async () => {
    const src = await newVolume('pvc-src');
    const snap = await c.cinder.createSnapshot({ volumeId: src.id, name: 'snap-src' });
    await waitFor(
      () => c.cinder.getSnapshot(snap.id),
      (s) => s.status === 'available',
    );
    const fromSnap = await c.cinder.createVolume({ name: 'pvc-from-snap', size: 1, snapshotId: snap.id });
    const fromVol = await c.cinder.createVolume({ name: 'pvc-from-vol', size: 1, sourceVolumeId: src.id });
    expect((await volumeIs(fromSnap.id, 'available')).snapshot_id).toBe(snap.id);
    expect((await volumeIs(fromVol.id, 'available')).source_volid).toBe(src.id);
  });

  it('pages through volumes with limit and marker', async () => {
    for (const n of ['page-a', 'page-b', 'page-c']) await c.cinder.createVolume({ name: n, size: 1 });
    const total = sim.listVolumes().length;
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await c.cinder.listVolumes({ limit: 2, marker });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((v) => v.id));
      marker = page.nextMarker;
      pages++;
    } while (marker && pages < 100);
    expect(new Set(seen).size).toBe(total);
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(total / 2));
  });

  it('lists volumes by exact name', async () => {
    const v = await c.cinder.createVolume({ name: 'by-name-1', size: 1 });
    await c.cinder.createVolume({ name: 'by-name-10', size: 1 });
    const found = await c.cinder.listVolumesByName('by-name-1');
    expect(found.map((x) => x.id)).toEqual([v.id]);
    expect(await c.cinder.listVolumesByName('no-such-name')).toEqual([]);
  });

  it('extends a volume and merges its metadata', async () => {
    const v = await newVolume('pvc-extend');
    await c.cinder.extendVolume(v.id, 3);
    expect(
      (
        await waitFor(
          () => c.cinder.getVolume(v.id),
          (x) => x.size === 3 && x.status === 'available',
        )
      ).size,
    ).toBe(3);
    await c.cinder.updateVolumeMetadata(v.id, { a: '1' });
    expect(await c.cinder.updateVolumeMetadata(v.id, { b: '2' })).toEqual({ a: '1', b: '2' });
  });

  it('deletes a volume; getting or deleting it again is NOT_FOUND', async () => {
    const v = await newVolume('pvc-delete');
    await c.cinder.deleteVolume(v.id);
    await waitFor(
      async () => sim.getVolume(v.id),
      (x) => x === undefined,
    );
    const e = await failure(c.cinder.getVolume(v.id));
    expect(e.code).toBe(Status.NOT_FOUND);
    expect(e.serviceMessage).toContain(v.id);
    expect(isNotFound(await failure(c.cinder.deleteVolume(v.id)))).toBe(true);
  });

  // Real Cinder answers an unknown marker with the item's 404 (observed on openstack-loopback (Cinder 21/Nova 26)).
  it('turns the 404 of an unknown list marker into a bad request naming the marker', async () => {
    const marker = '00000000-0000-0000-0000-000000000000';
    for (const list of [() => c.cinder.listVolumes({ marker }), () => c.cinder.listSnapshots({ marker })]) {
      const e = await failure(list());
      expect(e.kind).toBe('bad-request');
      expect(e.code).toBe(Status.INVALID_ARGUMENT);
      expect(e.status).toBe(404);
      expect(e.message).toContain(`marker ${marker} is unknown`);
    }
  });

  it('creates, gets, filters, pages and deletes snapshots', async () => {
    const v = await newVolume('pvc-snaps');
    const s1 = await c.cinder.createSnapshot({ volumeId: v.id, name: 'snap-1', force: true, metadata: { k: 'v' } });
    const s2 = await c.cinder.createSnapshot({ volumeId: v.id, name: 'snap-2', force: true });
    await waitFor(
      () => c.cinder.getSnapshot(s1.id),
      (s) => s.status === 'available',
    );
    await waitFor(
      () => c.cinder.getSnapshot(s2.id),
      (s) => s.status === 'available',
    );
    expect((await c.cinder.listSnapshots({ name: 'snap-1' })).items.map((s) => s.id)).toEqual([s1.id]);
    const byVolume = await c.cinder.listSnapshots({ volumeId: v.id, status: 'available' });
    expect(byVolume.items.map((s) => s.id).sort()).toEqual([s1.id, s2.id].sort());
    const first = await c.cinder.listSnapshots({ volumeId: v.id, limit: 1 });
    expect(first.items).toHaveLength(1);
    expect(first.nextMarker).toBeDefined();
    const second = await c.cinder.listSnapshots({ volumeId: v.id, limit: 1, marker: first.nextMarker });
    expect(second.items[0].id).not.toBe(first.items[0].id);
    await c.cinder.deleteSnapshot(s1.id);
    await waitFor(
      async () => sim.getSnapshot(s1.id),
      (x) => x === undefined,
    );
    expect((await failure(c.cinder.getSnapshot(s1.id))).code).toBe(Status.NOT_FOUND);
  });

  it('creates a backup from a snapshot, lists, gets and deletes it, and restores a volume from it', async () => {
    const v = await newVolume('pvc-backup');
    const snap = await c.cinder.createSnapshot({ volumeId: v.id, name: 'snap-for-backup' });
    await waitFor(
      () => c.cinder.getSnapshot(snap.id),
      (s) => s.status === 'available',
    );
    const b = await c.cinder.createBackup({
      volumeId: v.id,
      snapshotId: snap.id,
      name: 'backup-1',
      force: true,
      metadata: { k: 'v' },
    });
    const ready = await waitFor(
      () => c.cinder.getBackup(b.id),
      (x) => x.status === 'available',
    );
    expect(ready).toMatchObject({ id: b.id, name: 'backup-1', volume_id: v.id, snapshot_id: snap.id });
    expect((await c.cinder.listBackups({ name: 'backup-1' })).items.map((x) => x.id)).toEqual([b.id]);
    const restored = await c.cinder.createVolume({ name: 'pvc-restored', size: 1, backupId: b.id });
    expect((await volumeIs(restored.id, 'available')).id).toBe(restored.id);
    await c.cinder.deleteBackup(b.id);
    await waitFor(
      async () => sim.getBackup(b.id),
      (x) => x === undefined,
    );
  });

  it('reads the absolute limits', async () => {
    const before = await c.cinder.getAbsoluteLimits();
    expect(before.maxTotalVolumes).toBe(50);
    expect(before.maxTotalVolumeGigabytes).toBe(100);
    await c.cinder.createVolume({ name: 'pvc-limits', size: 2 });
    const after = await c.cinder.getAbsoluteLimits();
    expect(after.totalVolumesUsed).toBe(before.totalVolumesUsed + 1);
    expect(after.totalGigabytesUsed).toBe(before.totalGigabytesUsed + 2);
  });

  it('answers RESOURCE_EXHAUSTED with the quota message when a volume exceeds the gigabytes quota', async () => {
    const e = await failure(c.cinder.createVolume({ name: 'pvc-huge', size: 1000 }));
    expect(e.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(e.serviceMessage).toMatch(/quota/i);
  });

  it('reads the newest user message of a volume that failed to create, and undefined for one without', async () => {
    sim.failNextVolumeCreate('pvc-fault', 'No valid backend was found. Insufficient free capacity');
    const bad = await c.cinder.createVolume({ name: 'pvc-fault', size: 1 });
    await volumeIs(bad.id, 'error');
    expect(await c.cinder.volumeFaultMessage(bad.id)).toBe('No valid backend was found. Insufficient free capacity');
    expect(c.events.filter((e) => e.operation === 'message.list').map((e) => e.status)).toEqual([200]);
    const good = await newVolume('pvc-no-fault');
    expect(await c.cinder.volumeFaultMessage(good.id)).toBeUndefined();
    expect(sim.counters()['cinder.message.list']).toBe(2);
  });

  it('unreserves a volume left reserved, handing it back as available', async () => {
    const v = await newVolume('pvc-unreserve');
    sim.setVolumeStatus(v.id, 'reserved');
    await c.cinder.unreserveVolume(v.id);
    expect((await volumeIs(v.id, 'available')).attachments).toEqual([]);
  });

  it('retries a GET answered 5xx and never repeats a POST answered 5xx', async () => {
    const v = await newVolume('pvc-retry');
    const before = c.events.length;
    sim.injectFault('cinder.volume.get', { kind: 'http-status', status: 503, times: 2 });
    await expect(c.cinder.getVolume(v.id)).resolves.toMatchObject({ id: v.id });
    expect(
      c.events
        .slice(before)
        .filter((e) => e.operation === 'volume.get')
        .map((e) => e.status),
    ).toEqual([503, 503, 200]);
    const count = sim.listVolumes().length;
    sim.injectFault('cinder.volume.create', { kind: 'http-status', status: 500 });
    const e = await failure(c.cinder.createVolume({ name: 'pvc-once', size: 1 }));
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(c.events.slice(before).filter((ev) => ev.operation === 'volume.create')).toHaveLength(1);
    expect(sim.listVolumes()).toHaveLength(count);
  });

  it('retries a GET whose connection was reset', async () => {
    sim.injectFault('cinder.volume.list', { kind: 'reset' });
    await expect(c.cinder.listVolumes()).resolves.toBeDefined();
    expect(c.events.filter((e) => e.operation === 'volume.list').map((e) => e.error ?? 'ok')).toEqual([
      'ECONNRESET',
      'ok',
    ]);
  });

  it('waits as long as Retry-After says on a 429', async () => {
    await c.keystone.token();
    sim.injectFault('cinder.volume.list', { kind: 'retry-after', status: 429, retryAfterSeconds: 1 });
    const started = Date.now();
    await c.cinder.listVolumes();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up with DEADLINE_EXCEEDED when the signal fires during a slow answer', async () => {
    await c.keystone.token();
    sim.injectFault('cinder.volume.list', { kind: 'delay', delayMs: 3000 });
    const started = Date.now();
    const e = await failure(c.cinder.listVolumes({}, AbortSignal.timeout(150)));
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('CinderClient microversions', () => {
  let server: LocalServer;
  const auth: ServiceAuth = {
    endpoint: async () => server.url + '/v3/p',
    token: async () => 'tok',
    invalidate: () => undefined,
  };
  const versionOf = (i: number) => server.seen[i].headers['openstack-api-version'];
  beforeEach(async () => {
    server = await startLocalServer((r, res) => {
      if (r.url.includes('/volumes/detail')) return json(res, 200, { volumes: [] });
      if (r.url.includes('/backups')) return json(res, 202, { backup: { id: 'b' } });
      if (r.url.endsWith('/action')) return json(res, 202, {});
      return json(res, 202, { volume: { id: 'v' } });
    });
  });
  afterEach(() => server.close());

  it('sends 3.0 by default, 3.34 to list by name, 3.42 to extend and 3.51 for backups', async () => {
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient() });
    await cinder.createVolume({ name: 'n', size: 1 });
    await cinder.listVolumesByName('n');
    await cinder.extendVolume('v', 2);
    await cinder.createVolume({ name: 'n', size: 1, backupId: 'b' });
    await cinder.createBackup({ volumeId: 'v', name: 'b' });
    expect([0, 1, 2, 3, 4].map(versionOf)).toEqual([
      'volume 3.0',
      'volume 3.34',
      'volume 3.42',
      'volume 3.51',
      'volume 3.51',
    ]);
    expect(server.seen[2].body).toBe(JSON.stringify({ 'os-extend': { new_size: 2 } }));
    expect(server.seen[0].headers['x-auth-token']).toBe('tok');
  });

  it('sends no microversion with ignore-volume-microversion, and no backup metadata', async () => {
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient(), ignoreVolumeMicroversion: true });
    await cinder.extendVolume('v', 2);
    await cinder.createBackup({ volumeId: 'v', name: 'b', metadata: { k: 'v' } });
    expect(server.seen.map((r) => r.headers['openstack-api-version'])).toEqual([undefined, undefined]);
    expect(JSON.parse(server.seen[1].body)).toEqual({ backup: { volume_id: 'v', name: 'b' } });
  });

  it('asks for user messages with 3.3 and resource_uuid, and picks the newest', async () => {
    await server.close();
    server = await startLocalServer((r, res) =>
      json(res, 200, {
        messages: [
          { id: 'm1', user_message: 'older', resource_uuid: 'v', created_at: '2024-05-01T10:00:00.000000' },
          { id: 'm2', user_message: 'newest', resource_uuid: 'v', created_at: '2024-05-01T11:00:00.000000' },
        ],
      }),
    );
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient() });
    expect(await cinder.volumeFaultMessage('v')).toBe('newest');
    expect(versionOf(0)).toBe('volume 3.3');
    expect(server.seen[0].url).toBe('/v3/p/messages?resource_uuid=v');
  });

  it.each([404, 406])('answers undefined when the messages API answers %i', async (code) => {
    await server.close();
    server = await startLocalServer((r, res) => json(res, code, { error: { code, message: 'no messages here' } }));
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient() });
    await expect(cinder.volumeFaultMessage('v')).resolves.toBeUndefined();
  });

  it('does not ask for user messages with ignore-volume-microversion (3.0 has none)', async () => {
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient(), ignoreVolumeMicroversion: true });
    await expect(cinder.volumeFaultMessage('v')).resolves.toBeUndefined();
    expect(server.seen).toHaveLength(0);
  });

  it('sends os-unreserve as a volume action', async () => {
    const cinder = new CinderClient({ keystone: auth, http: new HttpClient() });
    await cinder.unreserveVolume('v');
    expect(server.seen[0].url).toBe('/v3/p/volumes/v/action');
    expect(server.seen[0].method).toBe('POST');
    expect(JSON.parse(server.seen[0].body)).toEqual({ 'os-unreserve': {} });
  });
});
