/**
 * Child of pvc-annotations.test.ts: runs the real kubePvcAnnotations (@kubernetes/client-node is ESM, which
 * jest's CommonJS runtime cannot load) against the kubeconfig in argv[2] and prints one JSON line per PVC
 * `namespace/name` in argv[3..]: `{ annotations }` or `{ code, details }`.
 */
import { CodedError } from '../../src/errors';
import { kubePvcAnnotations } from '../../src/kube/pvc-annotations';

async function main(): Promise<void> {
  const [kubeconfigPath, ...pvcs] = process.argv.slice(2);
  const get = kubePvcAnnotations({ kubeconfigPath });
  for (const ref of pvcs) {
    const [namespace, name] = ref.split('/');
    try {
      process.stdout.write(
        `${JSON.stringify({ annotations: await get(namespace, name, AbortSignal.timeout(10_000)) })}\n`,
      );
    } catch (e) {
      const c = e instanceof CodedError ? e : undefined;
      process.stdout.write(`${JSON.stringify({ code: c?.code ?? -1, details: c?.details ?? String(e) })}\n`);
    }
  }
}

void main();
