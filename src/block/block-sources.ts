/**
 * Resolving what a new volume refers to: its content source (a snapshot id that may really be a backup id,
 * as in the reference driver, or a volume to clone) and the volume names or ids of scheduler hints.
 * Read-only: nothing here creates or changes a Cinder resource.
 */
import { invalidArgument, notFound, unavailable } from '../errors';
import { isNotFound } from '../openstack/errors';
import type { VolumeSource } from './block-types';
import type { BlockContext } from './block-context';

export interface ResolvedSource {
  kind: 'snapshot' | 'backup' | 'volume';
  id: string;
  sizeGiB: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Looks the source up. A snapshot id Cinder does not know is tried as a backup id (VolumeSnapshots of
 * `type: backup` carry backup ids). NOT_FOUND when neither exists; UNAVAILABLE while it is not yet
 * `available` (the CO retries), as the reference does.
 */
export async function resolveSource(c: BlockContext, src: VolumeSource, signal: AbortSignal): Promise<ResolvedSource> {
  if (src.kind === 'volume') {
    try {
      const v = await c.cinder.getVolume(src.id, signal);
      return { kind: 'volume', id: v.id, sizeGiB: v.size };
    } catch (e) {
      if (isNotFound(e)) throw notFound(`volume_content_source.volume.volume_id: volume ${src.id} does not exist`);
      throw e;
    }
  }
  try {
    const s = await c.cinder.getSnapshot(src.id, signal);
    if (s.status !== 'available') throw unavailable(`snapshot ${s.id} is ${s.status}, not available yet`);
    return { kind: 'snapshot', id: s.id, sizeGiB: s.size };
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    const b = await c.cinder.getBackup(src.id, signal);
    if (b.status !== 'available') throw unavailable(`backup ${b.id} is ${b.status}, not available yet`);
    return { kind: 'backup', id: b.id, sizeGiB: b.size ?? 0 };
  } catch (e) {
    if (isNotFound(e)) throw notFound(`volume_content_source.snapshot.snapshot_id: no snapshot or backup ${src.id}`);
    throw e;
  }
}

/**
 * Volume names or ids (PVC annotation values, comma lists) → Cinder ids. A UUID is taken as an id; a name
 * must match exactly one volume. INVALID_ARGUMENT naming `field` otherwise.
 */
export async function resolveVolumeRefs(
  c: BlockContext,
  refs: readonly string[],
  field: string,
  signal: AbortSignal,
): Promise<string[]> {
  const ids: string[] = [];
  for (const ref of refs.map((r) => r.trim()).filter(Boolean)) {
    if (UUID_RE.test(ref)) {
      ids.push(ref);
      continue;
    }
    const found = await c.cinder.listVolumesByName(ref, signal);
    if (found.length !== 1) {
      throw invalidArgument(
        field,
        `names "${ref}", which matches ${found.length} Cinder volumes; it must match exactly one`,
      );
    }
    ids.push(found[0].id);
  }
  return [...new Set(ids)];
}
