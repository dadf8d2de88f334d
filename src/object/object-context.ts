/**
 * volume_context of a created object volume: everything the node side reads to mount it (the shared
 * contract's keys). No credential is ever put here; the node gets those from node-stage secrets.
 */
import type { ObjectParams } from './object-params';
import type { ObjectVolumeRef } from './volume-id';

/** volume_context keys of object volumes (read by src/object/node-* and src/csi/node*). */
export const OBJECT_CONTEXT_KEYS = [
  'backend',
  'provider',
  'bucket',
  'prefix',
  'endpoint',
  'region',
  'pathStyle',
  'mounter',
  'mountOptions',
  'uid',
  'gid',
  'umask',
  'capacityBytes',
] as const;

/** The volume_context for `ref`. Optional keys (endpoint for swift, mountOptions, uid, gid, umask) are omitted when unset. */
export function objectVolumeContext(
  ref: ObjectVolumeRef,
  p: Readonly<ObjectParams>,
  endpoint: string | undefined,
  capacityBytes: bigint,
): Record<string, string> {
  const ctx: Record<string, string> = {
    backend: 'object',
    provider: ref.provider,
    bucket: ref.bucket,
    prefix: ref.prefix,
    region: p.region,
    pathStyle: String(p.pathStyle),
    mounter: p.mounter,
    capacityBytes: capacityBytes.toString(),
  };
  if (ref.provider === 's3' && endpoint) ctx.endpoint = endpoint;
  for (const k of ['mountOptions', 'uid', 'gid', 'umask'] as const) {
    const v = p[k];
    if (v) ctx[k] = v;
  }
  return ctx;
}
