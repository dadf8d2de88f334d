/**
 * PVC annotations from the Kubernetes API, for `--pvc-annotations`: CreateVolume reads the affinity keys
 * of the PVC it provisions for (as the reference driver's controller does with its PVC lister). The
 * controller depends only on the PvcAnnotationGetter type; main.ts builds the real one here.
 */
import { CodedError, Status, messageOf } from '../errors';

/**
 * Reads the annotations of PVC `namespace/name` ({} when it has none). Rejects with a CodedError:
 * INVALID_ARGUMENT naming the PVC when it does not exist, UNAVAILABLE when the API cannot be reached,
 * FAILED_PRECONDITION when the controller's ServiceAccount may not read PVCs. Tests pass a fake.
 */
export type PvcAnnotationGetter = (
  namespace: string,
  name: string,
  signal?: AbortSignal,
) => Promise<Record<string, string>>;

/** The part of @kubernetes/client-node's CoreV1Api this module calls. */
interface PvcReader {
  readNamespacedPersistentVolumeClaim(req: {
    name: string;
    namespace: string;
  }): Promise<{ metadata?: { annotations?: Record<string, string> } }>;
}

/**
 * A PvcAnnotationGetter on @kubernetes/client-node 1.x (ESM, loaded on first use, as metadata-sources.ts
 * kubernetesNodeGetter does): in-cluster config, else KUBECONFIG / ~/.kube/config (`loadFromDefault`), or
 * `kubeconfigPath`. The client is built once and reused.
 */
export function kubePvcAnnotations(opts: { kubeconfigPath?: string } = {}): PvcAnnotationGetter {
  let api: Promise<PvcReader> | undefined;
  const client = async (): Promise<PvcReader> => {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
    else kc.loadFromDefault();
    return kc.makeApiClient(k8s.CoreV1Api);
  };
  return async (namespace, name, signal) => {
    let reader: PvcReader;
    try {
      reader = await (api ??= client());
    } catch (e) {
      api = undefined; // a broken kubeconfig may be fixed by the next call (mounted token appearing)
      throw new CodedError(
        Status.UNAVAILABLE,
        `cannot build a Kubernetes client to read PVC ${namespace}/${name}: ${messageOf(e)}`,
        { cause: e },
      );
    }
    return readPvcAnnotations(reader, namespace, name, signal);
  };
}

/** Reads one PVC's annotations through `reader`, mapping failures as PvcAnnotationGetter documents. */
export async function readPvcAnnotations(
  reader: PvcReader,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  try {
    const pvc = await abortable(reader.readNamespacedPersistentVolumeClaim({ name, namespace }), signal);
    return { ...(pvc.metadata?.annotations ?? {}) };
  } catch (e) {
    throw pvcReadError(e, namespace, name, signal);
  }
}

/** The CodedError for a failed PVC read: by the API's HTTP status (ApiException `code`), else unreachable. */
export function pvcReadError(e: unknown, namespace: string, name: string, signal?: AbortSignal): CodedError {
  if (e instanceof CodedError) return e;
  const pvc = `PVC ${namespace}/${name}`;
  if (signal?.aborted)
    return new CodedError(Status.DEADLINE_EXCEEDED, `gave up reading ${pvc} from the Kubernetes API`, { cause: e });
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 404) {
    return new CodedError(
      Status.INVALID_ARGUMENT,
      `parameters: csi.storage.k8s.io/pvc/namespace and pvc/name name ${pvc}, which the Kubernetes API does not have`,
      { cause: e },
    );
  }
  if (code === 401 || code === 403) {
    return new CodedError(
      Status.FAILED_PRECONDITION,
      `the Kubernetes API refused to let the controller read ${pvc} (HTTP ${code}); its ServiceAccount needs get on persistentvolumeclaims`,
      { cause: e },
    );
  }
  return new CodedError(Status.UNAVAILABLE, `cannot read ${pvc} from the Kubernetes API: ${messageOf(e)}`, {
    cause: e,
  });
}

/** `p`, or a rejection as soon as `signal` fires (the client has no per-call abort of its own). */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
