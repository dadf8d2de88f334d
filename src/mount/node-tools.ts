/**
 * The external tools the node side runs. Probe reports the required ones missing; `doctor` checks both
 * lists. Kept here, beside the code that runs them, so the two never drift apart.
 */

/** Without these no block volume can be staged: Probe fails. */
export const REQUIRED_TOOLS = ['mount', 'umount', 'blkid', 'mkfs.ext4', 'e2fsck', 'resize2fs'];
/** Needed by some volumes or repair paths only (xfs, rescans, object storage, rolling back an interrupted grow). */
export const OPTIONAL_TOOLS = [
  'mkfs.xfs',
  'xfs_growfs',
  'udevadm',
  'e2undo',
  'blockdev',
  's3fs',
  'rclone',
  'fusermount',
];
