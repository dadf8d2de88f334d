/**
 * Faults from the cloud, end to end: the Controller (and the Node, for its metadata lookup) on a real gRPC
 * socket against the simulator's fault injection. Each fault class asserts the gRPC code the caller sees,
 * that the message names the cause, the cloud's final state and, where repetition matters, how many
 * requests reached OpenStack.
 */
import { MOUNT_RWO, type ControllerWorld, codeOf, createReq, startControllerWorld } from '../helpers/sim-controller';
import { novaVolumesOn, retryLikeSidecar, volumesNamed } from '../helpers/reliability-sidecar';
import { startNodeWorld, type NodeWorld } from '../helpers/node-world';
import { MetadataClient } from '../../src/openstack/metadata';

const DELAYS = { volumeCreate: 30, volumeDelete: 30, attach: 60, detach: 40 };
/** Polls every 20 ms instead of 250 ms: the faults under test are in the requests, not in the poll schedule. */
const FAST_WAIT = { initialMs: 20 };

let w: ControllerWorld;
let node: string;
beforeEach(async () => {
  w = await startControllerWorld({ sim: { delays: DELAYS }, deps: { waitOptions: FAST_WAIT } });
  node = w.sim.localServerId;
  // A cached token, so each test counts only the authentications its fault causes.
  await w.call('ListVolumes', {});
  w.sim.resetCounters();
});
afterEach(() => w.close());

const create = (name: string, deadlineMs?: number) => w.call('CreateVolume', createReq(name), deadlineMs);
const publish = (volumeId: string, nodeId = node, deadlineMs?: number) =>
  w.call('ControllerPublishVolume', { volume_id: volumeId, node_id: nodeId, volume_capability: MOUNT_RWO }, deadlineMs);
const unpublish = (volumeId: string, nodeId = node) =>
  w.call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeId });
const getVolume = (volumeId: string) => w.call('ControllerGetVolume', { volume_id: volumeId });
async function volumeIdOf(name: string): Promise<string> {
  const id: string = (await create(name)).volume.volume_id;
  w.sim.resetCounters();
  return id;
}
/** Servers on which Nova maps `volumeId`, among the local one (the only one the tests ask Nova about). */
async function novaServersOf(volumeId: string): Promise<string[]> {
  return (await novaVolumesOn(w.sim, node)).includes(volumeId) ? [node] : [];
}
/** Exactly one attachment of the volume to `server`, in Cinder (in-use) and in Nova. */
async function expectAttachedOnce(volumeId: string, server = node): Promise<void> {
  const v = w.sim.getVolume(volumeId)!;
  expect(v.status).toBe('in-use');
  expect(v.attachments.map((a) => a.server_id)).toEqual([server]);
  if (server === node) expect(await novaServersOf(volumeId)).toEqual([node]);
}
async function expectDetached(volumeId: string): Promise<void> {
  const v = w.sim.getVolume(volumeId)!;
  expect(v.status).toBe('available');
  expect(v.attachments).toEqual([]);
  expect(await novaServersOf(volumeId)).toEqual([]);
}

describe('token expiry and revocation mid-operation', () => {
  it('CreateVolume succeeds after one re-authentication when the token expires during its wait', async () => {
    w.sim.injectFault('cinder.volume.get', { kind: 'expire-tokens' });
    const r = await create('pvc-expire');
    expect(r.volume.volume_id).toBeTruthy();
    expect(w.count('keystone.token.create')).toBe(1);
    expect(volumesNamed(w.sim, 'pvc-expire').map((v) => v.status)).toEqual(['available']);
  });

  it('ControllerPublishVolume succeeds after one re-authentication when tokens are revoked as Nova gets the attach, attaching once', async () => {
    const id = await volumeIdOf('pvc-revoke');
    w.sim.injectFault('nova.attachment.create', { kind: 'revoke-tokens' });
    await publish(id);
    expect(w.count('keystone.token.create')).toBe(1);
    // The first POST was refused before Nova acted (401), so it is repeated once with the new token.
    expect(w.count('nova.attachment.create')).toBe(2);
    await expectAttachedOnce(id);
  });
});

describe('401 storm', () => {
  it('ends in UNAUTHENTICATED after one re-authentication per call, without a re-auth loop', async () => {
    w.sim.injectFault('cinder.*', { kind: 'http-status', status: 401, times: Infinity });
    const e = await codeOf(w.call('ListVolumes', {}));
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.details).toMatch(/401|authenticat/i);
    expect(w.count('keystone.token.create')).toBe(1);
    expect(w.count('cinder.volume.list')).toBe(2);
  });

  it('shares the one re-authentication among 20 calls that meet the storm at once, each trying Cinder twice', async () => {
    w.sim.injectFault('cinder.*', { kind: 'http-status', status: 401, times: Infinity });
    const codes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => codeOf(create(`pvc-storm-${i}`)).then((x) => x.code)),
    );
    expect(new Set(codes)).toEqual(new Set(['UNAUTHENTICATED']));
    // Concurrent callers share one authentication (measured: 1); a second only if a late caller's own
    // first attempt already carried the new token. Each call tries Cinder exactly twice.
    expect(w.count('keystone.token.create')).toBeGreaterThanOrEqual(1);
    expect(w.count('keystone.token.create')).toBeLessThanOrEqual(2);
    expect(w.count('cinder.volume.list')).toBe(40);
    expect(w.sim.listVolumes()).toEqual([]);
    w.sim.clearFaults();
    await create('pvc-after-storm');
    expect(volumesNamed(w.sim, 'pvc-after-storm')).toHaveLength(1);
  });

  it('answers UNAUTHENTICATED when Keystone itself refuses the credentials, asking it once', async () => {
    w.sim.revokeAllTokens();
    w.sim.injectFault('keystone.token.create', { kind: 'http-status', status: 401, times: Infinity });
    const e = await codeOf(create('pvc-bad-creds'));
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.details).toMatch(/keystone/i);
    // One 401 from Cinder with the revoked token, one token request, refused and not repeated.
    expect(w.count('keystone.token.create')).toBe(1);
    expect(w.sim.listVolumes()).toEqual([]);
  });
});

describe('429 with Retry-After', () => {
  it('waits the Retry-After on a POST and then creates the volume once', async () => {
    w.sim.injectFault('cinder.volume.create', { kind: 'retry-after', retryAfterSeconds: 1 });
    const started = Date.now();
    await create('pvc-429');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(w.count('cinder.volume.create')).toBe(2);
    expect(volumesNamed(w.sim, 'pvc-429')).toHaveLength(1);
  });

  it('waits the Retry-After on a GET and answers', async () => {
    const id = await volumeIdOf('pvc-429-get');
    w.sim.injectFault('cinder.volume.get', { kind: 'retry-after', retryAfterSeconds: 1 });
    const started = Date.now();
    const r = await getVolume(id);
    expect(r.volume.volume_id).toBe(id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(w.count('cinder.volume.get')).toBe(2);
  });
});

describe('500, 502 and 503', () => {
  it.each([500, 502, 503])('retries a GET answered %i and answers', async (status) => {
    const id = await volumeIdOf(`pvc-get-${status}`);
    w.sim.injectFault('cinder.volume.get', { kind: 'http-status', status, times: 2 });
    const r = await getVolume(id);
    expect(r.volume.volume_id).toBe(id);
    expect(w.count('cinder.volume.get')).toBe(3);
  });

  it.each([500, 502, 503])(
    'does not repeat a create POST answered %i; the sidecar retry makes exactly one volume',
    async (status) => {
      const name = `pvc-post-${status}`;
      w.sim.injectFault('cinder.volume.create', { kind: 'http-status', status });
      const e = await codeOf(create(name));
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.details).toContain(String(status));
      expect(w.count('cinder.volume.create')).toBe(1);
      expect(volumesNamed(w.sim, name)).toHaveLength(0);
      await retryLikeSidecar(() => create(name));
      expect(volumesNamed(w.sim, name).map((v) => v.status)).toEqual(['available']);
    },
  );

  it('does not repeat a Nova attach answered 502; the retry attaches exactly once', async () => {
    const id = await volumeIdOf('pvc-attach-502');
    w.sim.injectFault('nova.attachment.create', { kind: 'http-status', status: 502 });
    const e = await codeOf(publish(id));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details).toContain('502');
    expect(w.count('nova.attachment.create')).toBe(1);
    await retryLikeSidecar(() => publish(id));
    await expectAttachedOnce(id);
  });

  it('finds the volume a create POST made when its answer was lost, instead of making a second', async () => {
    w.sim.injectFault('cinder.volume.create', { kind: 'drop-response' });
    const e = await codeOf(create('pvc-lost-answer'));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details).toMatch(/ECONNRESET|socket hang up/);
    expect(volumesNamed(w.sim, 'pvc-lost-answer')).toHaveLength(1);
    const r = await retryLikeSidecar(() => create('pvc-lost-answer'));
    expect(volumesNamed(w.sim, 'pvc-lost-answer').map((v) => v.id)).toEqual([r.volume.volume_id]);
    expect(w.count('cinder.volume.create')).toBe(1);
  });

  it('finishes an attach whose Nova answer was lost, attaching exactly once', async () => {
    const id = await volumeIdOf('pvc-attach-lost');
    const since = Date.now();
    w.sim.injectFault('nova.attachment.create', { kind: 'drop-response' });
    expect((await codeOf(publish(id))).code).toBe('UNAVAILABLE');
    // The lost answer's POST is never repeated by the call that sent it; the retry's own attach is refused by Nova.
    expect(w.count('nova.attachment.create')).toBe(1);
    await retryLikeSidecar(() => publish(id));
    await expectAttachedOnce(id);
    expect(w.sim.volumeHistory(id).filter((x) => x.at >= since && x.status === 'reserved')).toHaveLength(1);
  });
});

describe('connection reset', () => {
  it('retries a GET whose connection was reset', async () => {
    const id = await volumeIdOf('pvc-reset-get');
    w.sim.injectFault('cinder.volume.get', { kind: 'reset', times: 2 });
    expect((await getVolume(id)).volume.volume_id).toBe(id);
    expect(w.count('cinder.volume.get')).toBe(3);
  });

  it('does not repeat a create POST whose connection was reset; UNAVAILABLE names the reset and the retry makes one volume', async () => {
    w.sim.injectFault('cinder.volume.create', { kind: 'reset' });
    const e = await codeOf(create('pvc-reset-post'));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details).toMatch(/ECONNRESET|socket hang up/);
    expect(w.count('cinder.volume.create')).toBe(1);
    await retryLikeSidecar(() => create('pvc-reset-post'));
    expect(volumesNamed(w.sim, 'pvc-reset-post')).toHaveLength(1);
  });

  it('retries a DELETE whose connection was reset, and the volume is gone', async () => {
    const id = await volumeIdOf('pvc-reset-delete');
    w.sim.injectFault('cinder.volume.delete', { kind: 'reset' });
    await w.call('DeleteVolume', { volume_id: id });
    expect(w.sim.getVolume(id)).toBeUndefined();
    expect(w.count('cinder.volume.delete')).toBe(2);
  });
});

describe('responses slower than the gRPC deadline', () => {
  it('ends CreateVolume in DEADLINE_EXCEEDED, and the sidecar retries end with exactly one volume', async () => {
    w.sim.injectFault('cinder.volume.create', { kind: 'delay', delayMs: 800 });
    const e = await codeOf(create('pvc-slow', 300));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(e.details).toMatch(/deadline/i);
    const retried: number[] = [];
    const r = await retryLikeSidecar(() => create('pvc-slow', 300), { onRetry: (code) => retried.push(code) });
    // Let anything still in flight land before counting.
    await new Promise((res) => setTimeout(res, 900));
    expect(volumesNamed(w.sim, 'pvc-slow').map((v) => v.id)).toEqual([r.volume.volume_id]);
    // The retries waited for the first POST instead of sending another.
    expect(w.count('cinder.volume.create')).toBe(1);
    expect(retried.length).toBeGreaterThan(0);
  });

  it('ends ControllerPublishVolume in DEADLINE_EXCEEDED, and the retries end with exactly one attachment', async () => {
    const id = await volumeIdOf('pvc-slow-attach');
    w.sim.injectFault('nova.attachment.create', { kind: 'delay', delayMs: 800 });
    const e = await codeOf(publish(id, node, 300));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    await retryLikeSidecar(() => publish(id, node, 300));
    await new Promise((res) => setTimeout(res, 900));
    await expectAttachedOnce(id);
  });

  it('ends a slow ControllerUnpublishVolume in DEADLINE_EXCEEDED, and the retries end detached', async () => {
    const id = await volumeIdOf('pvc-slow-detach');
    await publish(id);
    w.sim.injectFault('nova.attachment.delete', { kind: 'delay', delayMs: 800 });
    expect((await codeOf(w.call('ControllerUnpublishVolume', { volume_id: id, node_id: node }, 300))).code).toBe(
      'DEADLINE_EXCEEDED',
    );
    await retryLikeSidecar(() => w.call('ControllerUnpublishVolume', { volume_id: id, node_id: node }, 300));
    await new Promise((res) => setTimeout(res, 900));
    await expectDetached(id);
  });
});

describe('a volume that goes to error during create', () => {
  it("answers RESOURCE_EXHAUSTED with Cinder's reason, deletes the volume, and a retry makes a fresh one", async () => {
    w.sim.failNextVolumeCreate('pvc-error', 'No valid backend was found. No weighed backends available');
    const e = await codeOf(create('pvc-error'));
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('No valid backend');
    const failedId = /volume ([0-9a-f-]{36})/.exec(e.details)![1];
    await retryLikeSidecar(() => create('pvc-error'));
    const left = volumesNamed(w.sim, 'pvc-error');
    expect(left.map((v) => v.status)).toEqual(['available']);
    expect(left[0].id).not.toBe(failedId);
    expect(w.sim.getVolume(failedId)).toBeUndefined();
  });

  it("answers from the state (error: RESOURCE_EXHAUSTED), not from the wording of Cinder's reason", async () => {
    w.sim.failNextVolumeCreate('pvc-error-io', 'backend I/O failure');
    const e = await codeOf(create('pvc-error-io'));
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.details).toContain('backend I/O failure');
  });
});

describe('an attach that falls back to available', () => {
  it('answers INTERNAL naming the fallback, leaves no attachment, and the retry attaches once', async () => {
    const id = await volumeIdOf('pvc-fallback');
    w.sim.failNextAttach(id);
    const e = await codeOf(publish(id));
    expect(e.code).toBe('INTERNAL');
    expect(e.details).toContain('fell back to available');
    await expectDetached(id);
    await publish(id);
    await expectAttachedOnce(id);
  });
});

describe('a server deleted while a volume is attached', () => {
  it('reports the volume abnormal, unpublishes successfully and leaves the volume deletable', async () => {
    const id = await volumeIdOf('pvc-orphan');
    const doomed = w.sim.addServer({ name: 'doomed' });
    await publish(id, doomed);
    w.sim.deleteServer(doomed);
    const r = await getVolume(id);
    expect(r.status.volume_condition.abnormal).toBe(true);
    expect(r.status.volume_condition.message).toContain(doomed);
    await unpublish(id, doomed);
    expect(w.sim.getVolume(id)!.attachments).toEqual([]);
    expect(w.sim.getVolume(id)!.status).toBe('available');
    expect((await getVolume(id)).status.volume_condition.abnormal).toBe(false);
    await w.call('DeleteVolume', { volume_id: id });
    expect(w.sim.getVolume(id)).toBeUndefined();
  });
});

describe('Nova and Cinder disagreeing about an attachment', () => {
  it('ControllerGetVolume reports abnormal, and Unpublish clears, an attachment Cinder still lists but Nova no longer has', async () => {
    const id = await volumeIdOf('pvc-nova-forgot');
    await publish(id);
    expect((await getVolume(id)).status.volume_condition.abnormal).toBe(false);
    w.sim.desyncAttachment(id, node, 'nova');
    const condition = (await getVolume(id)).status.volume_condition;
    expect(condition.abnormal).toBe(true);
    expect(condition.message).toMatch(new RegExp(`${node}.*Nova does not`));
    await unpublish(id);
    await expectDetached(id);
    await w.call('DeleteVolume', { volume_id: id });
    expect(w.sim.getVolume(id)).toBeUndefined();
  });

  it('Publish re-attaches when Cinder lists the attachment but Nova no longer has it', async () => {
    const id = await volumeIdOf('pvc-nova-forgot-publish');
    await publish(id);
    w.sim.desyncAttachment(id, node, 'nova');
    await publish(id);
    await expectAttachedOnce(id);
  });

  // Nova refuses both a second attach and a detach while Cinder says available (nova/volume/cinder.py
  // check_detach), and a project cannot reset Cinder's status: the driver must say so, not pretend.
  it('Publish answers FAILED_PRECONDITION naming both views when Nova has the attachment but Cinder says available', async () => {
    const id = await volumeIdOf('pvc-cinder-forgot');
    await publish(id);
    w.sim.desyncAttachment(id, node, 'cinder');
    const e = await codeOf(publish(id));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toMatch(/Nova lists volume .* Cinder says/);
    expect(await novaServersOf(id)).toEqual([node]);
    expect(w.sim.getVolume(id)!.attachments).toEqual([]);
  });

  it('Unpublish answers FAILED_PRECONDITION instead of leaking the mapping Nova still has while Cinder says available', async () => {
    const id = await volumeIdOf('pvc-cinder-forgot-unpublish');
    await publish(id);
    w.sim.desyncAttachment(id, node, 'cinder');
    const e = await codeOf(unpublish(id));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.details).toContain(node);
    expect(await novaServersOf(id)).toEqual([node]);
  });
});

describe('metadata service faults on the node (NodeGetInfo over the Node socket)', () => {
  // The Node side talks to the cloud only for its identity: kubelet's registration retries NodeGetInfo.
  let nodeWorld: NodeWorld;
  beforeEach(async () => {
    nodeWorld = await startNodeWorld({
      deps: {
        metadata: new MetadataClient({
          options: { searchOrder: ['metadataService'], requestTimeoutMs: 2_000 },
          metadataUrl: w.sim.metadataUrl,
        }),
      },
    });
  });
  afterEach(() => nodeWorld.close());

  it.each([
    ['an HTTP 503', { kind: 'http-status', status: 503 }, /503/],
    ['a connection reset', { kind: 'reset' }, /ECONNRESET|socket hang up/],
  ] as const)(
    'answers UNAVAILABLE naming %s without repeating the request, and the retry answers the instance id',
    async (_what, fault, cause) => {
      w.sim.injectFault('metadata.get', fault);
      const e = await codeOf(nodeWorld.call('NodeGetInfo'));
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.details).toContain('metadataService');
      expect(e.details).toMatch(cause);
      expect(w.count('metadata.get')).toBe(1);
      expect((await retryLikeSidecar(() => nodeWorld.call('NodeGetInfo'))).node_id).toBe(node);
    },
  );

  it('ends a NodeGetInfo slower than its deadline in DEADLINE_EXCEEDED, and the retry answers', async () => {
    w.sim.injectFault('metadata.get', { kind: 'delay', delayMs: 800 });
    expect((await codeOf(nodeWorld.call('NodeGetInfo', {}, 300))).code).toBe('DEADLINE_EXCEEDED');
    expect((await retryLikeSidecar(() => nodeWorld.call('NodeGetInfo', {}, 300))).node_id).toBe(node);
  });
});
