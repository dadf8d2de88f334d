/** Cinder volumes of the simulator: status machine and history, illegal actions, quota, microversions, paging. */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, call, waitFor } from './client';

const STEP_MS = 50;
/** Timer slack: a transition fires no earlier than its delay and, on an idle machine, well within this. */
const SLACK_MS = 40;

describe('simulator cinder volumes', () => {
  let sim: Simulator;
  let api: Api;
  beforeAll(async () => {
    sim = await startSimulator({
      delays: { volumeCreate: STEP_MS, volumeDelete: STEP_MS, volumeExtend: STEP_MS },
      quota: { volumes: 30, gigabytes: 60 },
    });
    api = await Api.login(sim);
  });
  afterAll(() => sim.stop());

  it('creates a volume in creating, reaches available after the delay and records both moments', async () => {
    const t0 = Date.now();
    const r = await api.cinder('POST', '/volumes', { volume: { name: 'first', size: 2, metadata: { a: '1' } } });
    expect(r.status).toBe(202);
    expect(r.json.volume).toMatchObject({
      name: 'first',
      status: 'creating',
      size: 2,
      availability_zone: 'nova',
      volume_type: '__DEFAULT__',
      multiattach: false,
      attachments: [],
      metadata: { a: '1' },
      bootable: 'false',
      snapshot_id: null,
      source_volid: null,
    });
    expect(r.json.volume.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const id = r.json.volume.id as string;
    expect((await api.cinder('GET', `/volumes/${id}`)).json.volume.status).toBe('creating');
    await api.volumeStatus(id, 'available');
    const h = sim.getVolume(id)!.statusHistory;
    expect(h.map((x) => x.status)).toEqual(['creating', 'available']);
    expect(h[1].at - h[0].at).toBeGreaterThanOrEqual(STEP_MS - 2);
    expect(h[1].at - t0).toBeLessThan(STEP_MS + SLACK_MS + 50);
    expect((await api.cinder('GET', `/volumes/${id}`)).json.volume.status).toBe('available');
  });

  it('deletes through deleting and then answers 404 itemNotFound, keeping the history as a tombstone', async () => {
    const id = await api.createVolume({ name: 'gone' });
    await api.volumeStatus(id, 'available');
    expect((await api.cinder('DELETE', `/volumes/${id}`)).status).toBe(202);
    expect(sim.getVolume(id)?.status).toBe('deleting');
    await waitFor(() => sim.getVolume(id) === undefined, 2000, 'volume to vanish');
    const r = await api.cinder('GET', `/volumes/${id}`);
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ itemNotFound: { code: 404, message: `Volume ${id} could not be found.` } });
    expect(sim.volumeHistory(id).map((x) => x.status)).toEqual(['creating', 'available', 'deleting', 'deleted']);
  });

  it('refuses to delete a volume while creating or in-use with Cinder’s 400 body', async () => {
    const id = await api.createVolume({ name: 'busy' });
    const creating = await api.cinder('DELETE', `/volumes/${id}`);
    expect(creating.status).toBe(400);
    expect(creating.json.badRequest.code).toBe(400);
    expect(creating.json.badRequest.message).toMatch(/^Invalid volume: Volume status must be available or error/);
    await api.volumeStatus(id, 'available');
    const att = await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
      volumeAttachment: { volumeId: id },
    });
    expect(att.status).toBe(200);
    await api.volumeStatus(id, 'in-use');
    const inUse = await api.cinder('DELETE', `/volumes/${id}`);
    expect(inUse.status).toBe(400);
    expect(inUse.json.badRequest.message).toContain('must not be migrating, attached');
  });

  it('ends a create in error with a user message when failNextVolumeCreate names it', async () => {
    sim.failNextVolumeCreate('doomed', 'no valid backend was found');
    const other = await api.createVolume({ name: 'fine' });
    const id = await api.createVolume({ name: 'doomed' });
    await api.volumeStatus(id, 'error');
    await api.volumeStatus(other, 'available');
    const msgs = await api.cinder('GET', `/messages?resource_uuid=${id}`, undefined, '3.3');
    expect(msgs.status).toBe(200);
    expect(msgs.json.messages).toEqual([
      expect.objectContaining({
        resource_uuid: id,
        user_message: 'no valid backend was found',
        message_level: 'ERROR',
      }),
    ]);
    expect((await api.cinder('DELETE', `/volumes/${id}`)).status).toBe(202);
  });

  it('answers 413 overLimit with Retry-After when the gigabytes quota would be exceeded', async () => {
    const r = await api.cinder('POST', '/volumes', { volume: { size: 61 } });
    expect(r.status).toBe(413);
    expect(r.headers.get('retry-after')).toBe('0');
    expect(r.json.overLimit).toMatchObject({ code: 413, retryAfter: '0' });
    expect(r.json.overLimit.message).toMatch(
      /^VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota\. Requested 61G, quota is 60G/,
    );
  });

  it('answers 404 for an unknown volume type and 400 for an unknown availability zone', async () => {
    expect((await api.cinder('POST', '/volumes', { volume: { size: 1, volume_type: 'gold' } })).status).toBe(404);
    const az = await api.cinder('POST', '/volumes', { volume: { size: 1, availability_zone: 'mars' } });
    expect(az.status).toBe(400);
    expect(az.json.badRequest.message).toContain("Availability zone 'mars' is invalid");
  });

  it('makes volumes of the multiattach type multiattach and lists both types', async () => {
    const types = await api.cinder('GET', '/types');
    expect(types.json.volume_types.map((t: { name: string }) => t.name)).toEqual(['__DEFAULT__', 'multiattach']);
    expect(types.json.volume_types[1].extra_specs).toEqual({ multiattach: '<is> True' });
    const id = await api.createVolume({ volume_type: 'multiattach' });
    expect(sim.getVolume(id)?.multiattach).toBe(true);
    expect((await api.cinder('GET', `/volumes/${id}`)).json.volume.multiattach).toBe(true);
  });

  it('extends an available volume through extending and back to available with the new size', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    const r = await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 3 } });
    expect(r.status).toBe(202);
    expect(sim.getVolume(id)?.status).toBe('extending');
    await api.volumeStatus(id, 'available');
    expect(sim.getVolume(id)?.size).toBe(3);
    const small = await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } });
    expect(small.status).toBe(400);
    expect(small.json.badRequest.message).toContain('New size for extend must be greater than current size');
  });

  it('extends an in-use volume only with microversion 3.42 and echoes the microversion header', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    await api.nova('POST', `/servers/${sim.localServerId}/os-volume_attachments`, {
      volumeAttachment: { volumeId: id },
    });
    await api.volumeStatus(id, 'in-use');
    const old = await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } }, '3.41');
    expect(old.status).toBe(400);
    // Cinder 21 prints its expected-status dict (observed on openstack-loopback (Cinder 21/Nova 26)).
    expect(old.json.badRequest.message).toContain(
      `Volume ${id} status must be '{'status': 'available'}' to extend, currently in-use.`,
    );
    expect(old.headers.get('openstack-api-version')).toBe('volume 3.41');
    const ok = await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } }, '3.42');
    expect(ok.status).toBe(202);
    expect(ok.headers.get('openstack-api-version')).toBe('volume 3.42');
    await api.volumeStatus(id, 'in-use');
    expect(
      sim
        .getVolume(id)
        ?.statusHistory.map((h) => h.status)
        .slice(-2),
    ).toEqual(['extending', 'in-use']);
    expect(sim.getVolume(id)?.size).toBe(2);
  });

  it('ends an extend in error_extending when failNextExtend is armed', async () => {
    const id = await api.createVolume({ size: 1 });
    await api.volumeStatus(id, 'available');
    sim.failNextExtend(id);
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } });
    await api.volumeStatus(id, 'error_extending');
    expect(sim.getVolume(id)?.size).toBe(1);
  });

  it('answers 3.0 without a microversion header and 406 for a version above the maximum', async () => {
    const r = await api.cinder('GET', '/volumes');
    expect(r.headers.get('openstack-api-version')).toBe('volume 3.0');
    const tooNew = await api.cinder('GET', '/volumes', undefined, '3.999');
    expect(tooNew.status).toBe(406);
  });

  it('answers 400 for an unknown action and runs the legacy reserve/attach/detach bookkeeping', async () => {
    const id = await api.createVolume({});
    await api.volumeStatus(id, 'available');
    expect((await api.cinder('POST', `/volumes/${id}/action`, { 'os-frobnicate': {} })).status).toBe(400);
    expect((await api.cinder('POST', `/volumes/${id}/action`, { 'os-reserve': {} })).status).toBe(202);
    expect(sim.getVolume(id)?.status).toBe('attaching');
    expect((await api.cinder('POST', `/volumes/${id}/action`, { 'os-reserve': {} })).status).toBe(400);
    await api.cinder('POST', `/volumes/${id}/action`, {
      'os-attach': { instance_uuid: sim.localServerId, mountpoint: '/dev/vdz' },
    });
    expect(sim.getVolume(id)).toMatchObject({
      status: 'in-use',
      attachments: [{ server_id: sim.localServerId, device: '/dev/vdz' }],
    });
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-begin_detaching': {} });
    expect(sim.getVolume(id)?.status).toBe('detaching');
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-roll_detaching': {} });
    expect(sim.getVolume(id)?.status).toBe('in-use');
    await api.cinder('POST', `/volumes/${id}/action`, { 'os-detach': {} });
    expect(sim.getVolume(id)).toMatchObject({ status: 'available', attachments: [] });
  });

  it('merges metadata on POST, replaces it on PUT and reads it back', async () => {
    const id = await api.createVolume({ metadata: { a: '1' } });
    const post = await api.cinder('POST', `/volumes/${id}/metadata`, { metadata: { b: '2' } });
    expect(post.json.metadata).toEqual({ a: '1', b: '2' });
    await api.cinder('PUT', `/volumes/${id}/metadata`, { metadata: { c: '3' } });
    expect((await api.cinder('GET', `/volumes/${id}/metadata`)).json.metadata).toEqual({ c: '3' });
    expect(sim.counters()['cinder.volume.update-metadata']).toBeGreaterThanOrEqual(2);
  });

  it('reports absolute limits from the quota and current usage', async () => {
    const r = await api.cinder('GET', '/limits');
    expect(r.status).toBe(200);
    const abs = r.json.limits.absolute;
    expect(abs).toMatchObject({
      maxTotalVolumes: 30,
      maxTotalVolumeGigabytes: 60,
      totalVolumesUsed: sim.listVolumes().length,
    });
  });

  it('answers version discovery with 300 at /volume/ and the 3.70 maximum', async () => {
    const r = await call('GET', `${sim.url}/volume/`);
    expect(r.status).toBe(300);
    expect(r.json.versions[0]).toMatchObject({ id: 'v3.0', status: 'CURRENT', version: '3.70', min_version: '3.0' });
  });
});

describe('simulator cinder volume listing', () => {
  let sim: Simulator;
  let api: Api;
  let ids: string[];
  beforeAll(async () => {
    sim = await startSimulator({ quota: { volumes: 5 } });
    api = await Api.login(sim);
    ids = [];
    for (const [i, name] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      ids.push(await api.createVolume({ name, metadata: { idx: String(i), parity: i % 2 ? 'odd' : 'even' } }));
    }
    for (const id of ids) await api.volumeStatus(id, 'available');
  });
  afterAll(() => sim.stop());

  it('pages newest first with limit and marker, giving a next link on every full page', async () => {
    const p1 = await api.cinder('GET', '/volumes/detail?limit=2');
    expect(p1.json.volumes.map((v: { name: string }) => v.name)).toEqual(['e', 'd']);
    const next = new URL(p1.json.volumes_links[0].href);
    expect(p1.json.volumes_links[0].rel).toBe('next');
    expect(next.pathname).toBe(`/volume/v3/${sim.credentials.projectId}/volumes/detail`);
    expect(next.searchParams.get('marker')).toBe(ids[3]);
    const p2 = await call('GET', next.toString(), { headers: { 'X-Auth-Token': api.token } });
    expect(p2.json.volumes.map((v: { name: string }) => v.name)).toEqual(['c', 'b']);
    const p3 = await api.cinder('GET', `/volumes/detail?limit=2&marker=${ids[1]}`);
    expect(p3.json.volumes.map((v: { name: string }) => v.name)).toEqual(['a']);
    expect(p3.json.volumes_links).toBeUndefined();
  });

  // Observed on openstack-loopback (Cinder 21/Nova 26): the volume's own 404, not a 400.
  it('answers 404 itemNotFound naming the volume for a marker that names no volume', async () => {
    const r = await api.cinder('GET', '/volumes/detail?marker=00000000-0000-0000-0000-000000000000');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      itemNotFound: { code: 404, message: 'Volume 00000000-0000-0000-0000-000000000000 could not be found.' },
    });
  });

  it('filters by name, status and metadata, and lists summaries without detail', async () => {
    expect((await api.cinder('GET', '/volumes/detail?name=c')).json.volumes.map((v: { id: string }) => v.id)).toEqual([
      ids[2],
    ]);
    expect((await api.cinder('GET', '/volumes/detail?status=creating')).json.volumes).toEqual([]);
    const meta = encodeURIComponent(JSON.stringify({ parity: 'odd' }));
    expect(
      (await api.cinder('GET', `/volumes/detail?metadata=${meta}`)).json.volumes.map((v: { name: string }) => v.name),
    ).toEqual(['d', 'b']);
    const summary = await api.cinder('GET', '/volumes');
    expect(Object.keys(summary.json.volumes[0]).sort()).toEqual(['id', 'links', 'name']);
  });

  it('answers 413 VolumeLimitExceeded once the volumes quota is used up', async () => {
    const r = await api.cinder('POST', '/volumes', { volume: { size: 1 } });
    expect(r.status).toBe(413);
    expect(r.json.overLimit.message).toMatch(/^VolumeLimitExceeded: Maximum number of volumes allowed \(5\) exceeded/);
  });
});
