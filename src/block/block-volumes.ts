/**
 * Cinder volume lifecycle for the controller: create (empty, from snapshot or backup, clone) idempotently
 * by name and wait for `available`; delete and wait until gone; get, list and extend. Attach/detach is in
 * block-attach.ts, snapshots in block-snapshots.ts; CSI argument checks stay in the handlers.
 */
import {
  CodedError,
  Status,
  aborted,
  alreadyExists,
  failedPrecondition,
  internal,
  invalidArgument,
  notFound,
  outOfRange,
} from '../errors';
import type { CinderVolume, CreateVolumeRequest } from '../openstack/cinder';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import type { CreateVolumeSpec, CreatedVolume, PageOf, PageRequest, VolumeInfo } from './block-types';
import {
  type BlockContext,
  bestEffort,
  isErrorStatus,
  attachedServers,
  parseCinderTime,
  toVolumeInfo,
} from './block-context';
import { resolveSource, resolveVolumeRefs, type ResolvedSource } from './block-sources';
import { waitForVolume, waitForVolumeGone } from './volume-wait';

/** Description of every volume we create, as the reference driver writes it. */
export const VOLUME_DESCRIPTION = 'Created by OpenStack Cinder CSI driver';
/** volume_context key telling the node to grow the filesystem to the volume (reference-compatible). */
export const RESIZE_REQUIRED_KEY = 'cinder.csi.openstack.org/resizeRequired';
export const AFFINITY_KEY = 'cinder.csi.openstack.org/affinity';
export const ANTI_AFFINITY_KEY = 'cinder.csi.openstack.org/anti-affinity';
/** Statuses a volume passes through before it can be used. */
const CREATING = new Set(['creating', 'downloading', 'restoring-backup']);

/** See ControllerBackend.createVolume. */
export async function createVolume(
  c: BlockContext,
  spec: CreateVolumeSpec,
  signal: AbortSignal,
): Promise<CreatedVolume> {
  const src = spec.source ? await resolveSource(c, spec.source, signal) : undefined;
  const sizeGiB = finalSize(spec, src);
  await c.creates?.settled(spec.name, signal);
  const found = await c.cinder.listVolumesByName(spec.name, signal);
  let vol: CinderVolume | undefined =
    found.length > 1 ? await dropStrayDuplicates(c, spec.name, found, signal) : found[0];
  if (vol) {
    checkCompatible(vol, spec, sizeGiB, src);
    if (isErrorStatus(vol.status)) {
      // A volume that failed to create is of no use to anyone: replace it so a retry can succeed.
      c.log.warn({ volumeId: vol.id, status: vol.status }, 'replacing a same-name volume that is in error');
      await bestEffort(c.log, `deleting errored volume ${vol.id}`, () => c.cinder.deleteVolume(vol!.id, signal));
      vol = undefined;
    } else if (vol.status === 'deleting') {
      throw aborted(`volume ${vol.id} named "${spec.name}" is being deleted; retry later`);
    }
  }
  if (!vol) {
    const hints = await schedulerHints(c, spec, signal);
    const req = createRequest(spec, sizeGiB, src, hints.cinder);
    vol = c.creates
      ? await c.creates.send(spec.name, () => c.cinder.createVolume(req), signal)
      : await c.cinder.createVolume(req, signal);
    c.log.info({ volumeId: vol.id, name: spec.name, sizeGiB }, 'Cinder volume created');
    await refuseSingleAttach(c, vol, spec, signal, true);
    vol = await settle(c, vol, signal);
    return { volume: toVolumeInfo(vol), context: contextFor(vol, src, hints.context) };
  }
  await refuseSingleAttach(c, vol, spec, signal, false);
  vol = await settle(c, vol, signal);
  return { volume: toVolumeInfo(vol), context: contextFor(vol, src, {}) };
}

/**
 * Several volumes named after one CSI volume: a create POST of a killed or timed-out call that reached
 * Cinder only after the retry had created its own (Cinder has no idempotency key). CSI names are unique,
 * so the newer copies are strays: keep the oldest (the one a caller got back, as the stray landed last)
 * and delete the others. Only strays this driver made and nobody attached are deleted; any other is left
 * to an operator (INTERNAL). A stray still being created cannot be deleted yet: ABORTED, retry later.
 */
async function dropStrayDuplicates(
  c: BlockContext,
  name: string,
  found: CinderVolume[],
  signal: AbortSignal,
): Promise<CinderVolume> {
  const live = found.filter((v) => v.status !== 'deleting');
  const byAge = (a: CinderVolume, b: CinderVolume) =>
    parseCinderTime(a.created_at) - parseCinderTime(b.created_at) || a.id.localeCompare(b.id);
  const [keep, ...strays] = [...live].sort(byAge);
  if (!keep) return found[0];
  const foreign = strays.filter((v) => v.description !== VOLUME_DESCRIPTION || attachedServers(v).length > 0);
  if (foreign.length > 0) {
    const ids = foreign.map((v) => v.id).join(', ');
    throw internal(
      `${live.length} Cinder volumes are named "${name}"; expected at most one, and ${ids} is not a detached volume of this driver`,
    );
  }
  for (const v of strays) {
    if (CREATING.has(v.status)) {
      throw aborted(`a second volume ${v.id} named "${name}" is still being created; it is deleted on a retry`);
    }
    c.log.warn({ volumeId: v.id, kept: keep.id, name }, 'deleting a duplicate volume left by an earlier create call');
    await c.cinder.deleteVolume(v.id, signal);
  }
  return keep;
}

/** The size to create: at least what was asked and at least the source, but never above limit_bytes. */
function finalSize(spec: CreateVolumeSpec, src: ResolvedSource | undefined): number {
  if (!src || src.sizeGiB <= spec.sizeGiB) return spec.sizeGiB;
  if (spec.limitGiB !== undefined && src.sizeGiB > spec.limitGiB) {
    throw outOfRange(
      `capacity_range: the source ${src.id} is ${src.sizeGiB} GiB, more than limit_bytes allows (${spec.limitGiB} GiB)`,
    );
  }
  return src.sizeGiB;
}

function checkCompatible(
  v: CinderVolume,
  spec: CreateVolumeSpec,
  sizeGiB: number,
  src: ResolvedSource | undefined,
): void {
  if (v.size !== sizeGiB) {
    throw alreadyExists(`volume "${spec.name}" exists (${v.id}) with size ${v.size} GiB, not ${sizeGiB} GiB`);
  }
  const have = v.snapshot_id ?? v.backup_id ?? v.source_volid ?? undefined;
  if ((src?.id ?? undefined) !== (have || undefined)) {
    throw alreadyExists(
      `volume "${spec.name}" exists (${v.id}) with source ${have ?? 'none'}, not ${src?.id ?? 'none'}`,
    );
  }
}

async function schedulerHints(c: BlockContext, spec: CreateVolumeSpec, signal: AbortSignal) {
  const same = spec.affinity?.length ? await resolveVolumeRefs(c, spec.affinity, AFFINITY_KEY, signal) : [];
  const different = spec.antiAffinity?.length
    ? await resolveVolumeRefs(c, spec.antiAffinity, ANTI_AFFINITY_KEY, signal)
    : [];
  const cinder: Record<string, string[]> = {};
  const context: Record<string, string> = {};
  if (same.length) {
    cinder.same_host = same;
    context[AFFINITY_KEY] = same.join(',');
  }
  if (different.length) {
    cinder.different_host = different;
    context[ANTI_AFFINITY_KEY] = different.join(',');
  }
  return { cinder: Object.keys(cinder).length ? cinder : undefined, context };
}

function createRequest(
  spec: CreateVolumeSpec,
  size: number,
  src: ResolvedSource | undefined,
  hints?: Record<string, string[]>,
): CreateVolumeRequest {
  return {
    name: spec.name,
    size,
    description: VOLUME_DESCRIPTION,
    volumeType: spec.volumeType,
    availabilityZone: spec.availabilityZone,
    metadata: spec.metadata,
    snapshotId: src?.kind === 'snapshot' ? src.id : undefined,
    backupId: src?.kind === 'backup' ? src.id : undefined,
    sourceVolumeId: src?.kind === 'volume' ? src.id : undefined,
    schedulerHints: hints,
  };
}

/**
 * A multi-node access mode on a volume whose type cannot multiattach: refuse. A volume this call just made
 * is deleted again (Cinder has no volume-type lookup in our client to refuse before creating).
 */
async function refuseSingleAttach(
  c: BlockContext,
  v: CinderVolume,
  spec: CreateVolumeSpec,
  signal: AbortSignal,
  justCreated: boolean,
): Promise<void> {
  if (!spec.multiNodeMode || v.multiattach) return;
  if (justCreated) {
    await bestEffort(c.log, `deleting volume ${v.id}`, () => waitThenDelete(c, v, signal));
  }
  throw invalidArgument(
    'volume_capabilities',
    `${spec.multiNodeMode} needs a volume type with multiattach enabled; "${v.volume_type ?? 'default'}" is not`,
  );
}

async function waitThenDelete(c: BlockContext, v: CinderVolume, signal: AbortSignal): Promise<void> {
  const done = await waitForVolume(c.cinder, v.id, (x) => !CREATING.has(x.status), {
    ...c.wait,
    signal,
    what: `volume ${v.id} to finish creating`,
  });
  await c.cinder.deleteVolume(done.id, signal);
}

/**
 * Waits out `creating`; a volume that lands in `error` is deleted and reported with Cinder's reason. The code
 * comes from the state, not from the reason's wording (which varies by release, driver and language): `error`
 * straight out of `creating` means the scheduler or the backend could not allocate it, which CSI calls
 * RESOURCE_EXHAUSTED, and the provisioner may then try another topology; the volume is gone, so a retry
 * starts afresh. A restore that failed (`error_restoring`) is the backup's problem, not room: INTERNAL.
 */
async function settle(c: BlockContext, v: CinderVolume, signal: AbortSignal): Promise<CinderVolume> {
  if (!CREATING.has(v.status)) return v;
  const done = await waitForVolume(c.cinder, v.id, (x) => !CREATING.has(x.status), {
    ...c.wait,
    signal,
    startWithPause: true,
    what: `volume ${v.id} to become available`,
  });
  if (!isErrorStatus(done.status)) return done;
  const fault = c.cinder.volumeFaultMessage
    ? await c.cinder.volumeFaultMessage(done.id, signal).catch(() => undefined)
    : undefined;
  await bestEffort(c.log, `deleting errored volume ${done.id}`, () => c.cinder.deleteVolume(done.id, signal));
  const why = `Cinder could not create volume ${done.id} (status ${done.status}${fault ? `: ${fault}` : ''}); it was deleted so a retry starts afresh`;
  throw new CodedError(done.status === 'error' ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL, why);
}

function contextFor(
  v: CinderVolume,
  src: ResolvedSource | undefined,
  extra: Record<string, string>,
): Record<string, string> {
  const ctx = { ...extra };
  // The filesystem on a restored/cloned volume has the source's size; the node grows it (reference #1539).
  if (src && v.size > src.sizeGiB) ctx[RESIZE_REQUIRED_KEY] = 'true';
  return ctx;
}

/**
 * See ControllerBackend.deleteVolume. The DELETE goes first: Cinder checks the volume's state itself, and the
 * read that explains a refusal is needed only then (one round trip less per delete, and one request).
 */
export async function deleteVolume(c: BlockContext, id: string, signal: AbortSignal): Promise<void> {
  try {
    await c.cinder.deleteVolume(id, signal);
  } catch (e) {
    if (isNotFound(e)) return;
    if (!isOpenStackError(e, 'invalid-state') && !isOpenStackError(e, 'bad-request')) throw e;
    // One refusal message covers every cause (attached, has snapshots, mid-transition, already deleting).
    let v: CinderVolume;
    try {
      v = await c.cinder.getVolume(id, signal);
    } catch (g) {
      if (isNotFound(g)) return;
      throw g;
    }
    const servers = attachedServers(v);
    if (servers.length > 0)
      throw failedPrecondition(`volume ${id} is still attached to ${servers.join(', ')}; unpublish it first`);
    if (v.status !== 'deleting') throw e;
  }
  await waitForVolumeGone(c.cinder, id, {
    ...c.wait,
    signal,
    startWithPause: true,
    failOn: (x) =>
      x && x.status === 'error_deleting'
        ? internal(`Cinder failed to delete volume ${id} (status error_deleting)`)
        : undefined,
  });
}

/** See ControllerBackend.getVolume. With checkNodes, an attachment to a server Nova no longer has is abnormal. */
export async function getVolume(
  c: BlockContext,
  id: string,
  signal: AbortSignal,
  checkNodes = false,
): Promise<VolumeInfo | undefined> {
  let v: CinderVolume;
  try {
    v = await c.cinder.getVolume(id, signal);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  let abnormal: string | undefined;
  if (checkNodes && !isErrorStatus(v.status)) {
    // One Nova list per server answers both questions: is the server there, and does Nova map the volume.
    for (const server of attachedServers(v)) {
      try {
        if (!(await c.nova.listVolumeAttachments(server, signal)).some((a) => a.volumeId === id)) {
          abnormal = `Cinder lists it attached to server ${server}, but Nova does not`;
        }
      } catch (e) {
        if (!isNotFound(e)) throw e;
        abnormal = `attached to server ${server}, which Nova no longer has`;
      }
    }
  }
  return toVolumeInfo(v, abnormal);
}

/** See ControllerBackend.listVolumes. limit 0/absent: every page. */
export async function listVolumes(
  c: BlockContext,
  page: PageRequest,
  signal: AbortSignal,
): Promise<PageOf<VolumeInfo>> {
  const items: VolumeInfo[] = [];
  let marker = page.marker || undefined;
  try {
    do {
      const got = await c.cinder.listVolumes({ limit: page.limit || undefined, marker }, signal);
      items.push(...got.items.map((v) => toVolumeInfo(v)));
      marker = got.nextMarker;
    } while (!page.limit && marker);
  } catch (e) {
    if (page.marker && isOpenStackError(e, 'bad-request'))
      throw aborted(`starting_token: Cinder does not know marker ${page.marker}`);
    throw e;
  }
  return { items, nextMarker: page.limit ? marker : undefined };
}

/** See ControllerBackend.expandVolume. Online for in-use volumes (the client sends microversion 3.42). */
export async function expandVolume(
  c: BlockContext,
  id: string,
  sizeGiB: number,
  signal: AbortSignal,
): Promise<{ sizeGiB: number }> {
  let v: CinderVolume;
  try {
    v = await c.cinder.getVolume(id, signal);
  } catch (e) {
    if (isNotFound(e)) throw notFound(`volume ${id} does not exist`);
    throw e;
  }
  const what = `volume ${id} to finish extending`;
  if (v.status === 'extending')
    v = await waitForVolume(c.cinder, id, (x) => x.status !== 'extending', { ...c.wait, signal, what });
  if (v.size >= sizeGiB) return { sizeGiB: v.size };
  if (v.status !== 'available' && v.status !== 'in-use') {
    throw failedPrecondition(`volume ${id} is ${v.status}; it can be extended only when available or in-use`);
  }
  await c.cinder.extendVolume(id, sizeGiB, signal);
  const done = await waitForVolume(c.cinder, id, (x) => x.status === 'available' || x.status === 'in-use', {
    ...c.wait,
    signal,
    startWithPause: true,
    what,
    failOn: (x) =>
      isErrorStatus(x.status)
        ? internal(`Cinder failed to extend volume ${id} to ${sizeGiB} GiB (status ${x.status})`)
        : undefined,
  });
  return { sizeGiB: done.size };
}
