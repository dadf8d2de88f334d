/**
 * The Controller handlers' side of object volumes (`backend: object`, ids `obj1:…`): the capability rule
 * (mount only, every access mode) and CreateVolume. Buckets, records and deletion are src/object's;
 * the routing (controller-routing.ts) picks the object backend for these requests.
 */
import { invalidArgument } from './errors';
import type { CallContext } from './server';
import type * as csi from './types';
import { requireString, sizeGiBFor, gibToBytes } from './validate';
import type { ControllerRouting } from './controller-routing';
import { parseObjectParameters } from '../object/object-params';

/** Every access mode CSI defines: FUSE mounts of one bucket can be shared by any number of nodes. */
const OBJECT_ACCESS_MODES: readonly csi.AccessModeName[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
];

/**
 * Checks one capability for an object volume: mount access type (any fs_type: it is ignored, FUSE decides)
 * and a known access mode, single- or multi-node. INVALID_ARGUMENT naming the field otherwise.
 */
export function validateObjectCapability(cap: csi.VolumeCapability, field: string): void {
  if (cap.access_type === 'block' || cap.block)
    throw invalidArgument(`${field}.access_type`, 'block is not supported for object volumes (use mount)');
  if (cap.access_type !== 'mount' || !cap.mount) throw invalidArgument(`${field}.access_type`, 'is required (mount)');
  const mode = cap.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') throw invalidArgument(`${field}.access_mode`, 'is required');
  if (!OBJECT_ACCESS_MODES.includes(mode))
    throw invalidArgument(`${field}.access_mode`, `"${mode}" is not a known access mode`);
}

/** Checks a non-empty list of object-volume capabilities. */
export function validateObjectCapabilities(caps: csi.VolumeCapability[] | undefined, field: string): void {
  if (!caps || caps.length === 0) throw invalidArgument(field, 'is required');
  caps.forEach((c, i) => validateObjectCapability(c, `${field}[${i}]`));
}

/** CreateVolume for `parameters.backend: object`. Snapshot or volume sources → INVALID_ARGUMENT. */
export async function createObjectVolume(
  req: csi.CreateVolumeRequest,
  ctx: CallContext,
  routing: ControllerRouting,
): Promise<csi.CreateVolumeResponse> {
  const name = requireString(req.name, 'name');
  validateObjectCapabilities(req.volume_capabilities, 'volume_capabilities');
  const sizeGiB = sizeGiBFor(req.capacity_range);
  const params = parseObjectParameters(req.parameters ?? {});
  if (req.volume_content_source?.type)
    throw invalidArgument('volume_content_source', 'is not supported for object volumes (no snapshots or clones)');
  const backend = routing.forObjectCreate(params, req.secrets);
  const created = await backend.createVolume({ name, sizeGiB, sizeExplicit: true, metadata: {} }, ctx.signal);
  const v = created.volume;
  return {
    volume: {
      volume_id: v.id,
      capacity_bytes: gibToBytes(v.sizeGiB),
      accessible_topology: [],
      volume_context: created.context,
      content_source: null,
    },
  };
}
