/**
 * The driver as pods on kube-loopback, from the image .ci/build-image writes: the image imported into
 * kube-loopback's containerd, the sidecars as kube-loopback's local images (images.sh), the simulator where the
 * pods reach it, and the manifests (ours through a kustomize overlay, the reference's through a YAML rewrite)
 * changed only where this sandbox differs from a cluster on OpenStack VMs. Every such change is listed here
 * with its reason; nothing else of the manifests is touched.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { execFile } from '../../src/mount/exec';
import { DEMO_DELAYS } from '../../src/simulator/cli';
import { startSimulator, type Simulator } from '../../src/simulator';
import { KUBE_LOOPBACK_DIR, kubectl, readOrUndefined, waitUntil, type Api, type LoopbackEnv } from './kube';
import { DRIVER, DRIVER_ERROR_LINE, REPO, ZONE, ZONE_KEY } from './stack';

export const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
export const IMAGE_TAR = process.env.IMAGE_TAR ?? '/tmp/cinder-csi-plugin-image.tar';
/** The name .ci/build-image gives the image (and keeps inside the tarball). */
export const PLUGIN_IMAGE = `localhost/cinder-csi-plugin:v${VERSION}`;
const CONTAINERD_SOCK = '/run/kube-loopback/containerd.sock';
const CTR = ['-a', CONTAINERD_SOCK, '-n', 'k8s.io'];
/** Label on the imported image: the tarball's image config it was imported from, so a rebuilt tarball is re-imported. */
const CONFIG_LABEL = 'org.cinder-csi.image-config';
/**
 * kube-loopback's pod bridge (kl0) on the host: the one address both the controller pod (pod network) and the
 * node pod (host network) reach. The simulator listens here instead of 127.0.0.1, which inside the controller
 * pod is the pod itself.
 */
export const POD_BRIDGE_IP = '10.244.0.1';
/**
 * Host directories the driver's hostPaths create (DirectoryOrCreate): the FUSE supervisor's state and its socket
 * dir. A suite removes the ones its run made.
 */
export const DRIVER_HOST_DIRS = ['/var/lib/cinder-csi', '/run/cinder-csi'];
/**
 * Where the simulator, playing the hypervisor and udev, links each attached volume's loop device: where a VM's
 * udev puts the disk links and where the node plugin looks by default. Both manifests mount the host's /dev into
 * the node pod (HostToContainer), so a link made after the pod started is seen in it; no by-id patch is needed.
 */
export const BY_ID_DIR = '/dev/disk/by-id';
/** The base kustomization's `images:` entry rewrites our placeholder; an overlay matches the name it produced. */
const BASE_DIR = join(REPO, 'manifests', 'cinder-csi-plugin');
/** Every sidecar image the manifests name, as `registry.k8s.io/sig-storage/<name>`. */
const SIDECAR_REGISTRY = 'registry.k8s.io/sig-storage/';
/**
 * kube-loopback builds no livenessprobe (bin/VERSIONS): the sidecar is dropped with the probe it serves (the
 * plugin containers' livenessProbe, which would otherwise fail and restart them). Nothing else in either
 * manifest depends on it; the plugin's health is asserted here through Ready pods and kubelet's registration.
 */
export const DROPPED_CONTAINER = 'liveness-probe';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifest documents of every kind, rewritten by path
type Obj = Record<string, any>;

/**
 * This host's /dev is a private mount, so containerd refuses the manifests' HostToContainer /dev ("path \"/dev\" is
 * mounted on \"/dev\" but it is not a shared or slave mount"); a real node's / is shared (systemd). Without
 * propagation the pod still sees every device node and link as they appear: devtmpfs is one filesystem, the
 * bind shows its changes; only mounts made under the host's /dev later would not reach the pod.
 */
/** The livenessprobe sidecar's port, declared on the plugin containers. */
const HEALTHZ_PORT = 9808;
export const DEV_MOUNT_PATCH = { mountPath: '/dev', mountPropagation: 'None' };
/** The same refusal for /run/udev (HostToContainer; "path \"/run/udev\" is mounted on \"/\" but it is not a shared or slave mount"). */
export const UDEV_MOUNT_PATCH = { mountPath: '/run/udev', mountPropagation: 'None' };

/**
 * kube-loopback has no Service networking (no kube-proxy): the in-cluster address kubelet gives every pod
 * (KUBERNETES_SERVICE_HOST=10.0.0.1:443) leads nowhere ("dial tcp 10.0.0.1:443: connect: network is
 * unreachable", csi-provisioner's fatal line), and the API server listens on 127.0.0.1 only. So the controller
 * pod runs on the host network and its containers are told the API server's real address (a container's own
 * env wins over the service variables kubelet adds).
 */
export function apiServerEnv(kubeconfig: string): Array<{ name: string; value: string }> {
  const m = /server:\s*"?https:\/\/([^:\s]+):(\d+)/.exec(readFileSync(kubeconfig, 'utf8'));
  if (!m) throw new Error(`${kubeconfig}: no https server address`);
  return [
    { name: 'KUBERNETES_SERVICE_HOST', value: m[1] },
    { name: 'KUBERNETES_SERVICE_PORT', value: m[2] },
  ];
}

/** The tarball's image config digest (manifest.json of the docker-archive). */
async function tarballConfig(): Promise<string> {
  const manifest = JSON.parse(
    (await execFile('tar', ['-xOf', IMAGE_TAR, 'manifest.json'], { timeoutMs: 60_000 })).stdout,
  ) as Array<{ Config: string; RepoTags?: string[] }>;
  const entry = manifest.find((m) => m.RepoTags?.includes(PLUGIN_IMAGE));
  if (!entry)
    throw new Error(
      `${IMAGE_TAR} holds no ${PLUGIN_IMAGE} (tags: ${manifest.flatMap((m) => m.RepoTags ?? []).join(', ')})`,
    );
  return entry.Config.replace(/\.json$/, '');
}

/**
 * Imports the tarball into kube-loopback's containerd unless the image of that name came from this very
 * tarball already (its label names the tarball's config digest); ~26 s when it does import.
 */
export async function ensurePluginImage(): Promise<{ imported: boolean; config: string }> {
  const config = await tarballConfig();
  const ls = (await execFile('ctr', [...CTR, 'images', 'ls', `name==${PLUGIN_IMAGE}`])).stdout
    .trim()
    .split('\n')
    .slice(1);
  const labels = ls[0]?.trim().split(/\s+/).pop() ?? '';
  if (labels.split(',').includes(`${CONFIG_LABEL}=${config}`)) return { imported: false, config };
  await execFile('ctr', [...CTR, 'images', 'import', IMAGE_TAR], { timeoutMs: 300_000 });
  await execFile('ctr', [...CTR, 'images', 'label', PLUGIN_IMAGE, `${CONFIG_LABEL}=${config}`]);
  return { imported: true, config };
}

/** kube-loopback's sidecar images (images.sh imports the missing ones): name -> `localhost/kube-loopback/<name>:<version>`. */
export async function sidecarImages(): Promise<Map<string, { newName: string; newTag: string }>> {
  const out = (await execFile(join(KUBE_LOOPBACK_DIR, 'images.sh'), [], { timeoutMs: 300_000 })).stdout;
  const map = new Map<string, { newName: string; newTag: string }>();
  for (const ref of out.trim().split('\n')) {
    const m = /^(localhost\/kube-loopback\/([^:]+)):(\S+)$/.exec(ref.trim());
    if (m) map.set(m[2], { newName: m[1], newTag: m[3] });
  }
  return map;
}

/** The sidecar name of an image reference of the manifests (`registry.k8s.io/sig-storage/csi-attacher:v4.12.0` -> csi-attacher). */
export function sidecarOf(image: string): string | undefined {
  return image.startsWith(SIDECAR_REGISTRY) ? image.slice(SIDECAR_REGISTRY.length).split(':')[0] : undefined;
}

export interface Cloud {
  sim: Simulator;
  dir: string;
  stateDir: string;
  /** The simulator's cloud.conf: the Secret `cloud-config` both workloads mount. */
  cloudConf: string;
  stop(): Promise<void>;
}

/**
 * The pod bridge exists: the bridge CNI makes kl0 (and its address) with the first pod on the pod network, so on a
 * freshly started kube-loopback whose only pods so far ran on the host network there is none yet, and nothing can
 * listen on POD_BRIDGE_IP ("listen EADDRNOTAVAIL"). A throwaway pod makes it, as any workload would; the bridge
 * outlives the pod.
 */
async function ensurePodBridge(api: Api, env: LoopbackEnv): Promise<void> {
  const onBridge = () =>
    Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === POD_BRIDGE_IP));
  if (onBridge()) return;
  const name = `pod-bridge-${process.pid}`;
  await api.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          { name: 'pause', image: env.KUBE_LOOPBACK_BUSYBOX, imagePullPolicy: 'Never', command: ['sleep', '3600'] },
        ],
      },
    },
  });
  try {
    await waitUntil(`${POD_BRIDGE_IP} on the pod bridge`, 60_000, async () => (onBridge() ? true : undefined), 200);
  } finally {
    await api.core.deleteNamespacedPod({ name, namespace: 'default', gracePeriodSeconds: 0 });
    await waitUntil(`pod default/${name} gone`, 60_000, async () =>
      (await readOrUndefined(() => api.core.readNamespacedPod({ name, namespace: 'default' }))) ? undefined : true,
    );
  }
}

/**
 * The simulator on the pod bridge (made first when missing) with its device plane: this machine is the VM named
 * after the node, in zone-a; volumes attached to it become loop devices linked in /dev/disk/by-id (made here when
 * missing, removed at stop).
 */
export async function startCloud(api: Api, env: LoopbackEnv): Promise<Cloud> {
  await ensurePodBridge(api, env);
  const dir = mkdtempSync(join(tmpdir(), 'cinder-csi-incluster-'));
  const stateDir = join(dir, 'cloud-state');
  const madeDirs = ['/dev/disk', BY_ID_DIR].filter((d) => !existsSync(d));
  const sim = await startSimulator({
    host: POD_BRIDGE_IP,
    delays: DEMO_DELAYS,
    delayScale: 0.2,
    availabilityZones: [ZONE, 'zone-b'],
    localServer: { name: env.KUBE_LOOPBACK_NODE, az: ZONE },
    devicePlane: { byIdDir: BY_ID_DIR, stateDir },
  });
  return {
    sim,
    dir,
    stateDir,
    cloudConf: sim.cloudConf(),
    async stop() {
      await sim.stop();
      // Only directories this run made, and only when empty (a link left would be a finding, not ours to hide).
      for (const d of madeDirs.reverse()) if (existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
    },
  };
}

function containersOf(w: Obj): Obj[] {
  return w.spec.template.spec.containers as Obj[];
}

function baseDocs(): Obj[] {
  return readdirSync(BASE_DIR)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(BASE_DIR, f), 'utf8'))
        .map((d) => d.toJS() as Obj)
        .filter(Boolean),
    );
}

/** The metadata URL argument the node plugin gets: the simulator's metadata service instead of 169.254.169.254. */
export function metadataArg(cloud: Cloud): string {
  return `--metadata-url=${cloud.sim.metadataUrl}`;
}

/**
 * Writes a kustomize overlay over manifests/cinder-csi-plugin into a new temp dir and returns the dir. Its
 * kustomization.yaml says, change by change, why this sandbox needs it.
 */
export function writeOverlay(
  cloud: Cloud,
  sidecars: Map<string, { newName: string; newTag: string }>,
  kubeconfig: string,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-csi-overlay-'));
  const base = parseAllDocuments(readFileSync(join(BASE_DIR, 'kustomization.yaml'), 'utf8'))[0].toJS() as Obj;
  const ourImage = (base.images as Obj[]).find((i) => i.name === 'cinder-csi-plugin');
  if (!ourImage?.newName)
    throw new Error('manifests/cinder-csi-plugin/kustomization.yaml: no images entry for cinder-csi-plugin');
  const docs = baseDocs();
  const workloads = docs.filter((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet');
  const usedSidecars = new Set(
    workloads
      .flatMap(containersOf)
      .map((c) => c.image as string)
      .filter((i) => sidecarOf(i)),
  );

  const images: Obj[] = [
    { name: ourImage.newName, newName: PLUGIN_IMAGE.split(':')[0], newTag: PLUGIN_IMAGE.split(':')[1] },
  ];
  for (const image of usedSidecars) {
    const name = sidecarOf(image)!;
    if (name === 'livenessprobe') continue;
    const local = sidecars.get(name);
    if (!local) throw new Error(`kube-loopback has no image for ${image}`);
    images.push({ name: image.split(':')[0], ...local });
  }

  const patches: Array<{ file: string; why: string; body: Obj }> = [];
  for (const w of workloads) {
    const containers = containersOf(w).map((c) => {
      if (c.name === DROPPED_CONTAINER) return { name: c.name, $patch: 'delete' };
      const p: Obj = { name: c.name, imagePullPolicy: 'Never' };
      if (c.livenessProbe) p.livenessProbe = null;
      if (w.kind === 'Deployment') {
        p.env = apiServerEnv(kubeconfig);
        // On the host network the controller's declared healthz port (the dropped livenessprobe's) would clash
        // with the node pod's on the one node: the scheduler says "didn't have free ports for the requested pod ports".
        // (All its declared ports go: a `$patch: delete` of the one entry does not remove it; they are only names here.)
        if ((c.ports as Obj[] | undefined)?.some((x) => x.containerPort === HEALTHZ_PORT)) p.ports = null;
      }
      if (w.kind === 'DaemonSet' && c.name === 'cinder-csi-plugin') {
        p.args = [...c.args, metadataArg(cloud)];
        p.volumeMounts = [DEV_MOUNT_PATCH, UDEV_MOUNT_PATCH];
        // --fuse-supervisor-pod talks to the API server (its own Pod, the supervisor pod): the same missing Service.
        p.env = apiServerEnv(kubeconfig);
      }
      return p;
    });
    patches.push({
      file: `${w.metadata.name}.yaml`,
      why:
        `${w.kind} ${w.metadata.name}: imagePullPolicy Never (no registry here: every image is in containerd already); ` +
        `no ${DROPPED_CONTAINER} sidecar and no livenessProbe (kube-loopback has no livenessprobe image)` +
        (w.kind === 'Deployment'
          ? '; hostNetwork and KUBERNETES_SERVICE_HOST/PORT of the API server (no Service networking here)'
          : '') +
        (w.kind === 'DaemonSet'
          ? "; /dev and /run/udev without HostToContainer (this host's mounts are private, containerd refuses it); the node plugin asks the simulator's metadata service (--metadata-url) for its instance id and zone, as a VM asks 169.254.169.254"
          : ''),
      body: {
        apiVersion: w.apiVersion,
        kind: w.kind,
        metadata: { name: w.metadata.name, namespace: w.metadata.namespace },
        spec: { template: { spec: { ...(w.kind === 'Deployment' ? { hostNetwork: true } : {}), containers } } },
      },
    });
  }
  const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'cloud-config');
  if (!secret) throw new Error('manifests/cinder-csi-plugin: no Secret cloud-config');
  patches.push({
    file: 'cloud-config.yaml',
    why: "Secret cloud-config: the simulator's cloud.conf instead of the sample (README, Install step 2)",
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cloud-config', namespace: secret.metadata.namespace },
      data: { 'cloud.conf': Buffer.from(cloud.cloudConf).toString('base64') },
    },
  });
  for (const p of patches) writeFileSync(join(dir, p.file), stringify(p.body), { mode: 0o600 });

  const lines = [
    '# Written by test/e2e/in-cluster.e2e.test.ts: the manifests as they are, plus only what kube-loopback needs.',
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    `  - ${relative(dir, BASE_DIR)}`,
    '# The image built by .ci/build-image and imported into containerd; the sidecars kube-loopback built (images.sh).',
    stringify({ images }).trimEnd(),
    'patches:',
    ...patches.flatMap((p) => [`  # ${p.why}`, `  - path: ${p.file}`]),
  ];
  writeFileSync(join(dir, 'kustomization.yaml'), `${lines.join('\n')}\n`);
  return dir;
}

/**
 * The reference's top-level manifests (cpo-manifests/*.yaml) as objects, rewritten only in what this sandbox
 * needs: our image for the plugin containers, kube-loopback's images for the sidecars, imagePullPolicy Never,
 * no livenessprobe (none here) and no livenessProbe, the node plugin's --metadata-url, and the Secret's data.
 */
export function referenceObjects(
  refDir: string,
  cloud: Cloud,
  sidecars: Map<string, { newName: string; newTag: string }>,
  kubeconfig: string,
): Obj[] {
  const files = readdirSync(refDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const objs = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(refDir, f), 'utf8'))
      .map((d) => d.toJS() as Obj)
      .filter(Boolean),
  );
  for (const o of objs) {
    if (o.kind === 'Secret' && o.metadata.name === 'cloud-config') {
      o.data = { 'cloud.conf': Buffer.from(cloud.cloudConf).toString('base64') };
      continue;
    }
    if (o.kind !== 'Deployment' && o.kind !== 'DaemonSet') continue;
    const spec = o.spec.template.spec;
    if (o.kind === 'Deployment') spec.hostNetwork = true;
    spec.containers = (spec.containers as Obj[])
      .filter((c) => c.name !== DROPPED_CONTAINER)
      .map((c) => {
        const sidecar = sidecarOf(c.image);
        if (sidecar) {
          const local = sidecars.get(sidecar);
          if (!local) throw new Error(`kube-loopback has no image for ${c.image}`);
          c.image = `${local.newName}:${local.newTag}`;
        } else if (c.name === 'cinder-csi-plugin') {
          c.image = PLUGIN_IMAGE;
          delete c.livenessProbe;
          if (o.kind === 'DaemonSet') {
            c.args = [...c.args, metadataArg(cloud)];
            for (const m of c.volumeMounts as Obj[])
              for (const patch of [DEV_MOUNT_PATCH, UDEV_MOUNT_PATCH])
                if (m.mountPath === patch.mountPath) Object.assign(m, patch);
          }
        } else {
          throw new Error(`reference ${o.kind} ${o.metadata.name}: unexpected container ${c.name} (${c.image})`);
        }
        c.imagePullPolicy = 'Never';
        if (o.kind === 'Deployment') {
          c.env = [...(c.env ?? []), ...apiServerEnv(kubeconfig)];
          if (c.ports) c.ports = (c.ports as Obj[]).filter((x) => x.containerPort !== HEALTHZ_PORT);
        }
        return c;
      });
  }
  return objs;
}

/** Objects kubectl prints for a kustomization (what `apply -k` applies), for asserting and cleaning up. */
export async function renderOverlay(kubeconfig: string, dir: string): Promise<Obj[]> {
  return parseAllDocuments(await kubectl(kubeconfig, ['kustomize', dir]))
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

/** The controller Deployment and node DaemonSet both fully rolled out and Ready (pods of the current template). */
export async function waitWorkloadsReady(api: Api, limitMs: number): Promise<void> {
  try {
    await waitReady(api, limitMs);
  } catch (e) {
    // What kubelet says about each container that is not ready: the reason a workload never became Ready.
    const why = (await driverPods(api).catch(() => [])).flatMap((p) =>
      (p.status?.containerStatuses ?? [])
        .filter((c) => !c.ready)
        .map(
          (c) =>
            `${p.metadata?.name}/${c.name}: ${JSON.stringify(c.state?.waiting ?? c.state?.terminated ?? c.lastState?.terminated ?? {})}`,
        ),
    );
    throw new Error(`${String(e)}\n${why.join('\n')}`, { cause: e });
  }
}

async function waitReady(api: Api, limitMs: number): Promise<void> {
  await waitUntil(
    'Deployment csi-cinder-controllerplugin Ready',
    limitMs,
    async () => {
      const d = await readOrUndefined(() =>
        api.apps.readNamespacedDeployment({ name: 'csi-cinder-controllerplugin', namespace: 'kube-system' }),
      );
      const st = d?.status;
      return st &&
        st.observedGeneration === d.metadata?.generation &&
        st.updatedReplicas === 1 &&
        st.readyReplicas === 1 &&
        (st.replicas ?? 0) === 1
        ? true
        : undefined;
    },
    500,
  );
  await waitUntil(
    'DaemonSet csi-cinder-nodeplugin Ready',
    limitMs,
    async () => {
      const d = await readOrUndefined(() =>
        api.apps.readNamespacedDaemonSet({ name: 'csi-cinder-nodeplugin', namespace: 'kube-system' }),
      );
      const st = d?.status;
      return st &&
        st.observedGeneration === d.metadata?.generation &&
        st.desiredNumberScheduled === 1 &&
        st.numberReady === 1 &&
        st.updatedNumberScheduled === 1
        ? true
        : undefined;
    },
    500,
  );
}

/** kubelet registered the node plugin: the CSINode names the driver with the simulator's instance id and zone. */
export async function waitDriverRegistered(api: Api, node: string, sim: Simulator, limitMs: number) {
  return waitUntil(
    'kubelet to register the driver in the CSINode',
    limitMs,
    async () => {
      const n = await readOrUndefined(() => api.storage.readCSINode({ name: node }));
      return n?.spec.drivers?.find(
        (d) => d.name === DRIVER && d.nodeID === sim.localServerId && d.topologyKeys?.includes(ZONE_KEY),
      );
    },
    500,
  );
}

/** The driver's pods (controller, node and the FUSE supervisor pod the node plugin makes), by their labels. */
export async function driverPods(api: Api) {
  return (
    await api.core.listNamespacedPod({
      namespace: 'kube-system',
      labelSelector: 'app in (csi-cinder-controllerplugin,csi-cinder-nodeplugin,csi-cinder-fuse-supervisor)',
    })
  ).items;
}

/** Error-level JSON lines of our image's containers in `pods` (driver pods in kube-system), as `pod/container: line`. */
export async function pluginErrorLines(
  kubeconfig: string,
  pods: Awaited<ReturnType<typeof driverPods>>,
): Promise<string[]> {
  const out: string[] = [];
  for (const p of pods) {
    for (const c of p.spec!.containers.filter((x) => x.image === PLUGIN_IMAGE)) {
      const log = await kubectl(kubeconfig, ['logs', '-n', 'kube-system', p.metadata!.name!, '-c', c.name]);
      for (const line of log.split('\n'))
        if (DRIVER_ERROR_LINE.test(line)) out.push(`${p.metadata!.name}/${c.name}: ${line}`);
    }
  }
  return out;
}

/** The driver's pods gone. */
export async function waitDriverPodsGone(api: Api, limitMs: number): Promise<void> {
  await waitUntil(
    "the driver's pods gone",
    limitMs,
    async () => ((await driverPods(api)).length === 0 ? true : undefined),
    500,
  );
}

/**
 * Leases of the sidecars' leader election left by an earlier run (host processes or pods killed with a failed
 * run) would make the new sidecars wait out the lease (15 s) before they act.
 */
export async function deleteStaleLeases(api: Api): Promise<void> {
  for (const l of (await api.coordination.listNamespacedLease({ namespace: 'kube-system' })).items) {
    if (l.metadata?.name?.includes(DRIVER.replace(/\./g, '-')))
      await api.coordination
        .deleteNamespacedLease({ name: l.metadata.name, namespace: 'kube-system' })
        .catch(() => undefined);
  }
}

/** `kubectl delete` of the given objects, waiting for them to go. */
export async function deleteObjects(kubeconfig: string, objs: Obj[], timeoutMs = 180_000): Promise<void> {
  const input = objs.map((o) => stringify(o)).join('---\n');
  await kubectl(
    kubeconfig,
    ['delete', '--ignore-not-found', '--wait=true', `--timeout=${Math.round(timeoutMs / 1000)}s`, '-f', '-'],
    { input, timeoutMs: timeoutMs + 10_000 },
  );
}

/**
 * Host pids of a container's processes, found by its containerd id in their cgroup path (a container's processes
 * are host processes in the pod's cgroup, whatever the cgroup driver names the leaf).
 */
export function hostPidsOfContainer(containerID: string): number[] {
  const id = containerID.replace(/^containerd:\/\//, '');
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`not a containerd container id: ${containerID}`);
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(id)) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
