/**
 * Affinity from PVC annotations (`--pvc-annotations` with a getter): the reference driver's controller reads
 * `cinder.csi.openstack.org/affinity` and `/anti-affinity` from the PVC that external-provisioner names in
 * the `--extra-create-metadata` parameters, and turns them into Cinder scheduler hints. Names are resolved
 * to ids by the backend (block-sources resolveVolumeRefs), exactly as for the StorageClass parameters.
 */
import { CodedError, messageOf } from '../errors';
import { AFFINITY_KEY, ANTI_AFFINITY_KEY } from '../block/block-volumes';
import type { Logger } from '../log';
import type { PvcAnnotationGetter } from '../kube/pvc-annotations';
import { unavailable } from './errors';
import { PVC_NAME_KEY, PVC_NAMESPACE_KEY, splitVolumeRefs } from './controller-params';

export interface PvcAffinity {
  affinity?: string[];
  antiAffinity?: string[];
}

/**
 * The affinity annotations of the PVC this CreateVolume is for; {} when there is no getter, or the request
 * does not name its PVC (no `--extra-create-metadata`), or the PVC carries neither key. A key present but
 * blank yields [] (it overrides a StorageClass value with "no hint"). Errors: the getter's CodedError
 * (INVALID_ARGUMENT for a missing PVC), anything else UNAVAILABLE naming the PVC.
 */
export async function pvcAffinity(
  get: boolean | PvcAnnotationGetter | undefined,
  params: Readonly<Record<string, string>>,
  log: Logger,
  signal: AbortSignal,
): Promise<PvcAffinity> {
  if (typeof get !== 'function') return {};
  const namespace = params[PVC_NAMESPACE_KEY];
  const name = params[PVC_NAME_KEY];
  if (!namespace || !name) {
    log.debug(
      { namespace, name },
      'CreateVolume names no PVC (external-provisioner without --extra-create-metadata); no PVC annotations read',
    );
    return {};
  }
  let annotations: Record<string, string>;
  try {
    annotations = await get(namespace, name, signal);
  } catch (e) {
    if (e instanceof CodedError) throw e;
    throw unavailable(`cannot read the annotations of PVC ${namespace}/${name}: ${messageOf(e)}`);
  }
  const out: PvcAffinity = {};
  if (annotations[AFFINITY_KEY] !== undefined) out.affinity = splitVolumeRefs(annotations[AFFINITY_KEY]);
  if (annotations[ANTI_AFFINITY_KEY] !== undefined) out.antiAffinity = splitVolumeRefs(annotations[ANTI_AFFINITY_KEY]);
  return out;
}
