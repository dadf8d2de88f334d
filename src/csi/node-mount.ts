/**
 * The mount phases of the Node service: NodeStageVolume / NodeUnstageVolume find the attached device by its
 * by-id link (never the publish_context path, reference issue #779) and safe format-and-mount it on the
 * staging path; NodePublishVolume / NodeUnpublishVolume bind it into the pod. Kernel work is the mounter's.
 */
import { DEFAULT_FS_TYPE } from '../mount/filesystem';
import type { ServiceHandlers, CallContext } from './server';
import type {
  NodePublishVolumeRequest,
  NodePublishVolumeResponse,
  NodeStageVolumeRequest,
  NodeStageVolumeResponse,
  NodeUnpublishVolumeRequest,
  NodeUnpublishVolumeResponse,
  NodeUnstageVolumeRequest,
  NodeUnstageVolumeResponse,
} from './types';
import { failedPrecondition, invalidArgument, unimplemented } from './errors';
import { applyFsGroup } from '../mount/fs-group';
import { requireMessage, requirePathUnder, requireString, validateCapability } from './validate';
import {
  EPHEMERAL_KEY,
  RESIZE_REQUIRED_KEY,
  isBlock,
  isReaderOnly,
  stagedBlockDevice,
  waitForVolumeDevice,
  type NodeDeps,
} from './node-deps';

/** Handlers of the staging and publishing phases. */
export function mountHandlers(deps: NodeDeps): ServiceHandlers {
  return {
    NodeStageVolume: (req: NodeStageVolumeRequest, ctx: CallContext) => nodeStageVolume(deps, req, ctx),
    NodeUnstageVolume: (req: NodeUnstageVolumeRequest, ctx: CallContext) => nodeUnstageVolume(deps, req, ctx),
    NodePublishVolume: (req: NodePublishVolumeRequest, ctx: CallContext) => nodePublishVolume(deps, req, ctx),
    NodeUnpublishVolume: (req: NodeUnpublishVolumeRequest, ctx: CallContext) => nodeUnpublishVolume(deps, req, ctx),
  };
}

/**
 * Stages a volume. Already staged (this device on this path) → success. Throws INVALID_ARGUMENT naming
 * a missing or misplaced field, DEADLINE_EXCEEDED when the device never appears before the caller's
 * deadline, FAILED_PRECONDITION when another device is mounted on the path or the device holds a
 * partition table or an unknown signature (it is never formatted then), INTERNAL when mkfs or mount fail.
 */
export async function nodeStageVolume(
  deps: NodeDeps,
  req: NodeStageVolumeRequest,
  ctx: CallContext,
): Promise<NodeStageVolumeResponse> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  const cap = requireMessage(req.volume_capability, 'volume_capability');
  validateCapability(cap, 'volume_capability');

  const device = await waitForVolumeDevice(deps, volumeId, ctx);
  ctx.log.debug({ device: device.path, link: device.link, sizeBytes: device.sizeBytes }, 'found volume device');
  // A raw block volume is published straight from the device; the staging path stays as kubelet made it.
  if (isBlock(cap)) return {};

  const mount = cap.mount!;
  const res = await deps.mounter.stageFilesystem({
    device: device.path,
    stagingPath,
    fsType: mount.fs_type || DEFAULT_FS_TYPE,
    mountFlags: mount.mount_flags,
    readOnly: isReaderOnly(cap),
    resizeIfNeeded: req.volume_context?.[RESIZE_REQUIRED_KEY] === 'true',
    signal: ctx.signal,
  });
  if (res.alreadyStaged) ctx.log.info({ stagingPath }, 'volume already staged; nothing to do');
  else
    ctx.log.info({ stagingPath, device: device.path, fsType: res.fsType, formatted: res.formatted }, 'volume staged');
  return {};
}

/**
 * Unmounts everything on the staging path and removes it. A missing path or one with nothing mounted is
 * success; a stale mount (ENOTCONN, EIO) is detached lazily. Nothing outside the path is touched.
 * Throws FAILED_PRECONDITION when the mount is busy or the unmounted directory is not empty.
 */
export async function nodeUnstageVolume(
  deps: NodeDeps,
  req: NodeUnstageVolumeRequest,
  ctx: CallContext,
): Promise<NodeUnstageVolumeResponse> {
  requireString(req.volume_id, 'volume_id');
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  await deps.mounter.cleanupMountPoint(stagingPath);
  ctx.log.info({ stagingPath }, 'volume unstaged');
  return {};
}

/**
 * Publishes a staged volume at target_path (created if missing), read-only when `readonly` is set or the
 * access mode only reads. Already published the same way → success. Throws INVALID_ARGUMENT naming a
 * missing or misplaced field, UNIMPLEMENTED for an inline ephemeral volume (as the reference since v1.31,
 * issue #2599), FAILED_PRECONDITION when the volume is not staged, ALREADY_EXISTS when something else
 * (or this volume in the other read-only mode) is mounted at the target.
 */
export async function nodePublishVolume(
  deps: NodeDeps,
  req: NodePublishVolumeRequest,
  ctx: CallContext,
): Promise<NodePublishVolumeResponse> {
  const volumeId = requireString(req.volume_id, 'volume_id');
  if (req.volume_context?.[EPHEMERAL_KEY] === 'true') {
    throw unimplemented(
      'CSI inline ephemeral volumes are not supported; use a generic ephemeral volume (a PVC template)',
    );
  }
  const targetPath = requirePathUnder(req.target_path, deps.kubeletDir, 'target_path');
  const stagingPath = requirePathUnder(req.staging_target_path, deps.kubeletDir, 'staging_target_path');
  const cap = requireMessage(req.volume_capability, 'volume_capability');
  validateCapability(cap, 'volume_capability');
  const readOnly = req.readonly || isReaderOnly(cap);

  if (isBlock(cap)) {
    const device = await stagedBlockDevice(deps, volumeId, ctx);
    const res = await deps.mounter.publishBlock(device.path, targetPath, { readOnly });
    logPublished(ctx, res.alreadyPublished, { targetPath, device: device.path, readOnly });
    return {};
  }
  if (!(await deps.mounter.isMountPoint(stagingPath))) {
    throw failedPrecondition(
      `volume ${volumeId} is not staged: nothing is mounted at staging_target_path ${stagingPath}`,
    );
  }
  const fsGroup = cap.mount!.volume_mount_group ? fsGroupId(cap.mount!.volume_mount_group) : undefined;
  const res = await deps.mounter.publishBind(stagingPath, targetPath, { readOnly, mountFlags: cap.mount!.mount_flags });
  // Kubelet leaves fsGroup to us once we advertise VOLUME_MOUNT_GROUP; like kubelet, not on read-only mounts.
  // Once per publish: a periodic republish (requiresRepublish) finds it done.
  if (fsGroup !== undefined && !readOnly && !res.alreadyPublished) await applyFsGroup(targetPath, fsGroup);
  logPublished(ctx, res.alreadyPublished, { targetPath, stagingPath, readOnly, fsGroup });
  return {};
}

/** volume_mount_group as a gid; INVALID_ARGUMENT when it is not a decimal id. */
function fsGroupId(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 0x7fffffff) {
    throw invalidArgument('volume_capability.mount.volume_mount_group', `"${value}" is not a group id`);
  }
  return Number(value);
}

function logPublished(ctx: CallContext, already: boolean, fields: Record<string, unknown>): void {
  ctx.log.info(fields, already ? 'volume already published; nothing to do' : 'volume published');
}

/**
 * Unmounts everything at target_path and removes it (directory or raw-block file). A missing target or
 * one with nothing mounted is success; a stale mount is detached lazily. Nothing outside the path is
 * touched. Throws FAILED_PRECONDITION when the mount is busy or an unmounted directory is not empty.
 */
export async function nodeUnpublishVolume(
  deps: NodeDeps,
  req: NodeUnpublishVolumeRequest,
  ctx: CallContext,
): Promise<NodeUnpublishVolumeResponse> {
  requireString(req.volume_id, 'volume_id');
  const targetPath = requirePathUnder(req.target_path, deps.kubeletDir, 'target_path');
  await deps.mounter.cleanupMountPoint(targetPath);
  ctx.log.info({ targetPath }, 'volume unpublished');
  return {};
}
