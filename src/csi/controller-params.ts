/**
 * StorageClass and VolumeSnapshotClass parameters, topology and metadata for the Controller handlers:
 * reference-compatible keys, unknown keys refused by name (a typo must not silently give a default
 * volume), and the keys the Kubernetes sidecars add (`csi.storage.k8s.io/*`) accepted.
 */
import { AFFINITY_KEY, ANTI_AFFINITY_KEY } from '../block/block-volumes';
import { invalidArgument } from './errors';
import type { Topology, TopologyRequirement } from './types';
import { TOPOLOGY_ZONE_KEY } from './controller-routing';

/** Volume metadata key carrying `--cluster` (reference-compatible). */
export const CLUSTER_METADATA_KEY = 'cinder.csi.openstack.org/cluster';
/** Prefix of the keys external-provisioner/-snapshotter add with --extra-create-metadata. */
const SIDECAR_PREFIX = 'csi.storage.k8s.io/';
/** Sidecar keys copied into Cinder metadata, as the reference does. */
const VOLUME_METADATA_KEYS = [
  'csi.storage.k8s.io/pvc/name',
  'csi.storage.k8s.io/pvc/namespace',
  'csi.storage.k8s.io/pv/name',
];
const SNAPSHOT_METADATA_KEYS = [
  'csi.storage.k8s.io/volumesnapshot/name',
  'csi.storage.k8s.io/volumesnapshot/namespace',
  'csi.storage.k8s.io/volumesnapshotcontent/name',
];
/** `fsType` is the pre-CSI StorageClass key; the node reads the capability's fs_type, so it is accepted and ignored.
 *  `backend` is `block` here (CreateVolume sends `backend: object` to src/object before parsing these). */
const VOLUME_KEYS = new Set(['type', 'availability', 'fsType', 'backend']);
const SNAPSHOT_KEYS = new Set(['type', 'force-create', 'availability']);

export interface VolumeParams {
  volumeType?: string;
  availability?: string;
  metadata: Record<string, string>;
  affinity?: string[];
  antiAffinity?: string[];
}

/** The `--extra-create-metadata` keys naming the PVC a CreateVolume is for. */
export const PVC_NAME_KEY = 'csi.storage.k8s.io/pvc/name';
export const PVC_NAMESPACE_KEY = 'csi.storage.k8s.io/pvc/namespace';

/**
 * Parses CreateVolume `parameters`. Affinity keys (normally PVC annotations, read from the Kubernetes API
 * by controller-pvc.ts; accepted here too, as StorageClass parameters) are honoured only with
 * `--pvc-annotations`. INVALID_ARGUMENT naming `parameters.<key>` for any other key.
 */
export function parseVolumeParameters(
  params: Readonly<Record<string, string>>,
  o: { cluster: string; pvcAnnotations?: unknown },
): VolumeParams {
  const out: VolumeParams = { metadata: {} };
  for (const [key, value] of Object.entries(params)) {
    if (key === AFFINITY_KEY || key === ANTI_AFFINITY_KEY) {
      if (!o.pvcAnnotations)
        throw invalidArgument(`parameters.${key}`, 'is honoured only when the controller runs with --pvc-annotations');
      const refs = splitVolumeRefs(value);
      if (key === AFFINITY_KEY) out.affinity = refs;
      else out.antiAffinity = refs;
    } else if (!VOLUME_KEYS.has(key) && !key.startsWith(SIDECAR_PREFIX)) {
      throw invalidArgument(
        `parameters.${key}`,
        `is not a known parameter (known: ${[...VOLUME_KEYS].join(', ')}, ${SIDECAR_PREFIX}*)`,
      );
    }
  }
  if (params.type) out.volumeType = params.type;
  if (params.availability) out.availability = params.availability;
  if (o.cluster) out.metadata[CLUSTER_METADATA_KEY] = o.cluster;
  for (const k of VOLUME_METADATA_KEYS) if (params[k]) out.metadata[k] = params[k];
  return out;
}

/** An affinity value: a comma list of volume names or ids, blanks dropped. */
export function splitVolumeRefs(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface SnapshotParams {
  kind: 'snapshot' | 'backup';
  force: boolean;
  availability?: string;
  metadata: Record<string, string>;
}

/** Parses CreateSnapshot `parameters`: `type` snapshot|backup, `force-create` true|false, `availability`. */
export function parseSnapshotParameters(params: Readonly<Record<string, string>>, cluster: string): SnapshotParams {
  for (const key of Object.keys(params)) {
    if (!SNAPSHOT_KEYS.has(key) && !key.startsWith(SIDECAR_PREFIX)) {
      throw invalidArgument(
        `parameters.${key}`,
        `is not a known parameter (known: ${[...SNAPSHOT_KEYS].join(', ')}, ${SIDECAR_PREFIX}*)`,
      );
    }
  }
  const type = params.type || 'snapshot';
  if (type !== 'snapshot' && type !== 'backup')
    throw invalidArgument('parameters.type', `"${type}" must be snapshot or backup`);
  const force = params['force-create'] ?? 'false';
  if (!/^(true|false)$/i.test(force))
    throw invalidArgument('parameters.force-create', `"${force}" must be true or false`);
  const metadata: Record<string, string> = {};
  if (cluster) metadata[CLUSTER_METADATA_KEY] = cluster;
  for (const k of SNAPSHOT_METADATA_KEYS) if (params[k]) metadata[k] = params[k];
  return {
    kind: type,
    force: force.toLowerCase() === 'true',
    availability: params.availability || undefined,
    metadata,
  };
}

/**
 * The AZ to create in: the `availability` parameter, else (with topology) the first preferred segment
 * carrying the zone key, then the first requisite one; undefined lets Cinder choose.
 */
export function requestedZone(
  availability: string | undefined,
  req: TopologyRequirement | null,
  withTopology: boolean,
): string | undefined {
  if (availability) return availability;
  if (!withTopology || !req) return undefined;
  return zonesOf(req.preferred)[0] ?? zonesOf(req.requisite)[0];
}

/**
 * accessible_topology of a created volume: its real AZ, or with `ignore-volume-az` the requested zones
 * (preferred, else requisite) as the reference does for clouds whose Nova and Cinder AZs differ.
 */
export function accessibleTopology(
  zone: string | undefined,
  req: TopologyRequirement | null,
  o: { withTopology: boolean; ignoreVolumeAz: boolean },
): Topology[] | undefined {
  if (!o.withTopology) return undefined;
  if (o.ignoreVolumeAz && req) {
    const wanted = zonesOf(req.preferred).length ? zonesOf(req.preferred) : zonesOf(req.requisite);
    if (wanted.length) return wanted.map((z) => ({ segments: { [TOPOLOGY_ZONE_KEY]: z } }));
  }
  return zone ? [{ segments: { [TOPOLOGY_ZONE_KEY]: zone } }] : undefined;
}

function zonesOf(list: readonly Topology[] | undefined): string[] {
  return (list ?? []).map((t) => t.segments?.[TOPOLOGY_ZONE_KEY]).filter((z): z is string => !!z);
}
