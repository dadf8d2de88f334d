/**
 * Which lock keys each mutating CSI call takes. Read-only calls (Get, List, Validate, stats, capabilities)
 * take none, so a slow attach never blocks kubelet's stats polling.
 */

import { normalize } from 'node:path';

type Req = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const volume = (r: Req) => [`volume ${str(r.volume_id)}`];
/**
 * Node calls also lock the paths they mount on or remove: two volumes named on one path (a confused or
 * hostile caller) must not race a mount against an unmount-and-rmdir there.
 */
const paths =
  (...fields: string[]) =>
  (r: Req) => [...volume(r), ...fields.map((f) => `path ${normalize(str(r[f]) || ' ').replace(/(.)\/+$/, '$1')}`)];

const LOCK_KEYS: Record<string, (r: Req) => string[]> = {
  CreateVolume: (r) => [`volume name ${str(r.name)}`],
  DeleteVolume: volume,
  ControllerPublishVolume: volume,
  ControllerUnpublishVolume: volume,
  ControllerExpandVolume: volume,
  ControllerModifyVolume: volume,
  CreateSnapshot: (r) => [`snapshot name ${str(r.name)}`],
  DeleteSnapshot: (r) => [`snapshot ${str(r.snapshot_id)}`],
  // A volume is in one Cinder group at a time: two group snapshots of one volume take turns.
  CreateVolumeGroupSnapshot: (r) => [
    `group snapshot name ${str(r.name)}`,
    ...(Array.isArray(r.source_volume_ids) ? r.source_volume_ids : []).map((v) => `group snapshot of volume ${str(v)}`),
  ],
  DeleteVolumeGroupSnapshot: (r) => [`group snapshot ${str(r.group_snapshot_id)}`],
  NodeStageVolume: paths('staging_target_path'),
  NodeUnstageVolume: paths('staging_target_path'),
  NodePublishVolume: paths('target_path'),
  NodeUnpublishVolume: paths('target_path'),
  NodeExpandVolume: volume,
};

/** Lock keys for an RPC (by its short name, e.g. 'CreateVolume'); empty ids take no lock (validation rejects them). */
export function lockKeysFor(rpc: string, request: unknown): string[] {
  const f = LOCK_KEYS[rpc];
  if (!f || typeof request !== 'object' || request === null) return [];
  return f(request as Req).filter((k) => !/ $/.test(k));
}

/** The volume (or snapshot) a request is about, for log context. */
export function subjectOf(request: unknown): Record<string, string> {
  if (typeof request !== 'object' || request === null) return {};
  const r = request as Req;
  const out: Record<string, string> = {};
  for (const k of ['volume_id', 'snapshot_id', 'source_volume_id', 'group_snapshot_id', 'name', 'node_id'] as const) {
    const v = str(r[k]);
    if (v) out[k] = v.length > 128 ? `${v.slice(0, 128)}…` : v;
  }
  return out;
}
