/** Nova and the metadata service of the simulator: servers, attach/detach status machine, multiattach, limits. */
import { startSimulator, type Simulator } from '../../src/simulator';
import { Api, call, waitFor } from './client';

const ATTACH_MS = 60;
const DETACH_MS = 40;

describe('simulator nova', () => {
  let sim: Simulator;
  let api: Api;
  let other: string;
  beforeAll(async () => {
    sim = await startSimulator({
      delays: { attach: ATTACH_MS, detach: DETACH_MS },
      localServer: { name: 'node-a', maxVolumes: 2 },
    });
    api = await Api.login(sim);
    other = sim.addServer({ name: 'node-b' });
  });
  afterAll(() => sim.stop());

  const attachments = (server: string) => `/servers/${server}/os-volume_attachments`;

  it('shows the local server ACTIVE in its AZ and answers 404 itemNotFound for an unknown one', async () => {
    const r = await api.nova('GET', `/servers/${sim.localServerId}`);
    expect(r.status).toBe(200);
    expect(r.json.server).toMatchObject({
      id: sim.localServerId,
      name: 'node-a',
      status: 'ACTIVE',
      'OS-EXT-AZ:availability_zone': 'nova',
    });
    const missing = await api.nova('GET', '/servers/00000000-0000-0000-0000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({
      itemNotFound: { code: 404, message: 'Instance 00000000-0000-0000-0000-000000000000 could not be found.' },
    });
    const detail = await api.nova('GET', '/servers/detail');
    expect(detail.json.servers.map((s: { name: string }) => s.name).sort()).toEqual(['node-a', 'node-b']);
  });

  it('attaches through reserved, attaching and in-use over the attach delay, then detaches through detaching', async () => {
    const vol = await api.createVolume({ name: 'att' });
    await api.volumeStatus(vol, 'available');
    const t0 = Date.now();
    const r = await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vol } });
    expect(r.status).toBe(200);
    expect(r.json.volumeAttachment).toEqual({
      id: vol,
      serverId: sim.localServerId,
      volumeId: vol,
      device: '/dev/vdb',
    });
    expect(sim.getVolume(vol)?.status).toBe('reserved');
    expect((await api.cinder('GET', `/volumes/${vol}`)).json.volume.attachments).toEqual([]);
    await api.volumeStatus(vol, 'in-use');
    const h = sim.getVolume(vol)!.statusHistory;
    expect(h.map((x) => x.status)).toEqual(['creating', 'available', 'reserved', 'attaching', 'in-use']);
    expect(h[4].at - t0).toBeGreaterThanOrEqual(ATTACH_MS - 2);
    const shown = (await api.cinder('GET', `/volumes/${vol}`)).json.volume;
    expect(shown.attachments).toEqual([
      expect.objectContaining({
        server_id: sim.localServerId,
        device: '/dev/vdb',
        volume_id: vol,
        attachment_id: expect.any(String),
      }),
    ]);
    const list = await api.nova('GET', attachments(sim.localServerId));
    expect(list.json.volumeAttachments).toEqual([
      { id: vol, volumeId: vol, serverId: sim.localServerId, device: '/dev/vdb' },
    ]);

    const d = await api.nova('DELETE', `${attachments(sim.localServerId)}/${vol}`);
    expect(d.status).toBe(202);
    expect(sim.getVolume(vol)?.status).toBe('detaching');
    await api.volumeStatus(vol, 'available');
    expect(sim.getVolume(vol)?.attachments).toEqual([]);
    expect((await api.nova('GET', `${attachments(sim.localServerId)}/${vol}`)).status).toBe(404);
  });

  it('refuses a second server for a non-multiattach in-use volume with 400', async () => {
    const vol = await api.createVolume({});
    await api.volumeStatus(vol, 'available');
    await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vol } });
    await api.volumeStatus(vol, 'in-use');
    const r = await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: vol } });
    expect(r.status).toBe(400);
    expect(r.json.badRequest.message).toContain(
      'status must be available or downloading to reserve, but the current status is in-use',
    );
    await api.nova('DELETE', `${attachments(sim.localServerId)}/${vol}`);
    await api.volumeStatus(vol, 'available');
  });

  it('attaches a multiattach volume to two servers only with microversion 2.60', async () => {
    const vol = await api.createVolume({ volume_type: 'multiattach' });
    await api.volumeStatus(vol, 'available');
    const old = await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vol } });
    expect(old.status).toBe(400);
    expect(old.json.badRequest.message).toContain('2.60');
    const first = await api.nova(
      'POST',
      attachments(sim.localServerId),
      { volumeAttachment: { volumeId: vol } },
      '2.60',
    );
    expect(first.status).toBe(200);
    expect(first.headers.get('x-openstack-nova-api-version')).toBe('2.60');
    await api.volumeStatus(vol, 'in-use');
    const second = await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: vol } }, '2.60');
    expect(second.status).toBe(200);
    await waitFor(() => sim.getVolume(vol)?.attachments.length === 2, 2000, 'two attachments');
    await api.nova('DELETE', `${attachments(other)}/${vol}`, undefined, '2.60');
    await waitFor(() => sim.getVolume(vol)?.attachments.length === 1, 2000, 'one attachment');
    expect(sim.getVolume(vol)?.status).toBe('in-use');
    await api.nova('DELETE', `${attachments(sim.localServerId)}/${vol}`);
    await api.volumeStatus(vol, 'available');
  });

  it('answers 403 like Nova’s TooManyDiskDevices past the server’s attach limit', async () => {
    const vols = [await api.createVolume({}), await api.createVolume({}), await api.createVolume({})];
    for (const v of vols) await api.volumeStatus(v, 'available');
    expect(
      (await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vols[0] } })).status,
    ).toBe(200);
    expect(
      (await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vols[1] } })).status,
    ).toBe(200);
    const r = await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vols[2] } });
    expect(r.status).toBe(403);
    expect(r.json.forbidden.message).toBe(
      'The maximum allowed number of disk devices (2) to attach to a single instance has been exceeded.',
    );
    for (const v of vols.slice(0, 2)) await api.volumeStatus(v, 'in-use');
    for (const v of vols.slice(0, 2)) await api.nova('DELETE', `${attachments(sim.localServerId)}/${v}`);
    for (const v of vols.slice(0, 2)) await api.volumeStatus(v, 'available');
  });

  it('answers 400 for a volume that is not available and 404 for an unknown volume or server', async () => {
    const vol = await api.createVolume({});
    sim.setVolumeStatus(vol, 'error');
    const r = await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: vol } });
    expect(r.status).toBe(400);
    expect(r.json.badRequest.message).toContain('current status is error');
    expect((await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: 'nope' } })).status).toBe(404);
    expect((await api.nova('POST', attachments('nope'), { volumeAttachment: { volumeId: vol } })).status).toBe(404);
  });

  it('falls back to available when failNextAttach is armed', async () => {
    const vol = await api.createVolume({});
    await api.volumeStatus(vol, 'available');
    sim.failNextAttach(vol);
    expect((await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: vol } })).status).toBe(200);
    await waitFor(() => (sim.getVolume(vol)?.statusHistory.length ?? 0) >= 5, 2000, 'attach to end');
    expect(
      sim
        .getVolume(vol)
        ?.statusHistory.map((h) => h.status)
        .slice(-3),
    ).toEqual(['reserved', 'attaching', 'available']);
    expect((await api.nova('GET', attachments(other))).json.volumeAttachments).toEqual([]);
  });

  it('refuses to detach while the attach is still in progress', async () => {
    const vol = await api.createVolume({});
    await api.volumeStatus(vol, 'available');
    await api.nova('POST', attachments(other), { volumeAttachment: { volumeId: vol } });
    const r = await api.nova('DELETE', `${attachments(other)}/${vol}`);
    expect(r.status).toBe(400);
    await api.volumeStatus(vol, 'in-use');
  });

  it('leaves Cinder attachments dangling when a server is deleted', async () => {
    const doomed = sim.addServer({ name: 'doomed' });
    const vol = await api.createVolume({});
    await api.volumeStatus(vol, 'available');
    await api.nova('POST', attachments(doomed), { volumeAttachment: { volumeId: vol } });
    await api.volumeStatus(vol, 'in-use');
    sim.deleteServer(doomed);
    expect((await api.nova('GET', `/servers/${doomed}`)).status).toBe(404);
    expect(sim.getVolume(vol)).toMatchObject({ status: 'in-use', attachments: [{ server_id: doomed }] });
  });

  it('serves meta_data.json for the local server with its attached devices', async () => {
    const vol = await api.createVolume({});
    await api.volumeStatus(vol, 'available');
    await api.nova('POST', attachments(sim.localServerId), { volumeAttachment: { volumeId: vol } });
    const r = await call('GET', `${sim.metadataUrl}/openstack/latest/meta_data.json`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ uuid: sim.localServerId, name: 'node-a', availability_zone: 'nova' });
    expect(r.json.devices).toEqual([
      expect.objectContaining({ type: 'disk', bus: 'virtio', serial: vol, path: '/dev/vdb' }),
    ]);
    expect(sim.counters()['metadata.get']).toBe(1);
  });
});
