/**
 * The e2e suite's view of kube-loopback: finding or starting it, the @kubernetes/client-node API clients (an
 * ESM package, loaded through Node's own require because jest's CommonJS runtime cannot load it), kubectl for
 * `apply` and `exec`, and polling waits that say what they waited for.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from '../../../src/mount/exec';

const REPO_ROOT = join(__dirname, '..', '..', '..');
/**
 * KUBE_LOOPBACK_DIR, else ../shared/kube-loopback beside the checkout (where .ci/run finds it), else one level
 * further up (a git worktree under a folder of worktrees).
 */
export const KUBE_LOOPBACK_DIR = process.env.KUBE_LOOPBACK_DIR
  ?? [join(REPO_ROOT, '..', 'shared', 'kube-loopback'), join(REPO_ROOT, '..', '..', 'shared', 'kube-loopback')].find((d) => existsSync(join(d, 'up.sh')))
  ?? join(REPO_ROOT, '..', 'shared', 'kube-loopback');
const ENV_FILE = '/etc/kube-loopback/env';
export const KUBECTL = '/usr/bin/kubectl';

export interface LoopbackEnv {
  KUBECONFIG: string;
  KUBE_LOOPBACK_BIN: string;
  KUBE_LOOPBACK_NODE: string;
  KUBE_LOOPBACK_BUSYBOX: string;
}

/** What is missing to run the suite at all (checked before anything starts). */
export function kubeLoopbackMissing(): string[] {
  const missing: string[] = [];
  if (!existsSync(join(KUBE_LOOPBACK_DIR, 'up.sh'))) missing.push(`${KUBE_LOOPBACK_DIR}/up.sh`);
  if (!existsSync(KUBECTL)) missing.push(KUBECTL);
  return missing;
}

/** Runs up.sh (idempotent: returns at once when .ci/run or an earlier suite started it) and reads its env file. */
export async function kubeLoopbackUp(): Promise<LoopbackEnv> {
  await execFile(join(KUBE_LOOPBACK_DIR, 'up.sh'), [], { timeoutMs: 180_000 });
  const env: Record<string, string> = {};
  for (const m of readFileSync(ENV_FILE, 'utf8').matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]] = m[2];
  for (const k of ['KUBECONFIG', 'KUBE_LOOPBACK_BIN', 'KUBE_LOOPBACK_NODE', 'KUBE_LOOPBACK_BUSYBOX']) {
    if (!env[k]) throw new Error(`${ENV_FILE} has no ${k}`);
  }
  return env as unknown as LoopbackEnv;
}

export type K8s = typeof import('@kubernetes/client-node');
let k8sModule: K8s | undefined;
/** @kubernetes/client-node through Node's require (require of ESM, Node >= 20.19), outside jest's registry. */
export function k8s(): K8s {
  if (!k8sModule) {
    const { createRequire } = (process as unknown as { getBuiltinModule(id: string): typeof import('node:module') }).getBuiltinModule('node:module');
    k8sModule = createRequire(__filename)('@kubernetes/client-node') as K8s;
  }
  return k8sModule;
}

export interface Api {
  kc: InstanceType<K8s['KubeConfig']>;
  core: InstanceType<K8s['CoreV1Api']>;
  apps: InstanceType<K8s['AppsV1Api']>;
  storage: InstanceType<K8s['StorageV1Api']>;
  custom: InstanceType<K8s['CustomObjectsApi']>;
  coordination: InstanceType<K8s['CoordinationV1Api']>;
  objects: InstanceType<K8s['KubernetesObjectApi']>;
}

export function apiClients(kubeconfig: string): Api {
  const m = k8s();
  const kc = new m.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    kc,
    core: kc.makeApiClient(m.CoreV1Api),
    apps: kc.makeApiClient(m.AppsV1Api),
    storage: kc.makeApiClient(m.StorageV1Api),
    custom: kc.makeApiClient(m.CustomObjectsApi),
    coordination: kc.makeApiClient(m.CoordinationV1Api),
    objects: m.KubernetesObjectApi.makeApiClient(kc),
  };
}

/** HTTP status of a client-node ApiException (undefined for anything else). */
export function statusOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** Reads an object, undefined when it is not there (404). */
export async function readOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

/** kubectl with the admin kubeconfig; resolves with stdout. */
export async function kubectl(kubeconfig: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await execFile(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input });
  return r.stdout;
}

/** Polls `check` every `everyMs` until it returns a value other than undefined; the error names `what` and the last state. */
export async function waitUntil<T>(what: string, limitMs: number, check: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const end = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${limitMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
