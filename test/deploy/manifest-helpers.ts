/**
 * Loading and reading the deployment manifests for test/deploy: YAML documents with their file, the schema
 * validators (kubernetes-models and client-node in a child process, external-snapshotter CRD schemas with ajv), `$(VAR)`
 * expansion as kubelet does it, and a small RBAC evaluator. The assertions live in manifests.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(__dirname, '..', '..');
export const MANIFESTS = join(ROOT, 'manifests');
export const PLUGIN_DIR = join(MANIFESTS, 'cinder-csi-plugin');
/** The name our workloads give the image; kustomization.yaml's `images:` maps it to a registry and tag. */
export const OUR_IMAGE = 'cinder-csi-plugin';

export type K8sObject = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
};

export interface LoadedDoc {
  /** Path relative to the repository root, e.g. manifests/cinder-csi-plugin/csi-cinder-driver.yaml. */
  file: string;
  index: number;
  obj: K8sObject;
}

/** Every .yaml file under dir (recursively), sorted. */
export function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(full));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out.sort();
}

/** Parses every document of a YAML file; throws naming the file on a syntax error. Empty documents are dropped. */
export function loadYaml(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { prettyErrors: true });
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${relative(ROOT, path)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** The Kubernetes objects of every manifest file except kustomization.yaml files. */
export function loadManifests(): LoadedDoc[] {
  return yamlFiles(MANIFESTS)
    .filter((f) => !f.endsWith('kustomization.yaml'))
    .flatMap((f) => loadYaml(f).map((obj, index) => ({ file: relative(ROOT, f), index, obj: obj as K8sObject })));
}

/**
 * Runs test/deploy/validate-k8s.mjs (ESM) over the objects: kubernetes-models' schema validation, then unknown
 * fields against @kubernetes/client-node's models. One result per object, in order.
 */
export function validateWithKubernetesModels(
  objects: readonly object[],
): Array<{ status: 'valid' | 'invalid' | 'unsupported'; message?: string }> {
  const out = execFileSync(process.execPath, [join(__dirname, 'validate-k8s.mjs')], {
    cwd: ROOT,
    input: JSON.stringify(objects),
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

/**
 * Schemas vendored from kubernetes-csi/external-snapshotter's CRDs (test/deploy/schemas), keyed by
 * `apiVersion/kind`. Objects get additionalProperties: false, as the API server's strict field validation
 * (kubectl's default) refuses unknown fields, except where the CRD leaves an object open (metadata).
 */
export function snapshotValidators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: false, formats: { 'date-time': true } });
  const out = new Map<string, ValidateFunction>();
  for (const [key, file] of [
    ['snapshot.storage.k8s.io/v1/VolumeSnapshotClass', 'volumesnapshotclass.snapshot.storage.k8s.io-v1.json'],
    ['snapshot.storage.k8s.io/v1/VolumeSnapshot', 'volumesnapshot.snapshot.storage.k8s.io-v1.json'],
    // Not a CRD, but newer than kubernetes-models: the API's own definition (see the file's $comment).
    ['storage.k8s.io/v1/VolumeAttributesClass', 'volumeattributesclass.storage.k8s.io-v1.json'],
    [
      'groupsnapshot.storage.k8s.io/v1beta1/VolumeGroupSnapshotClass',
      'volumegroupsnapshotclass.groupsnapshot.storage.k8s.io-v1beta1.json',
    ],
  ] as const) {
    const schema = closeObjects(JSON.parse(readFileSync(join(__dirname, 'schemas', file), 'utf8')));
    out.set(key, ajv.compile(schema));
  }
  return out;
}

function closeObjects(schema: any): any {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: any = {};
  for (const [k, v] of Object.entries(schema))
    out[k] = k === 'properties' ? mapValues(v as object, closeObjects) : closeObjects(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function mapValues(o: object, f: (v: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

/** Pod template of a Deployment, DaemonSet or StatefulSet, or the spec of a Pod. */
export function podSpec(obj: K8sObject): any {
  return obj.kind === 'Pod' ? obj.spec : obj.spec.template.spec;
}

/**
 * A container's args with `$(VAR)` replaced by the value of its env entry VAR, as kubelet expands them.
 * Throws for a reference to a variable without a literal value: the flag check would see a placeholder.
 */
export function expandedArgs(container: any): string[] {
  const env = new Map<string, string>(
    (container.env ?? []).filter((e: any) => typeof e.value === 'string').map((e: any) => [e.name, e.value]),
  );
  return (container.args ?? []).map((arg: string) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
      const v = env.get(name);
      if (v === undefined)
        throw new Error(`container ${container.name}: ${arg} refers to $(${name}), which has no literal env value`);
      return v;
    }),
  );
}

/** The value of `--name=value` or `--name value` in args, or undefined. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(args[i]);
    if (m && m[1] === name) return m[2] ?? args[i + 1];
  }
  return undefined;
}

/** Which pod volume (and path inside it) a container path lands in: the deepest volumeMount that holds it. */
export function volumePath(container: any, path: string): { volume: string; rel: string } {
  const p = posix.normalize(path);
  let best: { volume: string; mountPath: string } | undefined;
  for (const m of container.volumeMounts ?? []) {
    const mp = posix.normalize(m.mountPath).replace(/\/$/, '');
    if ((p === mp || p.startsWith(`${mp}/`)) && (!best || mp.length > best.mountPath.length))
      best = { volume: m.name, mountPath: mp };
  }
  if (!best) throw new Error(`container ${container.name}: ${path} is in no volume mount`);
  return { volume: best.volume, rel: posix.relative(best.mountPath, p) };
}

/** The last WORKDIR of the Dockerfile: the working directory our containers start in. */
export function dockerfileWorkdir(dockerfile: string): string {
  const dirs = [...dockerfile.matchAll(/^WORKDIR\s+(\S+)/gm)].map((m) => m[1]);
  if (!dirs.length) throw new Error('Dockerfile has no WORKDIR');
  return dirs[dirs.length - 1];
}

/** The rules that bind to a ServiceAccount: ClusterRoles cluster-wide, Roles in their namespace. */
export function rulesOf(
  objects: readonly K8sObject[],
  sa: { name: string; namespace: string },
): Array<{ rule: any; namespace?: string }> {
  const out: Array<{ rule: any; namespace?: string }> = [];
  for (const b of objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
    const bound = (b.subjects ?? []).some(
      (s: any) => s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace,
    );
    if (!bound) continue;
    const role = objects.find(
      (o) =>
        o.kind === b.roleRef.kind &&
        o.metadata.name === b.roleRef.name &&
        (o.kind === 'ClusterRole' || o.metadata.namespace === b.metadata.namespace),
    );
    for (const rule of role?.rules ?? [])
      out.push({ rule, namespace: b.kind === 'RoleBinding' ? b.metadata.namespace : undefined });
  }
  return out;
}

/** Whether the ServiceAccount may do `verb` on `group`/`resource` (in `namespace`, for namespaced checks). */
export function can(
  objects: readonly K8sObject[],
  sa: { name: string; namespace: string },
  verb: string,
  group: string,
  resource: string,
  namespace?: string,
): boolean {
  return rulesOf(objects, sa).some(
    ({ rule, namespace: ns }) =>
      (ns === undefined || ns === namespace) &&
      (rule.apiGroups ?? []).includes(group) &&
      (rule.resources ?? []).includes(resource) &&
      (rule.verbs ?? []).includes(verb),
  );
}

/** Compares dotted versions (v4.10.0 vs v4.13.0): negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split('.').map(Number);
  const pb = b.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
