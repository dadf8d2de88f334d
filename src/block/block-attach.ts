/**
 * Attaching Cinder volumes to Nova servers (ControllerPublish) and detaching them (ControllerUnpublish),
 * waiting on the Cinder volume's status until the attachment is really there or really gone. Also cleans
 * up a volume left `reserved`/`attaching` by a failed attach (reference issue #2553).
 */
import { type CodedError, aborted, failedPrecondition, internal, notFound, resourceExhausted } from '../errors';
import type { CinderAttachment, CinderVolume } from '../openstack/cinder';
import { isNotFound, isOpenStackError, type OpenStackErrorKind } from '../openstack/errors';
import type { Published } from './block-types';
import { type BlockContext, attachedServers, isAttachedTo, isErrorStatus } from './block-context';
import { waitForVolume } from './volume-wait';
import { assertSameMode, recordMode } from './block-readonly';

/** Statuses of an attach or detach in flight. */
const IN_TRANSIT = new Set(['reserved', 'attaching', 'detaching']);

/** Kinds of a Nova answer that refused the attach before it did anything (4xx): safe to decide again after a read. */
const REFUSALS = new Set<OpenStackErrorKind>([
  'bad-request',
  'invalid-state',
  'not-found',
  'forbidden',
  'conflict',
  'over-limit',
]);

/**
 * See ControllerBackend.publishVolume. The attach is sent first, without the multiattach microversion: Nova
 * takes it only for a volume Cinder can reserve for this server (available, no attachment of it here), which is
 * the common case, and saves a read before it. It refuses without effect otherwise: a volume attached or
 * attaching anywhere, in error, unknown, or multiattach (below 2.60 Nova refuses those even for a first
 * server), an unknown server, a full one. Any refusal goes the read-first way, which knows what each of those
 * states needs. An answer that did not come (5xx, reset, deadline) may have attached: never sent again here;
 * the caller's retry is refused by Nova (the volume is reserved) and reads.
 */
export async function publishVolume(
  c: BlockContext,
  volumeId: string,
  nodeId: string,
  signal: AbortSignal,
  readonly = false,
): Promise<Published> {
  // A read-only publish reads first: it must not attach over a read-write publish to the same node.
  if (readonly) return publishAfterRead(c, volumeId, nodeId, signal, readonly);
  try {
    await c.nova.attachVolume(nodeId, volumeId, {}, signal);
  } catch (e) {
    if (signal.aborted || !isOpenStackError(e) || !REFUSALS.has(e.kind)) throw e;
    return publishAfterRead(c, volumeId, nodeId, signal, readonly);
  }
  c.log.info({ volumeId, nodeId }, 'Nova attach accepted');
  // Nova reserved the volume before it answered, from available: the wait starts from there.
  const attached = await waitAttachedVolume(c, volumeId, nodeId, false, signal);
  // A stale read-only record of an earlier publish here would make the next identical publish a conflict.
  await recordMode(c, volumeId, nodeId, false, attached, signal);
  return published(attached, nodeId);
}

async function publishAfterRead(
  c: BlockContext,
  volumeId: string,
  nodeId: string,
  signal: AbortSignal,
  readonly: boolean,
): Promise<Published> {
  // Both reads at once: they are independent, and each is a round trip before the attach can be sent.
  const [volume, server] = await Promise.allSettled([
    getOrNotFound(c, volumeId, signal),
    c.nova.getServer(nodeId, signal),
  ]);
  if (volume.status === 'rejected') throw volume.reason;
  if (server.status === 'rejected') {
    if (isNotFound(server.reason)) throw notFound(`node_id: Nova has no server ${nodeId}`);
    throw server.reason;
  }
  let v = volume.value;
  if (isErrorStatus(v.status)) throw failedPrecondition(`volume ${volumeId} is in ${v.status}; it cannot be attached`);
  if (isAttachedTo(v, nodeId) && v.status === 'in-use') {
    if (await novaHas(c, nodeId, volumeId, signal)) {
      assertSameMode(v, nodeId, readonly);
      return published(v, nodeId);
    }
    // Cinder's attachment outlived Nova's mapping: the disk is not on the node. Clear the record, attach anew.
    v = await forgetStaleAttachment(c, v, nodeId, signal);
  }
  const mine = isAttachedTo(v, nodeId) || (IN_TRANSIT.has(v.status) && (await novaHas(c, nodeId, volumeId, signal)));
  // An attach to this node under way is an earlier publish's: it must have asked for the same mode.
  if (mine) assertSameMode(v, nodeId, readonly);
  else {
    const others = attachedServers(v).filter((s) => s !== nodeId);
    if (others.length > 0 && !v.multiattach) {
      throw failedPrecondition(
        `volume ${volumeId} is attached to ${others.join(', ')} and its type does not allow multiattach`,
      );
    }
    if (IN_TRANSIT.has(v.status) && !v.multiattach) {
      throw failedPrecondition(`volume ${volumeId} is ${v.status} for another node; retry when it settles`);
    }
    await recordMode(c, volumeId, nodeId, readonly, v, signal);
    await attach(c, v, nodeId, signal);
  }
  return published(await waitAttachedVolume(c, volumeId, nodeId, v.status === 'in-use', signal), nodeId);
}

/**
 * Waits until Cinder has `volumeId` in-use and attached to `nodeId`. Nova reserves the volume before it answers,
 * so a volume back at rest without this server means the attach failed; for a multiattach volume already in use
 * (`wasInUse`), only after it was seen in transit.
 */
async function waitAttachedVolume(
  c: BlockContext,
  volumeId: string,
  nodeId: string,
  wasInUse: boolean,
  signal: AbortSignal,
): Promise<CinderVolume> {
  let sawTransit = false;
  const v = await waitForVolume(c.cinder, volumeId, (x) => isAttachedTo(x, nodeId) && x.status === 'in-use', {
    ...c.wait,
    signal,
    startWithPause: true,
    what: `volume ${volumeId} to be attached to ${nodeId}`,
    failOn: (x) => {
      if (IN_TRANSIT.has(x.status)) sawTransit = true;
      if (isErrorStatus(x.status))
        return internal(`attaching volume ${volumeId} to ${nodeId} failed: status ${x.status}`);
      const atRest = x.status === 'available' || x.status === 'in-use';
      if (atRest && !isAttachedTo(x, nodeId) && (sawTransit || !wasInUse)) {
        return internal(`attaching volume ${volumeId} to ${nodeId} failed: the volume fell back to ${x.status}`);
      }
      return undefined;
    },
  });
  return v;
}

async function attach(c: BlockContext, v: CinderVolume, nodeId: string, signal: AbortSignal): Promise<void> {
  try {
    await c.nova.attachVolume(nodeId, v.id, { multiattach: v.multiattach }, signal);
    c.log.info({ volumeId: v.id, nodeId }, 'Nova attach accepted');
  } catch (e) {
    // Nova answers 403 when the server has no free disk slot (max_disk_devices_to_attach).
    if (isOpenStackError(e, 'over-limit') || (isOpenStackError(e, 'forbidden') && /maximum|exceed/i.test(e.message))) {
      throw resourceExhausted(`node ${nodeId} cannot take another volume: ${(e as Error).message}`);
    }
    if (isNotFound(e)) throw notFound(`volume ${v.id} or node ${nodeId} disappeared during the attach`);
    const refused = isOpenStackError(e, 'invalid-state') || isOpenStackError(e, 'bad-request');
    if (refused && /already attached/i.test((e as Error).message)) {
      // An earlier attach (a timed-out call's POST) may just have landed; only a volume still at rest in
      // Cinder means Nova and Cinder really disagree.
      const now = await c.cinder.getVolume(v.id, signal);
      if (now.status === 'available' && !isAttachedTo(now, nodeId)) throw disagreement(v.id, nodeId);
      throw aborted(`an attach of volume ${v.id} to ${nodeId} is already under way (${now.status}); retry`);
    }
    throw e;
  }
}

function published(v: CinderVolume, nodeId: string): Published {
  const a: CinderAttachment | undefined = v.attachments.find((x) => x.server_id === nodeId);
  return { devicePath: a?.device || undefined };
}

/**
 * See ControllerBackend.unpublishVolume. `nodeId` '' detaches from every server. For one node the detach is sent
 * first: Nova accepts it only for an attachment it has and Cinder lets go of (in-use), which is the common case,
 * and saves a read before it. Nova refuses it without effect otherwise (no such attachment, a volume mid-attach
 * or already detaching: os-begin_detaching needs in-use), and any failure goes the read-first way below,
 * which knows what each of those states needs.
 */
export async function unpublishVolume(
  c: BlockContext,
  volumeId: string,
  nodeId: string,
  signal: AbortSignal,
): Promise<void> {
  if (nodeId) {
    let accepted = false;
    try {
      await c.nova.detachVolume(nodeId, volumeId, signal);
      accepted = true;
    } catch (e) {
      // A refusal changed nothing; the read-first path decides (it waits out a detach in progress, for one).
      if (signal.aborted) throw e;
    }
    if (accepted) {
      c.log.info({ volumeId, nodeId }, 'Nova detach accepted');
      // Nova moves the volume to detaching (os-begin_detaching) before it answers 202.
      return waitDetached(c, volumeId, nodeId, true, signal);
    }
  }
  let v: CinderVolume;
  try {
    v = await c.cinder.getVolume(volumeId, signal);
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  const targets = nodeId ? [nodeId] : attachedServers(v);
  for (const server of targets) await detachFrom(c, v, server, signal);
}

async function detachFrom(c: BlockContext, vol: CinderVolume, server: string, signal: AbortSignal): Promise<void> {
  const id = vol.id;
  let v = vol;
  if (!isAttachedTo(v, server) && (v.status === 'reserved' || v.status === 'attaching')) {
    if (!(await novaHas(c, server, id, signal))) return unreserve(c, v, signal);
    // An attach to this server is still running (its publish timed out): let it land, then detach it.
    v = await waitForVolume(c.cinder, id, (x) => !IN_TRANSIT.has(x.status), {
      ...c.wait,
      signal,
      what: `volume ${id} to finish attaching`,
    });
  }
  if (!isAttachedTo(v, server)) {
    // Cinder says detached; a mapping Nova still keeps would leak silently, and only an operator can end it.
    if (!IN_TRANSIT.has(v.status) && (await novaHas(c, server, id, signal))) throw disagreement(id, server);
    return;
  }
  if (v.status !== 'detaching') {
    try {
      await c.nova.detachVolume(server, id, signal);
      c.log.info({ volumeId: id, nodeId: server }, 'Nova detach accepted');
    } catch (e) {
      // Nova has no such attachment (the server was deleted, or Nova lost the mapping): Cinder's is stale.
      if (isNotFound(e)) return void (await forgetStaleAttachment(c, v, server, signal));
      throw e;
    }
  }
  await waitDetached(c, id, server, v.status === 'detaching', signal);
}

/** Waits until Cinder has no attachment of `id` to `server` and the volume is at rest; a rollback fails it. */
async function waitDetached(
  c: BlockContext,
  id: string,
  server: string,
  detaching: boolean,
  signal: AbortSignal,
): Promise<void> {
  let sawDetaching = detaching;
  await waitForVolume(c.cinder, id, (x) => !isAttachedTo(x, server) && !IN_TRANSIT.has(x.status), {
    ...c.wait,
    signal,
    startWithPause: true,
    what: `volume ${id} to be detached from ${server}`,
    failOn: (x) => {
      if (x.status === 'detaching') sawDetaching = true;
      if (isErrorStatus(x.status)) return internal(`detaching volume ${id} from ${server} failed: status ${x.status}`);
      // Nova rolls a failed detach back to in-use (os-roll_detaching).
      if (sawDetaching && x.status === 'in-use' && isAttachedTo(x, server)) {
        return internal(`detaching volume ${id} from ${server} failed: Nova rolled it back to in-use`);
      }
      return undefined;
    },
  }).catch((e: unknown) => {
    if (isNotFound(e)) return undefined; // deleted meanwhile: detached enough
    throw e;
  });
}

/**
 * `reserved`/`attaching` with no attachment in Cinder or Nova: an attach that died half-way (reference
 * issue #2553). os-unreserve hands the volume back, when the client offers it; not an error either way.
 */
async function unreserve(c: BlockContext, v: CinderVolume, signal: AbortSignal): Promise<void> {
  if (!c.cinder.unreserveVolume) {
    c.log.warn(
      { volumeId: v.id, status: v.status },
      'volume left reserved by a failed attach; this Cinder client cannot os-unreserve it',
    );
    return;
  }
  await c.cinder.unreserveVolume(v.id, signal);
  c.log.info({ volumeId: v.id, status: v.status }, 'unreserved a volume left by a failed attach');
  await waitForVolume(c.cinder, v.id, (x) => !IN_TRANSIT.has(x.status), {
    ...c.wait,
    signal,
    what: `volume ${v.id} to be unreserved`,
  });
}

/**
 * Drops Cinder's attachments of `v` to `server`, which Nova no longer has, so the volume can be attached or
 * deleted again, and waits until Cinder agrees. Without os-detach in the client, logs and leaves them.
 */
async function forgetStaleAttachment(
  c: BlockContext,
  v: CinderVolume,
  server: string,
  signal: AbortSignal,
): Promise<CinderVolume> {
  const stale = v.attachments.filter((a) => a.server_id === server);
  if (stale.length === 0) return v;
  if (!c.cinder.forgetAttachment) {
    c.log.warn(
      { volumeId: v.id, nodeId: server },
      'Cinder lists an attachment Nova does not have; this Cinder client cannot clear it',
    );
    return v;
  }
  for (const a of stale) {
    await c.cinder.forgetAttachment(v.id, a.attachment_id, signal);
    c.log.warn(
      { volumeId: v.id, nodeId: server, attachmentId: a.attachment_id },
      'cleared a Cinder attachment that Nova no longer has',
    );
  }
  return waitForVolume(c.cinder, v.id, (x) => !isAttachedTo(x, server) && !IN_TRANSIT.has(x.status), {
    ...c.wait,
    signal,
    what: `Cinder to drop its attachment of volume ${v.id} to ${server}`,
  });
}

/** Nova maps the volume on `server` while Cinder says it is detached: neither API lets a project fix that. */
function disagreement(volumeId: string, server: string): CodedError {
  return failedPrecondition(
    `Nova lists volume ${volumeId} as attached to server ${server} but Cinder says it is not; ` +
      'an operator must reconcile them (nova-manage volume_attachment refresh, or cinder reset-state)',
  );
}

/** Whether Nova lists `volumeId` among `server`'s attachments; false when the server is gone. */
async function novaHas(c: BlockContext, server: string, volumeId: string, signal: AbortSignal): Promise<boolean> {
  try {
    return (await c.nova.listVolumeAttachments(server, signal)).some((a) => a.volumeId === volumeId);
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

async function getOrNotFound(c: BlockContext, id: string, signal: AbortSignal): Promise<CinderVolume> {
  try {
    return await c.cinder.getVolume(id, signal);
  } catch (e) {
    if (isNotFound(e)) throw notFound(`volume ${id} does not exist`);
    throw e;
  }
}
