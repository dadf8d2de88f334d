/**
 * The reference driver's manifests (kubernetes/cloud-provider-openstack, read-only test input) and the table of
 * sidecar tags confirmed to exist, from shared/reference/cpo-manifests/ beside this checkout. A worktree sits one
 * level deeper than the main checkout, so every parent directory is tried. They live outside the repository and
 * are never copied into it: a test reads them at run time, and under CI=true their absence fails it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IN_CI } from './prereq';
import { loadYaml, podSpec, yamlFiles, type K8sObject } from '../deploy/manifest-helpers';

const RELATIVE = join('shared', 'reference', 'cpo-manifests');

function findReferenceDir(): string | undefined {
  for (let dir = join(__dirname, '..', '..'); ; dir = dirname(dir)) {
    const candidate = join(dir, '..', RELATIVE);
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

export const REFERENCE_DIR = findReferenceDir();

/**
 * `describe` that runs when the reference directory is there; otherwise a todo locally and a failure under CI=true.
 */
export function describeWithReference(name: string, body: (dir: string) => void): void {
  if (REFERENCE_DIR) {
    describe(name, () => body(REFERENCE_DIR));
  } else if (IN_CI) {
    describe(name, () => {
      it('finds ../shared/reference/cpo-manifests', () => {
        throw new Error(`missing under CI=true: ${RELATIVE} beside this checkout or one of its parents`);
      });
    });
  } else {
    describe(`${name} [${RELATIVE} not found]`, () => {
      it.todo(`needs ${RELATIVE} beside this checkout`);
    });
  }
}

export interface ReferenceContainer {
  /** File name inside cpo-manifests/. */
  file: string;
  workload: K8sObject;
  container: any;
}

/** Every container of the reference's Deployments and DaemonSets (top-level YAML files, not examples/). */
export function referenceContainers(dir: string): ReferenceContainer[] {
  return yamlFiles(dir)
    .filter((f) => dirname(f) === dir)
    .flatMap((f) => loadYaml(f).map((obj) => ({ file: f.slice(dir.length + 1), obj: obj as K8sObject })))
    .filter(({ obj }) => obj.kind === 'Deployment' || obj.kind === 'DaemonSet')
    .flatMap(({ file, obj }) =>
      (podSpec(obj).containers as any[]).map((container) => ({ file, workload: obj, container })),
    );
}

/**
 * The README's table of sidecar releases whose tags were confirmed, keyed by image name. A row naming two
 * images (`csi-snapshotter / snapshot-controller`) gives both the same tags.
 */
export function confirmedSidecarTags(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(join(dir, 'README.md'), 'utf8').split('\n')) {
    const m = /^\|\s*([a-z][a-z /-]*?)\s*\|\s*(v\d[^|]*?)\s*\|\s*$/.exec(line);
    if (!m) continue;
    const tags = [...m[2].matchAll(/\b(v\d+\.\d+\.\d+)\b/g)].map((t) => t[1]);
    for (const name of m[1].split('/').map((s) => s.trim())) out.set(name, tags);
  }
  return out;
}
