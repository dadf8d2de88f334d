/**
 * Keeps the node's FUSE supervisor pod (supervisor-pod.ts) running for the node plugin: at start it adopts the
 * pod a previous plugin made (a rollout or restart of the plugin leaves it and its mounts alone), creates it when
 * missing, replaces it when it ended (Failed/Succeeded) or is being deleted, and waits until its socket answers.
 * A pod built from another spec (another image, or a changed DaemonSet: tolerations, pull policy, paths) is
 * replaced only when it holds no mount (the plugin logs that it keeps it otherwise): replacing it would end every
 * mount it serves. Afterwards a slow loop recreates a pod someone deleted, and replaces a kept older one as soon as
 * its last mount is gone (nudge() after each unmount; the loop otherwise), inside `exclusive` so that no mount call
 * reaches the pod being deleted.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { messageOf } from '../errors';
import type { Logger } from '../log';
import { buildSupervisorPod, isCurrent, supervisorImage, type SupervisorPodOptions } from './supervisor-pod';

/** How long start() waits for the supervisor pod's socket to answer (image pull, container start). */
export const SUPERVISOR_READY_TIMEOUT_MS = 180_000;
/** Period of the loop that recreates a missing or ended supervisor pod. */
export const SUPERVISOR_RECHECK_MS = 30_000;

/** The Pod calls the keeper makes; kubeSupervisorPodApi() gives the real one, tests a fake. */
export interface PodApi {
  /** The Pod, or undefined when there is none (404). */
  read(namespace: string, name: string): Promise<V1Pod | undefined>;
  /** Creates the Pod; resolves false when one of that name exists already (409). */
  create(namespace: string, pod: V1Pod): Promise<boolean>;
  /** Deletes the Pod of that uid (precondition); a missing Pod is success. */
  delete(namespace: string, name: string, uid: string): Promise<void>;
}

export interface KeeperOptions extends Omit<SupervisorPodOptions, 'plugin'> {
  api: PodApi;
  /** The node plugin's own Pod (downward API POD_NAMESPACE / POD_NAME). */
  namespace: string;
  pluginPodName: string;
  /** How many mounts the supervisor on the socket holds; rejects while nothing answers there. */
  mountCount(): Promise<number>;
  /**
   * Runs `fn` while no mount call is in flight or starts; undefined when that could not be had in time. Without
   * it a running pod of another spec is never replaced after start.
   */
  exclusive?<T>(fn: () => Promise<T>): Promise<T | undefined>;
  log: Logger;
  readyTimeoutMs?: number;
  recheckMs?: number;
  pollMs?: number;
}

/** What start() found and did. */
export interface KeeperResult {
  name: string;
  uid: string;
  image: string;
  /** adopted: a running pod of this spec; created: none was there; replaced: one of another spec held no mount; kept-older: it did. */
  action: 'adopted' | 'created' | 'replaced' | 'kept-older';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ended(pod: V1Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
}

export class SupervisorPodKeeper {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private desired?: V1Pod;
  private log?: Logger;
  /** The running pod is of another spec (kept at start while it held mounts). */
  private outdated = false;
  private checking = false;
  private readonly poll: number;

  constructor(private readonly o: KeeperOptions) {
    this.poll = o.pollMs ?? 500;
  }

  /** Adopts or creates the supervisor pod and resolves once its socket answers; then keeps it (see the loop). */
  async start(): Promise<KeeperResult> {
    const plugin = await this.o.api.read(this.o.namespace, this.o.pluginPodName);
    if (!plugin) throw new Error(`the node plugin's own pod ${this.o.namespace}/${this.o.pluginPodName} was not found`);
    const desired = buildSupervisorPod({ ...this.o, plugin });
    this.desired = desired;
    const name = desired.metadata!.name!;
    const image = supervisorImage(desired)!;
    const log = this.o.log.child({ supervisorPod: name });
    this.log = log;

    let action: KeeperResult['action'] = 'adopted';
    let pod = await this.settle(name);
    if (pod && !isCurrent(pod, desired)) {
      const mounts = await this.mountsWithin(this.o.readyTimeoutMs ?? SUPERVISOR_READY_TIMEOUT_MS);
      if (mounts === 0) {
        log.info(
          { from: supervisorImage(pod), to: image },
          'replacing the FUSE supervisor pod: built from another spec, no mounts',
        );
        await this.deleteAndWait(pod);
        pod = undefined;
        action = 'replaced';
      } else {
        log.warn(
          { image: supervisorImage(pod), pluginImage: image, mounts: mounts ?? 'unknown' },
          'keeping the FUSE supervisor pod of another spec (image or settings): it holds mounts, and replacing it would end them; it is replaced once it holds none',
        );
        action = 'kept-older';
        this.outdated = true;
      }
    }
    if (!pod) {
      pod = await this.createOrRead(desired);
      if (action === 'adopted') action = 'created';
    }
    await this.waitSocket(name);
    log.info({ uid: pod.metadata?.uid, action }, 'FUSE supervisor pod ready');
    // A start that finished after stop() (the plugin shutting down meanwhile) must not leave the loop running.
    if (!this.stopped) {
      this.timer = setInterval(() => void this.recheck(), this.o.recheckMs ?? SUPERVISOR_RECHECK_MS);
      this.timer.unref();
    }
    return { name, uid: pod.metadata!.uid!, image: supervisorImage(pod)!, action };
  }

  /** Checks at once whether a kept older pod can be replaced now (called after an unmount). */
  nudge(): void {
    if (this.outdated && this.timer) void this.recheck();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The pod of that name once it is neither ending nor being deleted (undefined when there is none then). */
  private async settle(name: string): Promise<V1Pod | undefined> {
    const pod = await this.o.api.read(this.o.namespace, name);
    if (!pod) return undefined;
    if (pod.metadata?.deletionTimestamp || ended(pod)) {
      await this.deleteAndWait(pod);
      return undefined;
    }
    return pod;
  }

  private async deleteAndWait(pod: V1Pod): Promise<void> {
    const name = pod.metadata!.name!;
    if (!pod.metadata?.deletionTimestamp) await this.o.api.delete(this.o.namespace, name, pod.metadata!.uid!);
    const end = Date.now() + (this.o.readyTimeoutMs ?? SUPERVISOR_READY_TIMEOUT_MS);
    while ((await this.o.api.read(this.o.namespace, name))?.metadata?.uid === pod.metadata!.uid) {
      if (Date.now() > end) throw new Error(`the FUSE supervisor pod ${name} was not gone in time`);
      await sleep(this.poll);
    }
  }

  private async createOrRead(desired: V1Pod): Promise<V1Pod> {
    const name = desired.metadata!.name!;
    if (await this.o.api.create(this.o.namespace, desired)) {
      const made = await this.o.api.read(this.o.namespace, name);
      if (made) return made;
    }
    // Another plugin start got there first (409), or it vanished at once: whatever is there now.
    const pod = await this.o.api.read(this.o.namespace, name);
    if (!pod) throw new Error(`the FUSE supervisor pod ${name} could not be created`);
    return pod;
  }

  /** The supervisor's mount count once its socket answers; undefined when it did not within `ms`. */
  private async mountsWithin(ms: number): Promise<number | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return await this.o.mountCount();
      } catch {
        if (Date.now() > end) return undefined;
        await sleep(this.poll);
      }
    }
  }

  private async waitSocket(name: string): Promise<void> {
    const ms = this.o.readyTimeoutMs ?? SUPERVISOR_READY_TIMEOUT_MS;
    if ((await this.mountsWithin(ms)) === undefined)
      throw new Error(`the FUSE supervisor pod ${name} did not answer on ${this.o.socketPath} within ${ms} ms`);
  }

  /**
   * Recreates the pod when it is gone or ended; replaces one of another spec once it holds no mount. Never
   * replaces a pod that holds mounts.
   */
  private async recheck(): Promise<void> {
    const log = this.log;
    if (!this.desired || !log || this.checking || this.stopped) return;
    this.checking = true;
    try {
      // While the plugin's own pod goes (uninstall deletes both), a recreated supervisor pod would only be collected again.
      const own = await this.o.api.read(this.o.namespace, this.o.pluginPodName);
      if (!own || own.metadata?.deletionTimestamp) return;
      const name = this.desired.metadata!.name!;
      const pod = await this.settle(name);
      if (!pod) {
        log.warn('the FUSE supervisor pod was gone or ended: creating it again (it remounts what its state dir lists)');
        await this.createOrRead(this.desired);
        this.outdated = false;
      } else {
        this.outdated = !isCurrent(pod, this.desired);
        if (this.outdated) await this.replaceIfEmpty(pod, this.desired, log);
      }
    } catch (e) {
      log.warn({ error: messageOf(e) }, 'could not check the FUSE supervisor pod; trying again later');
    } finally {
      this.checking = false;
    }
  }

  private async replaceIfEmpty(pod: V1Pod, desired: V1Pod, log: Logger): Promise<void> {
    if (!this.o.exclusive) return;
    const name = desired.metadata!.name!;
    const made = await this.o.exclusive(async () => {
      if ((await this.o.mountCount().catch(() => undefined)) !== 0) return undefined;
      log.info(
        { from: supervisorImage(pod), to: supervisorImage(desired) },
        'replacing the FUSE supervisor pod of another spec: it holds no mount any more',
      );
      await this.deleteAndWait(pod);
      const made = await this.createOrRead(desired);
      await this.waitSocket(name);
      return made;
    });
    if (!made) return;
    this.outdated = false;
    log.info({ uid: made.metadata?.uid, action: 'replaced' }, 'FUSE supervisor pod ready');
  }
}

/** The part of @kubernetes/client-node's CoreV1Api the real PodApi calls. */
interface CoreApi {
  readNamespacedPod(req: { name: string; namespace: string }): Promise<V1Pod>;
  createNamespacedPod(req: { namespace: string; body: V1Pod }): Promise<V1Pod>;
  deleteNamespacedPod(req: {
    name: string;
    namespace: string;
    body?: { preconditions?: { uid?: string } };
  }): Promise<unknown>;
}

function statusOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** A PodApi over a CoreV1Api. */
export function podApiOf(core: CoreApi): PodApi {
  return {
    async read(namespace, name) {
      try {
        return await core.readNamespacedPod({ name, namespace });
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        throw e;
      }
    },
    async create(namespace, body) {
      try {
        await core.createNamespacedPod({ namespace, body });
        return true;
      } catch (e) {
        if (statusOf(e) === 409) return false;
        throw e;
      }
    },
    async delete(namespace, name, uid) {
      try {
        await core.deleteNamespacedPod({ name, namespace, body: { preconditions: { uid } } });
      } catch (e) {
        // 404: gone already; 409: the uid changed (another pod of that name now, not ours to delete).
        if (statusOf(e) === 404 || statusOf(e) === 409) return;
        throw e;
      }
    },
  };
}

/** The real PodApi: @kubernetes/client-node 1.x (ESM, loaded on first use), in-cluster config. */
export async function kubePodApi(opts: { kubeconfigPath?: string } = {}): Promise<PodApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
  else kc.loadFromDefault();
  return podApiOf(kc.makeApiClient(k8s.CoreV1Api));
}
