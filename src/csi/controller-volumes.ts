/**
 * Controller RPCs about whole volumes: CreateVolume, DeleteVolume, ValidateVolumeCapabilities,
 * ControllerGetVolume, ListVolumes and ControllerExpandVolume. Each validates, routes to a backend and
 * answers; waiting, idempotency lookups and Cinder's quirks are the backend's (src/block).
 */
import { CodedError, Status } from '../errors';
import type { VolumeInfo, VolumeSource } from '../block/block-types';
import { aborted, failedPrecondition, invalidArgument, notFound } from './errors';
import type { CallContext, ServiceHandlers } from './server';
import type * as csi from './types';
import {
  GIB,
  gibToBytes,
  isMultiNode,
  requireMessage,
  requireString,
  sizeGiBFor,
  validateCapabilities,
  validateCapability,
} from './validate';
import { accessibleTopology, parseVolumeParameters, requestedZone } from './controller-params';
import type { ControllerDeps, ControllerRouting } from './controller-routing';
import { createObjectVolume, validateObjectCapabilities } from './controller-object';
import { pvcAffinity } from './controller-pvc';
import { parseMutableParameters, refuseObjectMutableParameters } from './controller-modify';
import { isObjectBackend } from '../object/object-params';
import { isObjectVolumeId, parseObjectVolumeId } from '../object/volume-id';

export function volumeHandlers(deps: ControllerDeps, routing: ControllerRouting): ServiceHandlers {
  const topo = { withTopology: deps.withTopology, ignoreVolumeAz: deps.blockStorage.ignoreVolumeAz };
  return {
    async CreateVolume(req: csi.CreateVolumeRequest, ctx: CallContext): Promise<csi.CreateVolumeResponse> {
      if (isObjectBackend(req.parameters ?? {})) {
        refuseObjectMutableParameters(req.mutable_parameters);
        return createObjectVolume(req, ctx, routing);
      }
      const name = requireString(req.name, 'name');
      validateCapabilities(req.volume_capabilities, 'volume_capabilities');
      const sizeGiB = sizeGiBFor(req.capacity_range);
      const params = parseVolumeParameters(req.parameters ?? {}, deps);
      // A VolumeAttributesClass given at creation: its type wins over the StorageClass's (CSI: mutable_parameters take precedence).
      const mutable = parseMutableParameters(req.mutable_parameters ?? {});
      const source = contentSource(req.volume_content_source);
      const backend = routing.forSecrets(req.secrets);
      // After the argument checks: a bad request must not wait on the Kubernetes API. A PVC annotation wins
      // over the same key given as a StorageClass parameter: it is the per-claim choice.
      const fromPvc = await pvcAffinity(deps.pvcAnnotations, req.parameters ?? {}, deps.log, ctx.signal);
      const multiNode = req.volume_capabilities.find((c) => isMultiNode([c]));
      const limit = BigInt(req.capacity_range?.limit_bytes || '0');
      const created = await backend.createVolume(
        {
          name,
          sizeGiB,
          sizeExplicit: BigInt(req.capacity_range?.required_bytes || '0') > 0n,
          limitGiB: limit > 0n ? Number(limit / BigInt(GIB)) : undefined,
          volumeType: mutable.volumeType ?? params.volumeType,
          availabilityZone: requestedZone(params.availability, req.accessibility_requirements, deps.withTopology),
          metadata: params.metadata,
          source,
          affinity: fromPvc.affinity ?? params.affinity,
          antiAffinity: fromPvc.antiAffinity ?? params.antiAffinity,
          multiNodeMode: multiNode?.access_mode?.mode,
        },
        ctx.signal,
      );
      const volume = volumeOut(
        created.volume,
        accessibleTopology(created.volume.zone, req.accessibility_requirements, topo),
      );
      return { volume: { ...volume, volume_context: created.context, content_source: sourceOut(source) } };
    },

    async DeleteVolume(req: csi.DeleteVolumeRequest, ctx: CallContext): Promise<csi.DeleteVolumeResponse> {
      const id = requireString(req.volume_id, 'volume_id');
      await routing.forVolume(id, req.secrets).deleteVolume(id, ctx.signal);
      return {};
    },

    async ValidateVolumeCapabilities(
      req: csi.ValidateVolumeCapabilitiesRequest,
      ctx: CallContext,
    ): Promise<csi.ValidateVolumeCapabilitiesResponse> {
      const id = requireString(req.volume_id, 'volume_id');
      const caps = req.volume_capabilities ?? [];
      if (caps.length === 0) throw invalidArgument('volume_capabilities', 'is required');
      caps.forEach((c, i) => {
        if (!c.access_type)
          throw invalidArgument(`volume_capabilities[${i}].access_type`, 'is required (block or mount)');
        if (!c.access_mode || c.access_mode.mode === 'UNKNOWN')
          throw invalidArgument(`volume_capabilities[${i}].access_mode`, 'is required');
      });
      const vol = await routing.forVolume(id, req.secrets).getVolume(id, ctx.signal);
      if (!vol) throw notFound(`volume ${id} does not exist`);
      try {
        if (isObjectVolumeId(id)) validateObjectCapabilities(caps, 'volume_capabilities');
        else
          validateCapabilities(caps, 'volume_capabilities', {
            allowMultiNode: (c) => c.access_type === 'block' && vol.multiattach,
          });
      } catch (e) {
        // An unsupported capability is an answer, not an error (CSI spec: confirmed stays unset).
        if (e instanceof CodedError && e.code === Status.INVALID_ARGUMENT) return { message: e.details };
        throw e;
      }
      return {
        confirmed: { volume_context: req.volume_context, volume_capabilities: caps, parameters: req.parameters },
      };
    },

    async ControllerGetVolume(
      req: csi.ControllerGetVolumeRequest,
      ctx: CallContext,
    ): Promise<csi.ControllerGetVolumeResponse> {
      const id = requireString(req.volume_id, 'volume_id');
      if (isObjectVolumeId(id)) return getObjectVolume(id, routing, ctx);
      // The request carries no secrets, so every configured cloud is asked (as the reference does).
      for (const [, backend] of routing.all()) {
        const vol = await backend.getVolume(id, ctx.signal, { checkNodes: true });
        if (vol) return { volume: volumeOut(vol, accessibleTopology(vol.zone, null, topo)), status: statusOut(vol) };
      }
      throw notFound(`volume ${id} does not exist`);
    },

    async ListVolumes(req: csi.ListVolumesRequest, ctx: CallContext): Promise<csi.ListVolumesResponse> {
      if (req.max_entries < 0) throw invalidArgument('max_entries', 'must not be negative');
      const clouds = routing.all();
      if (clouds.length === 0) return { entries: [], next_token: '' };
      let [marker, index] = parseListToken(
        req.starting_token,
        clouds.map(([name]) => name),
      );
      const entries: NonNullable<csi.ListVolumesResponse['entries']> = [];
      for (;;) {
        const [cloud, backend] = clouds[index];
        const page = await backend.listVolumes({ limit: req.max_entries, marker }, ctx.signal);
        entries.push(
          ...page.items.map((v) => ({
            volume: volumeOut(v, accessibleTopology(v.zone, null, topo)),
            status: statusOut(v),
          })),
        );
        if (page.nextMarker) return { entries, next_token: `${page.nextMarker}:${cloud}` };
        if (index + 1 >= clouds.length) return { entries, next_token: '' };
        // Like the reference, one cloud per call when paging; max_entries 0 means "all", so keep going.
        if (req.max_entries > 0) return { entries, next_token: `:${clouds[index + 1][0]}` };
        [marker, index] = [undefined, index + 1];
      }
    },

    async ControllerExpandVolume(
      req: csi.ControllerExpandVolumeRequest,
      ctx: CallContext,
    ): Promise<csi.ControllerExpandVolumeResponse> {
      const id = requireString(req.volume_id, 'volume_id');
      const range = requireMessage(req.capacity_range, 'capacity_range');
      const isObject = isObjectVolumeId(id);
      if (req.volume_capability && !isObject) validateCapability(req.volume_capability, 'volume_capability');
      const sizeGiB = sizeGiBFor(range);
      const done = await routing.forVolume(id, req.secrets).expandVolume(id, sizeGiB, ctx.signal);
      // A raw block volume has no filesystem for the node to grow; an object volume has no filesystem at all.
      return {
        capacity_bytes: gibToBytes(done.sizeGiB),
        node_expansion_required: !isObject && req.volume_capability?.access_type !== 'block',
      };
    },
  };
}

/**
 * ListVolumes tokens are `<marker>:<cloud>` (reference-compatible): the Cinder marker within that cloud,
 * empty to start it. No token: the first cloud. Anything else → ABORTED (CSI: the token is not valid).
 */
export function parseListToken(token: string, clouds: readonly string[]): [string | undefined, number] {
  if (!token) return [undefined, 0];
  const at = token.indexOf(':');
  const index = at < 0 ? -1 : clouds.indexOf(token.slice(at + 1));
  if (index < 0) throw aborted(`starting_token "${token}" is not one this plugin issued`);
  return [token.slice(0, at) || undefined, index];
}

/**
 * ControllerGetVolume of an object volume. The request carries no secrets, so only Swift volumes (reached
 * with the cloud.conf credentials) can be looked at; S3 ones → FAILED_PRECONDITION saying why.
 */
async function getObjectVolume(
  id: string,
  routing: ControllerRouting,
  ctx: CallContext,
): Promise<csi.ControllerGetVolumeResponse> {
  if (parseObjectVolumeId(id)?.provider !== 'swift') {
    throw failedPrecondition(
      `volume ${id}: ControllerGetVolume carries no secrets, so an S3 object volume cannot be inspected`,
    );
  }
  const vol = await routing.forVolume(id, undefined).getVolume(id, ctx.signal);
  if (!vol) throw notFound(`volume ${id} does not exist`);
  return { volume: volumeOut(vol, undefined), status: statusOut(vol) };
}

function contentSource(src: csi.VolumeContentSource | null): VolumeSource | undefined {
  if (!src?.type) return undefined;
  if (src.type === 'snapshot')
    return {
      kind: 'snapshot',
      id: requireString(src.snapshot?.snapshot_id, 'volume_content_source.snapshot.snapshot_id'),
    };
  return { kind: 'volume', id: requireString(src.volume?.volume_id, 'volume_content_source.volume.volume_id') };
}

function sourceOut(src: VolumeSource | undefined): csi.VolumeContentSourceOut | null {
  if (!src) return null;
  return src.kind === 'snapshot' ? { snapshot: { snapshot_id: src.id } } : { volume: { volume_id: src.id } };
}

function volumeOut(v: VolumeInfo, topology: csi.Topology[] | undefined): csi.Volume {
  return {
    volume_id: v.id,
    capacity_bytes: gibToBytes(v.sizeGiB),
    accessible_topology: topology ?? [],
    content_source: sourceOut(v.source),
  };
}

function statusOut(v: VolumeInfo) {
  return {
    published_node_ids: v.publishedNodeIds,
    volume_condition: { abnormal: v.abnormal !== undefined, message: v.abnormal ?? '' },
  };
}
