/**
 * The read-only flag of a ControllerPublish, remembered per node in the volume's Cinder metadata. Cinder has
 * no read-only attachment a project member can ask for, yet CSI requires a second publish to the same node
 * with the other `readonly` to be ALREADY_EXISTS (PUBLISH_READONLY is advertised): the attachment itself
 * cannot tell us, so the publish records it. Absent means read-write, which is what attachments made before
 * the record existed were.
 */
import { alreadyExists } from '../errors';
import type { CinderVolume } from '../openstack/cinder';
import type { BlockContext } from './block-context';

/** One key per node, so the record of a multiattach volume on one node does not touch another's. */
export function readonlyKey(nodeId: string): string {
  return `cinder.csi.openstack.org/readonly.${nodeId}`;
}

/** The mode the volume was published to `nodeId` with. */
export function publishedReadonly(v: CinderVolume, nodeId: string): boolean {
  return v.metadata?.[readonlyKey(nodeId)] === 'true';
}

/** A publish to a node the volume is attached to already: the same mode is the same publish, another is a conflict. */
export function assertSameMode(v: CinderVolume, nodeId: string, readonly: boolean): void {
  const was = publishedReadonly(v, nodeId);
  if (was !== readonly) {
    throw alreadyExists(
      `volume ${v.id} is already published to node ${nodeId} ${was ? 'read-only' : 'read-write'}; unpublish it before publishing it ${readonly ? 'read-only' : 'read-write'}`,
    );
  }
}

/**
 * Records the mode of a publish about to attach. A read-only one is written before the attach, so an attach
 * that lands is never left recorded read-write; a read-write one writes only to clear a stale read-only record
 * (`known` is the volume as last read, when there was a read).
 */
export async function recordMode(
  c: BlockContext,
  volumeId: string,
  nodeId: string,
  readonly: boolean,
  known: CinderVolume | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (!readonly && known && !publishedReadonly(known, nodeId)) return;
  await c.cinder.updateVolumeMetadata(volumeId, { [readonlyKey(nodeId)]: String(readonly) }, signal);
}
