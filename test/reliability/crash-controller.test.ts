/**
 * Crash consistency of the controller (issue #11): the real plugin process is SIGKILLed at each step of
 * CreateVolume, ControllerPublishVolume and ControllerUnpublishVolume, a new one is started on the same
 * socket, and the same request is retried as the sidecars do. The simulator lives in the test process, so
 * what the cloud holds at the end (volumes by name, Cinder attachments, Nova's attachments) is the proof.
 */
import { status } from '@grpc/grpc-js';
import {
  startCrashControllerWorld,
  until,
  type CrashControllerWorld,
  type PluginProcess,
} from '../helpers/crash-controller';
import { GIB, MOUNT_RWO } from '../helpers/sim-controller';

/** Slow enough transitions that each step leaves a window to kill in, and short enough to keep the file fast. */
const DELAYS = { volumeCreate: 1500, attach: 1500, detach: 1500 };
/** A name lookup held this long by the "load balancer" in front of Cinder. */
const STALL_MS = 3000;

describe('the controller survives a SIGKILL at any step; the retry finishes the job exactly once', () => {
  let w: CrashControllerWorld;
  let plugin: PluginProcess;
  const count = (op: string) => w.sim.counters()[op] ?? 0;
  /** How many detaches took effect (the volume entered `detaching`) since `since`: refused requests change nothing. */
  const detachesSince = (id: string, since: number) =>
    w.sim.volumeHistory(id).filter((x) => x.at >= since && x.status === 'detaching').length;
  /** Attaches that took effect: each one reserves the volume in Cinder first. */
  const reservesSince = (id: string, since: number) =>
    w.sim.volumeHistory(id).filter((x) => x.at >= since && x.status === 'reserved').length;
  const named = (name: string) => w.sim.listVolumes().filter((v) => v.name === name);
  const createReq = (name: string) => ({
    name,
    capacity_range: { required_bytes: String(GIB) },
    volume_capabilities: [MOUNT_RWO],
  });
  const publishReq = (volumeId: string) => ({
    volume_id: volumeId,
    node_id: w.sim.localServerId,
    volume_capability: MOUNT_RWO,
    readonly: false,
  });

  /** Starts `rpc` on the current plugin; resolves with the gRPC code it ends with once the plugin dies. */
  function doomed(rpc: string, req: object): Promise<number | undefined> {
    return plugin.call(rpc, req).then(
      () => undefined,
      (e: { code?: number }) => e.code,
    );
  }

  /**
   * SIGKILLs the plugin, checks the call in flight failed as a dead server's does, runs `atCrash` on the
   * state the kill left (before the transitions' delays run out), then starts a new plugin.
   */
  async function crashAndRestart(
    inFlight: Promise<number | undefined>,
    atCrash: () => void = () => undefined,
  ): Promise<void> {
    await plugin.kill();
    atCrash();
    expect(await inFlight).toBe(status.UNAVAILABLE);
    plugin = await w.start();
  }

  /** Repeats `fn` while it fails with ABORTED, as the external-provisioner does (with a shorter backoff). */

  async function retriedWhileAborted(fn: () => Promise<any>): Promise<any> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (e) {
        if ((e as { code?: number }).code !== status.ABORTED || i > 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Cinder and Nova agree the volume is attached to the local server exactly once (or not at all). */
  async function expectAttachedOnce(volumeId: string, attached: boolean): Promise<void> {
    const v = w.sim.getVolume(volumeId)!;
    expect(v.status).toBe(attached ? 'in-use' : 'available');
    expect(v.attachments.map((a) => a.server_id)).toEqual(attached ? [w.sim.localServerId] : []);
    const nova = await w.cloud.nova.listVolumeAttachments(w.sim.localServerId);
    expect(nova.filter((a) => a.volumeId === volumeId)).toHaveLength(attached ? 1 : 0);
  }

  beforeAll(async () => {
    w = await startCrashControllerWorld({ delays: DELAYS });
    plugin = await w.start();
  }, 120_000);
  afterAll(() => w?.close());

  const ids: Record<string, string> = {};

  it('CreateVolume killed during the name lookup, before the POST: the retry creates the one volume', async () => {
    w.sim.injectFault('cinder.volume.list', { kind: 'delay', delayMs: STALL_MS });
    const lists = count('cinder.volume.list');
    const creates = count('cinder.volume.create');
    const call = doomed('CreateVolume', createReq('pvc-before-post'));
    await until('the name lookup to reach Cinder', () => count('cinder.volume.list') > lists);
    await crashAndRestart(call);
    expect(count('cinder.volume.create')).toBe(creates);

    const res = await plugin.call('CreateVolume', createReq('pvc-before-post'));
    expect(named('pvc-before-post').map((v) => [v.id, v.status])).toEqual([[res.volume.volume_id, 'available']]);
    expect(count('cinder.volume.create')).toBe(creates + 1);
    ids.first = res.volume.volume_id;
  });

  it('CreateVolume killed right after the POST (volume creating): the retry returns that volume, no second POST', async () => {
    const creates = count('cinder.volume.create');
    const call = doomed('CreateVolume', createReq('pvc-after-post'));
    await until('Cinder to hold the new volume', () => named('pvc-after-post').length > 0);
    await crashAndRestart(call, () => expect(named('pvc-after-post').map((v) => v.status)).toEqual(['creating']));
    const [made] = named('pvc-after-post');

    const res = await plugin.call('CreateVolume', createReq('pvc-after-post'));
    expect(res.volume.volume_id).toBe(made.id);
    expect(named('pvc-after-post').map((v) => v.status)).toEqual(['available']);
    expect(count('cinder.volume.create')).toBe(creates + 1);
    ids.second = made.id;
  });

  it('CreateVolume killed while waiting for available: the retry waits for the same volume', async () => {
    const creates = count('cinder.volume.create');
    const call = doomed('CreateVolume', createReq('pvc-waiting'));
    await until('Cinder to hold the new volume', () => named('pvc-waiting').length > 0);
    const gets = count('cinder.volume.get');
    await until('the driver to poll the volume', () => count('cinder.volume.get') > gets);
    await crashAndRestart(call, () => expect(named('pvc-waiting').map((v) => v.status)).toEqual(['creating']));
    const [made] = named('pvc-waiting');

    const res = await plugin.call('CreateVolume', createReq('pvc-waiting'));
    expect(res.volume.volume_id).toBe(made.id);
    expect(named('pvc-waiting').map((v) => v.status)).toEqual(['available']);
    expect(count('cinder.volume.create')).toBe(creates + 1);
  });

  it('CreateVolume killed with the POST still on the wire: one volume once the stray POST lands', async () => {
    w.sim.injectFault('cinder.volume.create', { kind: 'delay', delayMs: STALL_MS });
    const creates = count('cinder.volume.create');
    const call = doomed('CreateVolume', createReq('pvc-on-the-wire'));
    await until('the POST to reach Cinder', () => count('cinder.volume.create') > creates);
    await crashAndRestart(call, () => expect(named('pvc-on-the-wire')).toEqual([]));

    const first = await plugin.call('CreateVolume', createReq('pvc-on-the-wire'));
    await until('the stray POST to land', () => named('pvc-on-the-wire').length > 1, STALL_MS * 2);
    // Cinder now has two volumes of one name; the next retries (ABORTED while the stray is still creating,
    // as the provisioner retries) delete the stray and answer with the volume the caller already has.
    const again = await retriedWhileAborted(() => plugin.call('CreateVolume', createReq('pvc-on-the-wire')));
    expect(again.volume.volume_id).toBe(first.volume.volume_id);
    await until('one volume of that name', () => named('pvc-on-the-wire').length === 1);
    expect(named('pvc-on-the-wire')[0].id).toBe(first.volume.volume_id);
  });

  it('a same-name volume the driver did not make is never deleted as a stray: INTERNAL, both kept', async () => {
    const mine = await plugin.call('CreateVolume', createReq('pvc-shared-name'));
    const theirs = await w.cloud.cinder.createVolume({ name: 'pvc-shared-name', size: 1 });
    await until('their volume to be available', () => w.sim.getVolume(theirs.id)?.status === 'available');
    const err = await plugin
      .call('CreateVolume', createReq('pvc-shared-name'))
      .catch((e: { code?: number; details?: string }) => e);
    expect(err).toMatchObject({ code: status.INTERNAL, details: expect.stringContaining(theirs.id) });
    expect(
      named('pvc-shared-name')
        .map((v) => v.id)
        .sort(),
    ).toEqual([mine.volume.volume_id, theirs.id].sort());
  });

  it('ControllerPublish killed right after the attach POST: the retry waits for that attachment, no second attach', async () => {
    const posts = count('nova.attachment.create');
    const since = Date.now();
    const call = doomed('ControllerPublishVolume', publishReq(ids.first));
    const inTransit = () => ['reserved', 'attaching'].includes(w.sim.getVolume(ids.first)!.status);
    await until('Nova to reserve the volume', inTransit);
    await crashAndRestart(call, () => expect(inTransit()).toBe(true));

    const res = await plugin.call('ControllerPublishVolume', publishReq(ids.first));
    expect(res.publish_context).toEqual(expect.any(Object));
    // The retry sends its attach first; Nova refuses it (this server already has the volume) and nothing happens twice.
    expect(count('nova.attachment.create')).toBeLessThanOrEqual(posts + 2);
    expect(reservesSince(ids.first, since)).toBe(1);
    await expectAttachedOnce(ids.first, true);
  });

  it('ControllerPublish killed while waiting for in-use: the retry ends attached exactly once', async () => {
    const posts = count('nova.attachment.create');
    const since = Date.now();
    const call = doomed('ControllerPublishVolume', publishReq(ids.second));
    await until('the attach POST', () => count('nova.attachment.create') > posts);
    const gets = count('cinder.volume.get');
    await until('the driver to poll the volume', () => count('cinder.volume.get') > gets);
    await crashAndRestart(call, () => expect(w.sim.getVolume(ids.second)!.status).not.toBe('in-use'));

    await plugin.call('ControllerPublishVolume', publishReq(ids.second));
    expect(count('nova.attachment.create')).toBeLessThanOrEqual(posts + 2);
    expect(reservesSince(ids.second, since)).toBe(1);
    await expectAttachedOnce(ids.second, true);
  });

  it('ControllerUnpublish killed right after the detach DELETE: the retry ends detached, no second detach', async () => {
    const deletes = count('nova.attachment.delete');
    const since = Date.now();
    const req = { volume_id: ids.first, node_id: w.sim.localServerId };
    const call = doomed('ControllerUnpublishVolume', req);
    const detaching = () => w.sim.getVolume(ids.first)!.status === 'detaching';
    await until('the volume to be detaching', detaching);
    await crashAndRestart(call, () => expect(detaching()).toBe(true));

    await plugin.call('ControllerUnpublishVolume', req);
    // The retry sends its detach first; Nova refuses it (the volume is no longer in-use) and nothing happens twice.
    expect(count('nova.attachment.delete')).toBeLessThanOrEqual(deletes + 2);
    expect(detachesSince(ids.first, since)).toBe(1);
    await expectAttachedOnce(ids.first, false);
  });

  it('ControllerUnpublish killed while waiting for the detach: the retry ends detached exactly once', async () => {
    const deletes = count('nova.attachment.delete');
    const since = Date.now();
    const req = { volume_id: ids.second, node_id: w.sim.localServerId };
    const call = doomed('ControllerUnpublishVolume', req);
    await until('the detach DELETE', () => count('nova.attachment.delete') > deletes);
    const gets = count('cinder.volume.get');
    await until('the driver to poll the volume', () => count('cinder.volume.get') > gets);
    await crashAndRestart(call, () => expect(w.sim.getVolume(ids.second)!.status).toBe('detaching'));

    await plugin.call('ControllerUnpublishVolume', req);
    expect(count('nova.attachment.delete')).toBeLessThanOrEqual(deletes + 2);
    expect(detachesSince(ids.second, since)).toBe(1);
    await expectAttachedOnce(ids.second, false);
  });

  it('ControllerPublish killed with the attach POST still on the wire: one attachment once the stray POST lands', async () => {
    w.sim.injectFault('nova.attachment.create', { kind: 'delay', delayMs: STALL_MS });
    const posts = count('nova.attachment.create');
    const call = doomed('ControllerPublishVolume', publishReq(ids.first));
    await until('the attach POST to reach Nova', () => count('nova.attachment.create') > posts);
    await crashAndRestart(call);

    await plugin.call('ControllerPublishVolume', publishReq(ids.first));
    // Let the dead plugin's POST reach Nova and settle: it must not add a second attachment.
    await new Promise((r) => setTimeout(r, STALL_MS + DELAYS.attach));
    await expectAttachedOnce(ids.first, true);
    await plugin.call('ControllerUnpublishVolume', { volume_id: ids.first, node_id: w.sim.localServerId });
    await expectAttachedOnce(ids.first, false);
  });
});
