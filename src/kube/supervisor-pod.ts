/**
 * The FUSE supervisor's own pod (`--fuse-supervisor-pod`): one per node, created by the node plugin through the
 * API and not owned by the DaemonSet's controller, so a rollout of the DaemonSet (a new image, a changed
 * argument) does not restart it and the s3fs/rclone daemons in its cgroup keep serving the pods' mounts.
 * This module only builds the object from the plugin's own Pod; supervisor-pod-keeper.ts creates and adopts it.
 */
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { V1Container, V1OwnerReference, V1Pod, V1Toleration } from '@kubernetes/client-node';

/** Label every supervisor pod carries; outside the DaemonSet's selector (`app: csi-cinder-nodeplugin`). */
export const SUPERVISOR_APP_LABEL = 'csi-cinder-fuse-supervisor';
/** Label naming the node a supervisor pod serves (node names can exceed a label value: hashed when they do). */
export const SUPERVISOR_NODE_LABEL = 'cinder.csi.openstack.org/node';
/** Name of the supervisor's container. */
export const SUPERVISOR_CONTAINER = 'fuse-supervisor';
/** The plugin container of the node pod whose image and pull policy the supervisor pod takes. */
export const PLUGIN_CONTAINER = 'cinder-csi-plugin';
/** ServiceAccount of the supervisor pod (manifests: no Role, no token). */
export const SUPERVISOR_SERVICE_ACCOUNT = 'csi-cinder-fuse-supervisor-sa';
/** The state dir when --fuse-state-dir is not given: the one the supervisor container of the DaemonSet used. */
export const DEFAULT_SUPERVISOR_STATE_DIR = '/var/lib/cinder-csi/fuse';
const NAME_PREFIX = 'csi-cinder-fuse-supervisor-';
/** Pod names are DNS subdomains (253); kept to a DNS label so the name also fits a hostname and a label value. */
const MAX_NAME = 63;

export interface SupervisorPodOptions {
  /** The node plugin's own Pod, as the API returns it. */
  plugin: V1Pod;
  /** Node the supervisor serves (the plugin's spec.nodeName). */
  nodeName: string;
  /** The supervisor's socket; its directory is a hostPath at the same path in the plugin's pod. */
  socketPath: string;
  /** Host directory of the supervisor's state (remounts after its own restart); same path inside. */
  stateDir: string;
  /** kubelet's directory, host path = container path (Bidirectional: FUSE mounts must reach kubelet). */
  kubeletDir: string;
  serviceAccountName?: string;
}

/** `csi-cinder-fuse-supervisor-<node>`, or a hash of the node name when that would be longer than a DNS label. */
export function supervisorPodName(nodeName: string): string {
  const plain = `${NAME_PREFIX}${nodeName.toLowerCase()}`;
  if (plain.length <= MAX_NAME && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(plain)) return plain;
  const hash = createHash('sha256').update(nodeName).digest('hex').slice(0, 16);
  const head = nodeName
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, MAX_NAME - NAME_PREFIX.length - hash.length - 1);
  return `${NAME_PREFIX}${head}-${hash}`.replace(/-+/g, '-');
}

/** The node name as a label value (63 characters of [A-Za-z0-9-_.]), hashed when it does not fit. */
function nodeLabelValue(nodeName: string): string {
  return /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(nodeName)
    ? nodeName
    : createHash('sha256').update(nodeName).digest('hex').slice(0, 63);
}

/** The plugin container of `pod`; throws naming what is missing (a Pod not made from our manifests). */
export function pluginContainer(pod: V1Pod): V1Container {
  const c = pod.spec?.containers.find((x) => x.name === PLUGIN_CONTAINER);
  if (!c?.image) throw new Error(`pod ${pod.metadata?.name}: no container ${PLUGIN_CONTAINER} with an image`);
  return c;
}

/** Annotation holding specHash() of the Pod as the plugin built it (the API's copy gains defaults, so not comparable). */
export const SUPERVISOR_SPEC_ANNOTATION = 'cinder.csi.openstack.org/supervisor-spec';

/** A digest of what the plugin asks of the supervisor pod: its spec and labels (not the owner, whose uid may change). */
export function specHash(pod: V1Pod): string {
  return createHash('sha256')
    .update(JSON.stringify({ labels: pod.metadata?.labels, spec: pod.spec }))
    .digest('hex')
    .slice(0, 32);
}

/** Whether a running supervisor pod is the one the plugin would build now (same spec hash). */
export function isCurrent(running: V1Pod, desired: V1Pod): boolean {
  return running.metadata?.annotations?.[SUPERVISOR_SPEC_ANNOTATION] === specHash(desired);
}

/** The image a supervisor pod runs (undefined when it has no supervisor container). */
export function supervisorImage(pod: V1Pod): string | undefined {
  return pod.spec?.containers.find((c) => c.name === SUPERVISOR_CONTAINER)?.image;
}

/**
 * The owner that makes uninstall (`kubectl delete` of the DaemonSet, cascading) remove the supervisor pod: the
 * plugin pod's controller (the DaemonSet), referenced with controller=false so the DaemonSet controller neither
 * adopts nor replaces it on a rollout, and blockOwnerDeletion=false (which would need update rights on the
 * DaemonSet's finalizers). Undefined when the plugin pod has no controller (run by hand): nothing owns it then.
 */
export function supervisorOwner(plugin: V1Pod): V1OwnerReference | undefined {
  const c = plugin.metadata?.ownerReferences?.find((o) => o.controller);
  if (!c) return undefined;
  return {
    apiVersion: c.apiVersion,
    kind: c.kind,
    name: c.name,
    uid: c.uid,
    controller: false,
    blockOwnerDeletion: false,
  };
}

/**
 * The supervisor Pod for `opts.nodeName`, from the plugin's own Pod (image, pull policy, tolerations, owner),
 * annotated with its spec hash so a later plugin can tell whether the running one is still what it would build.
 */
export function buildSupervisorPod(opts: SupervisorPodOptions): V1Pod {
  const pod = supervisorPodWithoutHash(opts);
  pod.metadata!.annotations = { [SUPERVISOR_SPEC_ANNOTATION]: specHash(pod) };
  return pod;
}

function supervisorPodWithoutHash(opts: SupervisorPodOptions): V1Pod {
  const plugin = pluginContainer(opts.plugin);
  const owner = supervisorOwner(opts.plugin);
  const tolerations: V1Toleration[] = opts.plugin.spec?.tolerations ?? [{ operator: 'Exists' }];
  const socketDir = dirname(opts.socketPath);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: supervisorPodName(opts.nodeName),
      namespace: opts.plugin.metadata?.namespace,
      labels: { app: SUPERVISOR_APP_LABEL, [SUPERVISOR_NODE_LABEL]: nodeLabelValue(opts.nodeName) },
      ...(owner ? { ownerReferences: [owner] } : {}),
    },
    spec: {
      nodeName: opts.nodeName,
      serviceAccountName: opts.serviceAccountName ?? SUPERVISOR_SERVICE_ACCOUNT,
      // The supervisor never calls the API.
      automountServiceAccountToken: false,
      priorityClassName: 'system-node-critical',
      // s3fs and rclone reach the object store as the node does (as they did in the node pod).
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      tolerations,
      restartPolicy: 'Always',
      // SIGTERM leaves the daemons running until the kill; nothing to drain.
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: SUPERVISOR_CONTAINER,
          image: plugin.image,
          imagePullPolicy: plugin.imagePullPolicy,
          args: [
            'fuse-supervisor',
            '--socket',
            opts.socketPath,
            '--state-dir',
            opts.stateDir,
            '--kubelet-dir',
            opts.kubeletDir,
          ],
          // Bidirectional propagation, which the FUSE mounts under kubelet's dir need, is only allowed to a
          // privileged container; FUSE itself would do with SYS_ADMIN and /dev/fuse.
          securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] }, allowPrivilegeEscalation: true },
          resources: {
            // s3fs and rclone run inside this container: their caches count against this limit.
            requests: { cpu: '50m', memory: '128Mi' },
            limits: { cpu: '2', memory: '1Gi' },
          },
          volumeMounts: [
            { name: 'kubelet-dir', mountPath: opts.kubeletDir, mountPropagation: 'Bidirectional' },
            { name: 'fuse-device', mountPath: '/dev/fuse' },
            { name: 'fuse-state-dir', mountPath: opts.stateDir },
            { name: 'fuse-supervisor-dir', mountPath: socketDir },
          ],
        },
      ],
      volumes: [
        { name: 'kubelet-dir', hostPath: { path: opts.kubeletDir, type: 'Directory' } },
        { name: 'fuse-device', hostPath: { path: '/dev/fuse', type: 'CharDevice' } },
        { name: 'fuse-state-dir', hostPath: { path: opts.stateDir, type: 'DirectoryOrCreate' } },
        // A hostPath, not an emptyDir: the plugin's pod and this one share it.
        { name: 'fuse-supervisor-dir', hostPath: { path: socketDir, type: 'DirectoryOrCreate' } },
      ],
    },
  };
}
