/**
 * What the Node service is built from (NodeDeps) and the device lookups its phases share: waiting for a
 * volume's by-id link within the caller's deadline, and a single look that never waits. The kernel work
 * itself is the NodeMounter's (src/mount); per-volume serialization is the server's.
 */
import type { BlockStorageOptions } from '../config/types';
import { CodedError, Status } from '../errors';
import type { Logger } from '../log';
import type { FuseMountService } from '../fuse/supervisor-client';
import type { FoundDevice } from '../mount/devices';
import type { NodeMounter } from '../mount/node-mounter';
import { failedPrecondition, notFound } from './errors';
import type { CallContext } from './server';
import type { VolumeCapability } from './types';

/**
 * Our answer must reach the caller before its deadline does, or it only ever sees a bare
 * DEADLINE_EXCEEDED; the device wait gives up this long before the gRPC deadline.
 */
export const DEADLINE_MARGIN_MS = 500;
/**
 * NodePublishVolume of a raw block volume looks for the device again; staging already waited for it,
 * so a device that does not show up within this bound means the volume is not attached (not staged).
 */
export const PUBLISH_DEVICE_WAIT_MS = 5_000;
/** volume_context key the controller sets on volumes cloned or restored into a larger size. */
export const RESIZE_REQUIRED_KEY = 'cinder.csi.openstack.org/resizeRequired';
/** volume_context key kubelet sets on CSI inline ephemeral volumes. */
export const EPHEMERAL_KEY = 'csi.storage.k8s.io/ephemeral';

/** The instance identity the node needs; src/openstack/metadata.ts MetadataClient fits. */
export interface NodeMetadata {
  /** Rejects with a CodedError (UNAVAILABLE listing each source) when no source answers. */
  get(signal?: AbortSignal): Promise<{ uuid: string; availabilityZone?: string }>;
}

/** Everything the Node service uses. The node needs no OpenStack credentials. */
export interface NodeDeps {
  mounter: NodeMounter;
  metadata: NodeMetadata;
  /** Node id override: when set, NodeGetInfo never asks the metadata sources (and reports no zone). */
  nodeId?: string;
  blockStorage: BlockStorageOptions;
  withTopology: boolean;
  /** `--additional-topology k=v` segments, reported next to the zone. */
  additionalTopology: Record<string, string>;
  /** Kubelet's root directory: every path a request names must lie under it. */
  kubeletDir: string;
  /** Where the volumes' by-id links appear (`/dev/disk/by-id`). */
  byIdDir: string;
  log: Logger;
  /**
   * The FUSE supervisor for object volumes (`obj1:` ids): a SupervisorClient on `--fuse-supervisor-socket`,
   * or an in-process one for the demo. Absent: object volume requests fail with FAILED_PRECONDITION.
   */
  fuse?: FuseMountService;
  /** Advertise VOLUME_MOUNT_GROUP (`--volume-mount-group`): fsGroup is then the driver's job for every volume. */
  volumeMountGroup?: boolean;
}

/** Whether a capability asks for a raw block device rather than a filesystem. */
export function isBlock(cap: VolumeCapability | null | undefined): boolean {
  return cap?.access_type === 'block';
}

/** Whether a capability's access mode only allows reading. */
export function isReaderOnly(cap: VolumeCapability | null | undefined): boolean {
  const mode = cap?.access_mode?.mode;
  return mode === 'SINGLE_NODE_READER_ONLY' || mode === 'MULTI_NODE_READER_ONLY';
}

/** Cinder's volume ids are UUIDs: its `volumes.id` column holds 36 characters. */
export const CINDER_ID_MAX_CHARS = 36;

/**
 * Whether a device of this id can ever appear: a Cinder id fits its column, and a by-id link name can hold
 * neither `/` nor NUL. An id that cannot is answered at once instead of waiting out the caller's deadline.
 */
export function canHaveDevice(volumeId: string): boolean {
  return volumeId.length <= CINDER_ID_MAX_CHARS && !/[/\0]/.test(volumeId);
}

/**
 * Waits for the volume's device, at most until shortly before the caller's deadline (and `maxWaitMs`).
 * Throws CodedError DEADLINE_EXCEEDED naming the volume and the links looked for when it never appears,
 * NOT_FOUND at once for an id no Cinder volume can have.
 */
export async function waitForVolumeDevice(
  deps: NodeDeps,
  volumeId: string,
  ctx: CallContext,
  maxWaitMs?: number,
): Promise<FoundDevice> {
  if (!canHaveDevice(volumeId)) {
    throw notFound(
      `volume_id "${volumeId.slice(0, 64)}${volumeId.length > 64 ? '…' : ''}" is no Cinder volume id (at most ${CINDER_ID_MAX_CHARS} characters, no "/"); no device of it can appear`,
    );
  }
  return deps.mounter.waitForDevice(volumeId, {
    byIdDir: deps.byIdDir,
    signal: ctx.signal,
    deadlineMs: ctx.deadline === undefined ? undefined : ctx.deadline - DEADLINE_MARGIN_MS,
    timeoutMs: maxWaitMs,
  });
}

/**
 * The raw block device of a volume that staging already found. Throws FAILED_PRECONDITION when it does
 * not show up within PUBLISH_DEVICE_WAIT_MS: the volume is not attached here, so it cannot be staged.
 */
export async function stagedBlockDevice(deps: NodeDeps, volumeId: string, ctx: CallContext): Promise<FoundDevice> {
  try {
    return await waitForVolumeDevice(deps, volumeId, ctx, PUBLISH_DEVICE_WAIT_MS);
  } catch (e) {
    if (e instanceof CodedError && e.code === Status.DEADLINE_EXCEEDED && !ctx.signal.aborted) {
      throw failedPrecondition(`volume ${volumeId} is not staged on this node: ${e.details}`);
    }
    throw e;
  }
}

/** One look for the volume's device, no waiting and no bus rescan; undefined when it is not there. */
export async function lookForDevice(deps: NodeDeps, volumeId: string): Promise<FoundDevice | undefined> {
  if (!canHaveDevice(volumeId)) return undefined;
  try {
    return await deps.mounter.waitForDevice(volumeId, { byIdDir: deps.byIdDir, timeoutMs: 0 });
  } catch (e) {
    if (e instanceof CodedError && (e.code === Status.DEADLINE_EXCEEDED || e.code === Status.NOT_FOUND))
      return undefined;
    throw e;
  }
}
