/**
 * ControllerModifyVolume and the mutable parameters of a VolumeAttributesClass. The one StorageClass key a
 * live Cinder volume can change is `type` (Cinder retype); `migrationPolicy` says whether that retype may move
 * the data to another backend. The other StorageClass keys name things fixed at creation (zone, filesystem,
 * backend, placement hints) and are refused by name, as are unknown keys.
 */
import type { ModifyVolumeSpec } from '../block/block-types';
import { AFFINITY_KEY, ANTI_AFFINITY_KEY } from '../block/block-volumes';
import { invalidArgument, notFound } from './errors';
import type { CallContext, ServiceHandlers } from './server';
import type * as csi from './types';
import { requireString } from './validate';
import type { ControllerRouting } from './controller-routing';
import { isObjectVolumeId } from '../object/volume-id';

/** Mutable parameter keys. */
export const MUTABLE_TYPE_KEY = 'type';
export const MIGRATION_POLICY_KEY = 'migrationPolicy';
/** Cinder's migration_policy words: `never` (the default) refuses a retype that must move the data. */
const MIGRATION_POLICIES = ['never', 'on-demand'] as const;
const MUTABLE_KEYS = [MUTABLE_TYPE_KEY, MIGRATION_POLICY_KEY];
/** StorageClass keys fixed when the volume is made: named in the refusal so the VolumeAttributesClass can be fixed. */
const IMMUTABLE_KEYS = new Set(['availability', 'fsType', 'backend', AFFINITY_KEY, ANTI_AFFINITY_KEY]);
/** Keys the Kubernetes sidecars add (csi-resizer's --extra-modify-metadata: the PVC and PV names); no volume attribute. */
const SIDECAR_PREFIX = 'csi.storage.k8s.io/';

/**
 * Parses `mutable_parameters` (of ControllerModifyVolume or CreateVolume; `field` names the request field).
 * INVALID_ARGUMENT naming `<field>.<key>` for an immutable or unknown key or a bad value.
 */
export function parseMutableParameters(
  params: Readonly<Record<string, string>>,
  field = 'mutable_parameters',
): ModifyVolumeSpec {
  for (const key of Object.keys(params)) {
    if (MUTABLE_KEYS.includes(key) || key.startsWith(SIDECAR_PREFIX)) continue;
    if (IMMUTABLE_KEYS.has(key))
      throw invalidArgument(
        `${field}.${key}`,
        'cannot change on an existing Cinder volume (only type can; put it in the StorageClass)',
      );
    throw invalidArgument(`${field}.${key}`, `is not a mutable parameter (known: ${MUTABLE_KEYS.join(', ')})`);
  }
  const spec: ModifyVolumeSpec = { allowMigration: false };
  if (MUTABLE_TYPE_KEY in params) {
    if (!params[MUTABLE_TYPE_KEY].trim())
      throw invalidArgument(`${field}.${MUTABLE_TYPE_KEY}`, 'must name a volume type');
    spec.volumeType = params[MUTABLE_TYPE_KEY];
  }
  const policy = params[MIGRATION_POLICY_KEY];
  if (policy !== undefined) {
    if (!(MIGRATION_POLICIES as readonly string[]).includes(policy)) {
      throw invalidArgument(
        `${field}.${MIGRATION_POLICY_KEY}`,
        `"${policy}" must be ${MIGRATION_POLICIES.join(' or ')}`,
      );
    }
    spec.allowMigration = policy === 'on-demand';
  }
  return spec;
}

/** CreateVolume's `mutable_parameters` of an object volume: it has none, so any key is refused by name. */
export function refuseObjectMutableParameters(params: Readonly<Record<string, string>> | undefined): void {
  const key = Object.keys(params ?? {})[0];
  if (key !== undefined)
    throw invalidArgument(
      `mutable_parameters.${key}`,
      'is not supported by object volumes (they have no mutable parameters)',
    );
}

export function modifyHandlers(routing: ControllerRouting): ServiceHandlers {
  return {
    async ControllerModifyVolume(
      req: csi.ControllerModifyVolumeRequest,
      ctx: CallContext,
    ): Promise<csi.ControllerModifyVolumeResponse> {
      const id = requireString(req.volume_id, 'volume_id');
      // No key is a request to change nothing (csi-sanity sends it): the volume must exist, nothing else.
      const params = req.mutable_parameters ?? {};
      // CSI: "Parameters not supported" is INVALID_ARGUMENT; an object volume has no parameter to change.
      if (isObjectVolumeId(id)) refuseObjectMutableParameters(params);
      const spec = parseMutableParameters(params);
      const backend = routing.forVolume(id, req.secrets);
      if (backend.modifyVolume) {
        await backend.modifyVolume(id, spec, ctx.signal);
      } else if (!(await backend.getVolume(id, ctx.signal))) {
        throw notFound(`volume ${id} does not exist`);
      }
      return {};
    },
  };
}
