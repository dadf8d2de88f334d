/** ControllerPublishVolume and ControllerUnpublishVolume against the simulator's Nova and Cinder over gRPC. */
import {
  BLOCK_RWX,
  MOUNT_RWO,
  type ControllerWorld,
  codeOf,
  createReq,
  startControllerWorld,
} from '../helpers/sim-controller';

const DELAYS = { volumeCreate: 20, volumeDelete: 20, attach: 100, detach: 60 };
let w: ControllerWorld;
let volumeId: string;
let node: string;
beforeEach(async () => {
  w = await startControllerWorld({ sim: { delays: DELAYS } });
  volumeId = (await w.call('CreateVolume', createReq('pvc-pub'))).volume.volume_id;
  node = w.sim.localServerId;
});
afterEach(() => w.close());

const publish = (v: string, n: string, over: object = {}) =>
  w.call('ControllerPublishVolume', { volume_id: v, node_id: n, volume_capability: MOUNT_RWO, ...over });
const unpublish = (v: string, n: string) => w.call('ControllerUnpublishVolume', { volume_id: v, node_id: n });

describe('ControllerPublishVolume', () => {
  it('attaches, waits for in-use and returns the DevicePath', async () => {
    const r = await publish(volumeId, node);
    expect(r.publish_context.DevicePath).toMatch(/^\/dev\/vd[b-z]$/);
    const v = w.sim.getVolume(volumeId)!;
    expect(v.status).toBe('in-use');
    expect(v.attachments.map((a) => a.server_id)).toEqual([node]);
  });

  it('succeeds at once when already attached to this node, attaching nothing twice', async () => {
    await publish(volumeId, node);
    const since = Date.now();
    w.sim.resetCounters();
    const r = await publish(volumeId, node);
    expect(Date.now() - since).toBeLessThan(200);
    expect(r.publish_context.DevicePath).toMatch(/^\/dev\/vd[b-z]$/);
    // Its attach, sent first, is refused by Nova without effect; the read that follows finds the attachment.
    expect(w.count('nova.attachment.create')).toBeLessThanOrEqual(1);
    expect(w.sim.volumeHistory(volumeId).filter((x) => x.at >= since)).toEqual([]);
    expect(w.sim.getVolume(volumeId)!.attachments).toHaveLength(1);
  });

  it('answers ALREADY_EXISTS for a second publish to the same node with the other readonly, either way round', async () => {
    await publish(volumeId, node);
    const e = await codeOf(publish(volumeId, node, { readonly: true }));
    expect(e.code).toBe('ALREADY_EXISTS');
    expect(e.details).toContain('read-write');
    // The same mode again is the same publish.
    await expect(publish(volumeId, node)).resolves.toBeDefined();
    await unpublish(volumeId, node);
    await publish(volumeId, node, { readonly: true });
    await expect(publish(volumeId, node, { readonly: true })).resolves.toBeDefined();
    expect((await codeOf(publish(volumeId, node))).code).toBe('ALREADY_EXISTS');
    // Unpublished, a read-write publish replaces the read-only record.
    await unpublish(volumeId, node);
    await publish(volumeId, node);
    await expect(publish(volumeId, node)).resolves.toBeDefined();
    expect(w.sim.getVolume(volumeId)!.attachments).toHaveLength(1);
  });

  it('sends the attach before reading the volume: one Nova POST and no Cinder read before it', async () => {
    w.sim.resetCounters();
    await publish(volumeId, node);
    expect(w.sim.getVolume(volumeId)!.status).toBe('in-use');
    expect(w.count('nova.attachment.create')).toBe(1);
    expect(w.count('nova.server.get')).toBe(0);
    // The one read is the wait's, after its first pause (250 ms; the attach takes 100 ms here): none came before.
    expect(w.count('cinder.volume.get')).toBe(1);
  });

  it('reads first after a refused attach: a multiattach volume is attached with the 2.60 microversion', async () => {
    const multi = (
      await w.call(
        'CreateVolume',
        createReq('pvc-multi-first', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } }),
      )
    ).volume.volume_id;
    w.sim.resetCounters();
    await publish(multi, node, { volume_capability: BLOCK_RWX });
    expect(w.sim.getVolume(multi)!.attachments.map((a) => a.server_id)).toEqual([node]);
    // The first POST (no microversion) is refused; the read-first path sends the second with 2.60.
    expect(w.count('nova.attachment.create')).toBe(2);
  });

  it('polls at most 5 GETs over a 1 s attach', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, attach: 1000 } } });
    volumeId = (await w.call('CreateVolume', createReq('pvc-slow-attach'))).volume.volume_id;
    w.sim.resetCounters();
    await publish(volumeId, w.sim.localServerId);
    // One GET before the attach, then the wait's polls.
    expect(w.count('cinder.volume.get')).toBeLessThanOrEqual(1 + 5);
  });

  it('accepts readonly publishing', async () => {
    await expect(publish(volumeId, node, { readonly: true })).resolves.toHaveProperty('publish_context');
  });

  it('returns NOT_FOUND for an unknown volume', async () => {
    expect((await codeOf(publish('00000000-0000-0000-0000-000000000000', node))).code).toBe('NOT_FOUND');
  });

  it('returns NOT_FOUND for an unknown node, naming node_id', async () => {
    const e = await codeOf(publish(volumeId, 'no-such-server'));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.details).toContain('node_id');
  });

  it('returns FAILED_PRECONDITION when attached to another node and not multiattach', async () => {
    const other = w.sim.addServer({ name: 'other' });
    await publish(volumeId, other);
    expect((await codeOf(publish(volumeId, node))).code).toBe('FAILED_PRECONDITION');
  });

  it('attaches a multiattach volume to two nodes', async () => {
    const multi = (
      await w.call(
        'CreateVolume',
        createReq('pvc-multi', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } }),
      )
    ).volume.volume_id;
    const other = w.sim.addServer({ name: 'other' });
    await publish(multi, node, { volume_capability: BLOCK_RWX });
    await publish(multi, other, { volume_capability: BLOCK_RWX });
    expect(
      w.sim
        .getVolume(multi)!
        .attachments.map((a) => a.server_id)
        .sort(),
    ).toEqual([node, other].sort());
    await unpublish(multi, other);
    expect(w.sim.getVolume(multi)!.attachments.map((a) => a.server_id)).toEqual([node]);
    expect(w.sim.getVolume(multi)!.status).toBe('in-use');
  });

  it('returns RESOURCE_EXHAUSTED when the node is at its attach limit', async () => {
    const full = w.sim.addServer({ name: 'full', maxVolumes: 0 });
    expect((await codeOf(publish(volumeId, full))).code).toBe('RESOURCE_EXHAUSTED');
  });

  it('returns FAILED_PRECONDITION for a volume in error', async () => {
    w.sim.setVolumeStatus(volumeId, 'error');
    expect((await codeOf(publish(volumeId, node))).code).toBe('FAILED_PRECONDITION');
  });

  it('fails fast when the attach falls back to available', async () => {
    w.sim.failNextAttach(volumeId);
    const started = Date.now();
    const e = await codeOf(publish(volumeId, node));
    expect(e.code).toBe('INTERNAL');
    expect(e.details).toContain('fell back to available');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('succeeds on a retry after the deadline passed mid-attach', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, attach: 600 } } });
    volumeId = (await w.call('CreateVolume', createReq('pvc-retry'))).volume.volume_id;
    const e = await codeOf(
      w.call(
        'ControllerPublishVolume',
        { volume_id: volumeId, node_id: w.sim.localServerId, volume_capability: MOUNT_RWO },
        200,
      ),
    );
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    const since = Date.now();
    await publish(volumeId, w.sim.localServerId);
    expect(w.sim.getVolume(volumeId)!.attachments).toHaveLength(1);
    // The retry's own attach is refused (the volume is reserved for this server): the first one is the only one.
    expect(w.count('nova.attachment.create')).toBeLessThanOrEqual(2);
    expect(w.sim.volumeHistory(volumeId).filter((x) => x.at >= since && x.status === 'reserved')).toEqual([]);
  });

  it.each([
    ['volume_id', { volume_id: '' }],
    ['node_id', { node_id: '' }],
    ['volume_capability', { volume_capability: null }],
  ])('returns INVALID_ARGUMENT naming %s when it is missing', async (field, over) => {
    const e = await codeOf(
      w.call('ControllerPublishVolume', { volume_id: volumeId, node_id: node, volume_capability: MOUNT_RWO, ...over }),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toContain(field);
  });
});

describe('ControllerUnpublishVolume', () => {
  it('detaches and waits for available, and succeeds when called twice', async () => {
    await publish(volumeId, node);
    await unpublish(volumeId, node);
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    await unpublish(volumeId, node);
  });

  it('succeeds for an unknown volume or node', async () => {
    await unpublish('00000000-0000-0000-0000-000000000000', node);
    await unpublish(volumeId, 'no-such-server');
  });

  it('succeeds when the server was deleted while attached', async () => {
    const doomed = w.sim.addServer({ name: 'doomed' });
    await publish(volumeId, doomed);
    w.sim.deleteServer(doomed);
    await unpublish(volumeId, doomed);
  });

  it("waits out a detach already in progress: the retry's own detach is refused and nothing is detached twice", async () => {
    await publish(volumeId, node);
    const since = Date.now();
    await codeOf(w.call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node }, 40));
    expect(w.sim.getVolume(volumeId)!.status).toBe('detaching');
    w.sim.resetCounters();
    await unpublish(volumeId, node);
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    expect(w.count('nova.attachment.delete')).toBeLessThanOrEqual(1);
    expect(w.sim.volumeHistory(volumeId).filter((x) => x.at >= since && x.status === 'detaching')).toHaveLength(1);
  });

  it('sends the detach before reading the volume: one Nova DELETE and no Cinder read before it', async () => {
    await publish(volumeId, node);
    w.sim.resetCounters();
    await unpublish(volumeId, node);
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    expect(w.count('nova.attachment.delete')).toBe(1);
    // The one read is the wait's, after its first pause (250 ms; the detach takes 30 ms here): none came before.
    expect(w.count('cinder.volume.get')).toBe(1);
  });

  it('detaches an attach that its timed-out publish left running', async () => {
    await w.close();
    w = await startControllerWorld({ sim: { delays: { ...DELAYS, attach: 400 } } });
    volumeId = (await w.call('CreateVolume', createReq('pvc-left'))).volume.volume_id;
    await codeOf(
      w.call(
        'ControllerPublishVolume',
        { volume_id: volumeId, node_id: w.sim.localServerId, volume_capability: MOUNT_RWO },
        100,
      ),
    );
    expect(['reserved', 'attaching']).toContain(w.sim.getVolume(volumeId)!.status);
    await unpublish(volumeId, w.sim.localServerId);
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    expect(w.sim.getVolume(volumeId)!.attachments).toHaveLength(0);
  });

  it('unreserves a volume left reserved without any attachment, handing it back as available (reference #2553)', async () => {
    w.sim.setVolumeStatus(volumeId, 'reserved');
    w.sim.resetCounters();
    await expect(unpublish(volumeId, node)).resolves.toEqual({});
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
    expect(w.sim.getVolume(volumeId)!.attachments).toHaveLength(0);
    expect(w.count('cinder.volume.action')).toBe(1);
    // The detach sent first found no attachment in Nova (404) and changed nothing.
    expect(w.count('nova.attachment.delete')).toBeLessThanOrEqual(1);
    // Nothing is left to do on a second call.
    w.sim.resetCounters();
    await expect(unpublish(volumeId, node)).resolves.toEqual({});
    expect(w.count('cinder.volume.action')).toBe(0);
  });

  it('detaches from every node when node_id is empty', async () => {
    await publish(volumeId, node);
    await w.call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: '' });
    expect(w.sim.getVolume(volumeId)!.status).toBe('available');
  });
});
