/**
 * The driver as the real kubernetes-csi sidecars and kubelet see it, on kube-loopback, as host processes:
 * the OpenStack simulator with its device plane and metadata service (this machine is the VM `localServerId`
 * in zone-a), the plugin's controller behind csi-provisioner/-attacher/-resizer/-snapshotter, its node behind
 * node-driver-registrar and the FUSE supervisor. Every argument comes from manifests/cinder-csi-plugin (the
 * `$(VAR)`s and the container paths translated to this host); each sidecar acts as the manifests'
 * ServiceAccount through a TokenRequest kubeconfig, so their RBAC is what is tested.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { imageNodeFlags, nodePluginNodeFlags, REPO_ROOT } from '../process-helpers';
import { execFile } from '../../src/mount/exec';
import { readMountInfo } from '../../src/mount/mountinfo';
import { DEMO_DELAYS } from '../../src/simulator/cli';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';
import { buildSupervisorPod, DEFAULT_SUPERVISOR_STATE_DIR } from '../../src/kube/supervisor-pod';
import {
  apiClients,
  kubectl,
  kubeLoopbackUp,
  KUBE_LOOPBACK_DIR,
  readOrUndefined,
  waitUntil,
  type Api,
  type LoopbackEnv,
} from './kube';

export const REPO = REPO_ROOT;
const MANIFESTS = join(REPO, 'manifests');
const CLI = join(REPO, 'bin', 'cinder-csi-plugin');
export const DRIVER = 'cinder.csi.openstack.org';
export const ZONE_KEY = 'topology.cinder.csi.openstack.org/zone';
export const ZONE = 'zone-a';
export const KUBELET_DIR = '/var/lib/kubelet';
/** Where kubelet finds the node plugin (the DaemonSet's socket-dir hostPath). */
export const NODE_SOCKET = `${KUBELET_DIR}/plugins/${DRIVER}/csi.sock`;
const CONTROLLER_SIDECARS = ['csi-provisioner', 'csi-attacher', 'csi-resizer', 'csi-snapshotter'] as const;

/**
 * Manifest arguments the sidecar versions of kube-loopback (bin/VERSIONS) do not know, dropped on purpose.
 * Empty: every argument of our manifests is understood by provisioner v5.2.0, attacher v4.8.1, resizer
 * v1.13.2, snapshotter v8.2.0 and registrar v2.13.0 (the suite checks each against the binary's --help, so a
 * new one fails here until it is listed with the version and the reason).
 */
export const DROPPED_ARGS: ReadonlyArray<{ sidecar: string; arg: string; why: string }> = [];
/**
 * Containers of the manifests that do not run here: the livenessprobe sidecar ships no binary in
 * kube-loopback and only serves kubelet's liveness probe of a pod, which host processes do not have.
 */
export const NOT_RUN = ['liveness-probe'];

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- YAML documents of every kind; each caller reads the one it knows
function manifestDocs(file: string): Array<Record<string, any>> {
  return parseAllDocuments(readFileSync(join(MANIFESTS, file), 'utf8'))
    .map((d) => d.toJS())
    .filter(Boolean);
}

/** The containers of the Deployment or DaemonSet in `file`. */
export function manifestContainers(file: string): Map<string, Container> {
  const w = manifestDocs(file).find((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet');
  if (!w) throw new Error(`${file}: no Deployment or DaemonSet`);
  return new Map((w.spec.template.spec.containers as Container[]).map((c) => [c.name, c]));
}

/** The node plugin's flag that makes it create the supervisor pod; the host-process stack starts the supervisor itself. */
const SUPERVISOR_POD_FLAG = '--fuse-supervisor-pod';

/** The supervisor container the DaemonSet's plugin would put in its pod (src/kube/supervisor-pod.ts). */
function supervisorFromManifests(nc: Map<string, Container>, node: string): Container {
  const plugin = nc.get('cinder-csi-plugin')!;
  const socket = hostArgs(plugin, { CSI_ENDPOINT: 'x', CLOUD_CONFIG: 'x' })
    .find((a) => a.startsWith('--fuse-supervisor-socket='))!
    .split('=')[1];
  const pod = buildSupervisorPod({
    plugin: { metadata: { name: 'node', namespace: 'kube-system' }, spec: { containers: [plugin as never] } },
    nodeName: node,
    socketPath: socket,
    stateDir: DEFAULT_SUPERVISOR_STATE_DIR,
    kubeletDir: '/var/lib/kubelet',
  });
  return pod.spec!.containers[0] as Container;
}

/**
 * A container's args with `$(VAR)` expanded from its env (`vars` overrides values, for paths that differ on
 * the host) and each container path of `paths` replaced by its host path.
 */
export function hostArgs(
  c: Container,
  vars: Record<string, string> = {},
  paths: Record<string, string> = {},
): string[] {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  Object.assign(env, vars);
  return (c.args ?? []).map((a) => {
    let out = a.replace(/\$\((\w+)\)/g, (whole, k: string) => {
      if (env[k] === undefined) throw new Error(`container ${c.name}: no value for ${whole}`);
      return env[k];
    });
    for (const [from, to] of Object.entries(paths))
      if (out === from || out.endsWith(`=${from}`)) out = out.slice(0, out.length - from.length) + to;
    return out;
  });
}

/** The long flags a sidecar binary lists in its --help. */
export function knownFlags(bin: string): Set<string> {
  // Go's flag package prints the usage on stderr and exits 0 (pflag) or 2 (flag) for --help.
  const r = spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout}\n${r.stderr}`;
  return new Set([...text.matchAll(/^\s+--?([a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
}

export interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when gone. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  log(): string;
}

function startProc(name: string, cmd: string, args: string[], logDir: string, env: Record<string, string> = {}): Proc {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    logFile,
    exited,
    async stop(graceMs = 5000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => alive() && child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface StackOptions {
  /** Simulator options over the defaults (the demo's delays × 0.2, zone-a/zone-b, this machine in zone-a). */
  sim?: SimulatorOptions;
  /** Also start the FUSE supervisor (object volumes). */
  fuse?: boolean;
  /**
   * Controller side only, against this cloud.conf (a real OpenStack) instead of a simulator: no node plugin,
   * registrar or supervisor; `sim` is then undefined.
   */
  controllerOnly?: { cloudConf: string };
}

export interface Stack {
  env: LoopbackEnv;
  api: Api;
  sim: Simulator;
  dir: string;
  logDir: string;
  byIdDir: string;
  stateDir: string;
  procs: Map<string, Proc>;
  controllerSocket: string;
  /** Starts the controller plugin again (after a kill), same arguments. */
  startController(): Proc;
  /** Lines at error level or above of every process log, with the process name. */
  errorLines(): Array<{ proc: string; line: string }>;
  stop(): Promise<void>;
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const env = await kubeLoopbackUp();
  const api = apiClients(env.KUBECONFIG);
  const dir = mkdtempSync(join(tmpdir(), 'cinder-csi-e2e-'));
  const logDir = join(dir, 'logs');
  const byIdDir = join(dir, 'dev-disk-by-id');
  const stateDir = join(dir, 'cloud-state');
  const controllerDir = join(dir, 'controller');
  for (const d of [logDir, byIdDir, controllerDir, join(dir, 'node'), join(dir, 'run')])
    mkdirSync(d, { recursive: true });
  const procs = new Map<string, Proc>();
  let sim: Simulator | undefined;
  const stopping = { value: false };
  const stack: Partial<Stack> & { procs: Map<string, Proc>; stopping: { value: boolean } } = {
    env,
    api,
    dir,
    logDir,
    byIdDir,
    stateDir,
    procs,
    stopping,
  };
  try {
    if (!o.controllerOnly)
      sim = await startSimulator({
        delays: DEMO_DELAYS,
        delayScale: 0.2,
        availabilityZones: [ZONE, 'zone-b'],
        localServer: { name: env.KUBE_LOOPBACK_NODE, az: ZONE },
        devicePlane: { byIdDir, stateDir },
        ...o.sim,
      });
    stack.sim = sim;
    const kc = (args: string[], input?: string) => kubectl(env.KUBECONFIG, args, { input });

    // The cluster objects, as an operator applies them: unchanged files, and the Secret with our cloud.conf.
    for (const f of [
      'cinder-csi-plugin/csi-cinder-driver.yaml',
      'cinder-csi-plugin/cinder-csi-controllerplugin-rbac.yaml',
      'cinder-csi-plugin/cinder-csi-nodeplugin-rbac.yaml',
    ]) {
      await kc(['apply', '-f', join(MANIFESTS, f)]);
    }
    const secret = manifestDocs('cinder-csi-plugin/csi-secret-cinderplugin.yaml')[0];
    secret.data = { 'cloud.conf': Buffer.from(o.controllerOnly?.cloudConf ?? sim!.cloudConf()).toString('base64') };
    await kc(['apply', '-f', '-'], stringify(secret));
    // What kubelet would mount at /etc/config/cloud.conf in both pods: the Secret as the API server has it.
    const stored = await api.core.readNamespacedSecret({
      name: secret.metadata.name,
      namespace: secret.metadata.namespace,
    });
    const cloudConf = join(dir, 'cloud.conf');
    writeFileSync(cloudConf, Buffer.from(stored.data!['cloud.conf'], 'base64'), { mode: 0o600 });

    // Controller: the plugin, then its sidecars on its socket.
    const controllerSocket = join(controllerDir, 'csi.sock');
    stack.controllerSocket = controllerSocket;
    const cc = manifestContainers('cinder-csi-plugin/cinder-csi-controllerplugin.yaml');
    const metricsPort = await freePort();
    const controllerArgs = hostArgs(
      cc.get('cinder-csi-plugin')!,
      { CSI_ENDPOINT: `unix://${controllerSocket}`, CLOUD_CONFIG: cloudConf },
      {
        // One host, several processes: the manifest's `:9809` (all interfaces, the pod's own network) becomes a free loopback port.
        ':9809': `127.0.0.1:${metricsPort}`,
      },
    );
    const startController = (): Proc => {
      const p = startProc('controller', process.execPath, [...imageNodeFlags(), CLI, ...controllerArgs], logDir);
      procs.set('controller', p);
      return p;
    };
    stack.startController = startController;
    startController();
    await waitUntil('the controller socket', 30_000, async () => (existsSync(controllerSocket) ? true : undefined));

    const saKubeconfig = join(dir, 'controller-sa.kubeconfig');
    const sa = manifestDocs('cinder-csi-plugin/cinder-csi-controllerplugin.yaml').find((d) => d.kind === 'Deployment')!
      .spec.template.spec.serviceAccountName as string;
    await execFile(join(KUBE_LOOPBACK_DIR, 'sa-kubeconfig.sh'), ['kube-system', sa, saKubeconfig], {
      timeoutMs: 30_000,
    });
    // The Leases of an earlier run's sidecars (stopped, or killed with a failed run) would make these wait out
    // the lease duration (15 s) before they lead: that run is over, so its leases go.
    for (const l of (await api.coordination.listNamespacedLease({ namespace: 'kube-system' })).items) {
      if (l.metadata?.name?.includes(DRIVER.replace(/\./g, '-')))
        await api.coordination
          .deleteNamespacedLease({ name: l.metadata.name, namespace: 'kube-system' })
          .catch(() => undefined);
    }
    for (const name of CONTROLLER_SIDECARS) {
      const c = cc.get(name);
      if (!c) throw new Error(`controller manifest has no ${name}`);
      const bin = join(env.KUBE_LOOPBACK_BIN, name);
      const args = hostArgs(c, { ADDRESS: controllerSocket })
        .filter((a) => !DROPPED_ARGS.some((d) => d.sidecar === name && a === d.arg))
        .map(hostProcessArg);
      // POD_NAMESPACE: where leader election keeps its Lease, as the downward API would say in the pod; the
      // provisioner's capacity tracking reads NAMESPACE and POD_NAME from the same downward API.
      const start = () => {
        const p = startProc(name, bin, [...args, `--kubeconfig=${saKubeconfig}`], logDir, {
          POD_NAMESPACE: 'kube-system',
          NAMESPACE: 'kube-system',
          POD_NAME: `${name}-host-process`,
        });
        procs.set(name, p);
        // A sidecar exits when it loses its CSI connection ("Lost connection to CSI driver, exiting") and
        // kubelet restarts the container (restartPolicy Always): so do we, until the stack stops.
        void p.exited.then(() => {
          if (!stopping.value) setTimeout(() => !stopping.value && start(), 1000);
        });
      };
      start();
    }

    if (o.controllerOnly) return finish(stack);
    // Node: FUSE supervisor, plugin, registrar.
    const nc = manifestContainers('cinder-csi-plugin/cinder-csi-nodeplugin.yaml');
    const supervisorSocket = join(dir, 'run', 'supervisor.sock');
    const nodePaths = {
      '/run/cinder-csi/supervisor.sock': supervisorSocket,
      '/var/lib/cinder-csi/fuse': join(dir, 'fuse-state'),
    };
    if (o.fuse !== false) {
      // The supervisor pod the node plugin would create (--fuse-supervisor-pod), run as a host process here.
      const sup = startProc(
        'fuse-supervisor',
        process.execPath,
        [...imageNodeFlags(), CLI, ...hostArgs(supervisorFromManifests(nc, env.KUBE_LOOPBACK_NODE), {}, nodePaths)],
        logDir,
      );
      procs.set('fuse-supervisor', sup);
      await waitUntil('the FUSE supervisor socket', 30_000, async () =>
        existsSync(supervisorSocket) ? true : undefined,
      );
    }
    mkdirSync(join(KUBELET_DIR, 'plugins', DRIVER), { recursive: true });
    const nodeArgs = [
      ...hostArgs(
        nc.get('cinder-csi-plugin')!,
        { CSI_ENDPOINT: `unix://${NODE_SOCKET}`, CLOUD_CONFIG: cloudConf },
        nodePaths,
      ).filter((a) => a !== SUPERVISOR_POD_FLAG),
      // What a VM has and this host has not: the hypervisor's disk links and the metadata service at 169.254.169.254.
      '--by-id-dir',
      byIdDir,
      '--metadata-url',
      sim!.metadataUrl,
    ];
    procs.set(
      'node',
      startProc('node', process.execPath, [...nodePluginNodeFlags(), CLI, ...nodeArgs], logDir, {
        NODE_NAME: env.KUBE_LOOPBACK_NODE,
      }),
    );
    await waitUntil('the node socket', 30_000, async () => (existsSync(NODE_SOCKET) ? true : undefined));
    const reg = nc.get('node-driver-registrar')!;
    const regArgs = [
      ...hostArgs(reg, { ADDRESS: NODE_SOCKET }),
      // The DaemonSet mounts the host's plugins_registry at the registrar's default /registration.
      `--plugin-registration-path=${KUBELET_DIR}/plugins_registry`,
    ];
    procs.set(
      'node-driver-registrar',
      startProc('node-driver-registrar', join(env.KUBE_LOOPBACK_BIN, 'csi-node-driver-registrar'), regArgs, logDir, {
        KUBE_NODE_NAME: env.KUBE_LOOPBACK_NODE,
      }),
    );

    // kubelet registered the plugin: the CSINode names our driver with the simulator's instance id.
    await waitUntil('kubelet to register the driver in the CSINode', 60_000, async () => {
      const n = await readOrUndefined(() => api.storage.readCSINode({ name: env.KUBE_LOOPBACK_NODE }));
      return n?.spec.drivers?.find((d) => d.name === DRIVER && d.nodeID === sim!.localServerId) ? true : undefined;
    });
    for (const p of procs.values()) {
      if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}): ${p.log().slice(-2000)}`);
    }
  } catch (e) {
    await stopAll(stack as typeof stack & Stack).catch(() => undefined);
    throw e;
  }
  return finish(stack);
}

function finish(stack: Partial<Stack> & { procs: Map<string, Proc>; stopping: { value: boolean } }): Stack {
  const s = stack as typeof stack & Stack;
  s.errorLines = () => errorLines(s.procs);
  s.stop = () => stopAll(s);
  return s;
}

/** A driver JSON log line at level >= 50 (pino: error, fatal). */
export const DRIVER_ERROR_LINE = /^\{.*"level":(5\d|60)\b/;

/** Driver JSON lines at level >= 50 (error) and klog lines starting with E or F, of one log. */
export function errorLinesOf(log: string): string[] {
  return log.split('\n').filter((line) => DRIVER_ERROR_LINE.test(line) || /^[EF]\d{4} /.test(line));
}

function errorLines(procs: Map<string, Proc>): Array<{ proc: string; line: string }> {
  return [...procs.values()].flatMap((p) => errorLinesOf(p.log()).map((line) => ({ proc: p.name, line })));
}

/**
 * The one manifest argument a host process cannot take as written: csi-provisioner's
 * `--capacity-ownerref-level=2` makes the Deployment (two owners up from its pod) own the CSIStorageCapacity
 * objects, and there is no pod here, so the provisioner would exit at start ("look up owner(s) of pod"). -1 is
 * the flag's own "no owner"; stopAll deletes those objects instead of the garbage collector.
 */
function hostProcessArg(arg: string): string {
  return arg.startsWith('--capacity-ownerref-level=') ? '--capacity-ownerref-level=-1' : arg;
}

/** Stops every process (sidecars first, so none calls a plugin that is gone), then the simulator. */
async function stopAll(s: Partial<Stack> & { procs: Map<string, Proc>; stopping?: { value: boolean } }): Promise<void> {
  if (s.stopping) s.stopping.value = true;
  const order = [
    'csi-provisioner',
    'csi-attacher',
    'csi-resizer',
    'csi-snapshotter',
    'node-driver-registrar',
    'controller',
    'node',
    'fuse-supervisor',
  ];
  for (const name of order) await s.procs.get(name)?.stop();
  for (const p of s.procs.values()) await p.stop();
  await s.sim?.stop();
  // The capacity objects the provisioner published without an owner (hostProcessArg).
  await s.api?.storage
    .deleteCollectionNamespacedCSIStorageCapacity({
      namespace: 'kube-system',
      labelSelector: `csi.storage.k8s.io/drivername=${DRIVER}`,
    })
    .catch(() => undefined);
  if (s.dir) {
    // Anything still mounted under our dir (a FUSE mount of a failed run) goes before the dir.
    const left = (await readMountInfo().catch(() => [])).filter((m) => m.mountPoint.startsWith(`${s.dir}/`));
    for (const m of left.reverse()) await execFile('umount', ['-l', m.mountPoint]).catch(() => undefined);
    // Logs stay for a failed run's diagnosis; the cloud's backing files go.
    rmSync(join(s.dir, 'cloud-state'), { recursive: true, force: true });
  }
}
