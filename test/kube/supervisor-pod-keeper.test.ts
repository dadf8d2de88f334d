/**
 * The supervisor pod keeper against an in-memory Pod store (the adoption rules; the real API is the e2e's job,
 * test/e2e/object-rollout.e2e.test.ts), the pod builder's naming, and the gate that holds object calls until the
 * supervisor is the right one.
 */
import type { V1Pod, V1Toleration } from '@kubernetes/client-node';
import { CodedError, Status } from '../../src/errors';
import { GatedFuseMounts } from '../../src/fuse/gated-mounts';
import type { FuseMountService } from '../../src/fuse/supervisor-client';
import { SupervisorPodKeeper, type KeeperOptions, type PodApi } from '../../src/kube/supervisor-pod-keeper';
import {
  buildSupervisorPod,
  SUPERVISOR_SPEC_ANNOTATION,
  supervisorImage,
  supervisorPodName,
} from '../../src/kube/supervisor-pod';
import { logSink } from '../helpers/log-sink';

const NS = 'kube-system';
const NODE = 'node-1';
const SUP = supervisorPodName(NODE);

class FakePods implements PodApi {
  readonly pods = new Map<string, V1Pod>();
  readonly calls: string[] = [];
  private n = 0;
  async read(namespace: string, name: string) {
    const p = this.pods.get(`${namespace}/${name}`);
    return p && (JSON.parse(JSON.stringify(p)) as V1Pod);
  }
  async create(namespace: string, pod: V1Pod) {
    this.calls.push(`create ${pod.metadata!.name}`);
    const key = `${namespace}/${pod.metadata!.name}`;
    if (this.pods.has(key)) return false;
    this.put({ ...pod, metadata: { ...pod.metadata, uid: `uid-${++this.n}` }, status: { phase: 'Running' } });
    return true;
  }
  async delete(namespace: string, name: string, uid: string) {
    this.calls.push(`delete ${name} ${uid}`);
    const key = `${namespace}/${name}`;
    if (this.pods.get(key)?.metadata?.uid === uid) this.pods.delete(key);
  }
  put(pod: V1Pod) {
    this.pods.set(`${pod.metadata!.namespace ?? NS}/${pod.metadata!.name}`, pod);
  }
}

function pluginPod(image: string, tolerations: V1Toleration[] = [{ operator: 'Exists' }]): V1Pod {
  return {
    metadata: {
      name: 'csi-cinder-nodeplugin-abcde',
      namespace: NS,
      uid: 'plugin-uid',
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'csi-cinder-nodeplugin', uid: 'ds-uid', controller: true },
      ],
    },
    spec: {
      nodeName: NODE,
      tolerations,
      containers: [{ name: 'cinder-csi-plugin', image, imagePullPolicy: 'Never' }],
    },
  };
}

const PATHS = {
  socketPath: '/run/cinder-csi/supervisor.sock',
  stateDir: '/var/lib/cinder-csi/fuse',
  kubeletDir: '/var/lib/kubelet',
};

/** A supervisor pod as a plugin of `plugin` would have made it, as the API returns it (uid, status). */
function supervisorPod(plugin: V1Pod | string, uid: string, phase = 'Running'): V1Pod {
  const built = buildSupervisorPod({
    plugin: typeof plugin === 'string' ? pluginPod(plugin) : plugin,
    nodeName: NODE,
    ...PATHS,
  });
  return { ...built, metadata: { ...built.metadata, uid }, status: { phase } };
}

function keeper(
  api: FakePods,
  mounts: () => Promise<number>,
  more: Pick<KeeperOptions, 'exclusive' | 'recheckMs'> = {},
) {
  const sink = logSink('info');
  const k = new SupervisorPodKeeper({
    api,
    namespace: NS,
    pluginPodName: 'csi-cinder-nodeplugin-abcde',
    nodeName: NODE,
    ...PATHS,
    mountCount: mounts,
    log: sink.log,
    pollMs: 5,
    readyTimeoutMs: 2_000,
    recheckMs: 20,
    ...more,
  });
  return { k, sink };
}

async function waitFor(cond: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SupervisorPodKeeper', () => {
  let stop: Array<() => void> = [];
  afterEach(() => {
    for (const s of stop) s();
    stop = [];
  });

  it('creates the pod when there is none, from the plugin pod, and resolves once the socket answers', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    let answers = false;
    setTimeout(() => (answers = true), 50);
    const { k } = keeper(api, async () => {
      if (!answers) throw new CodedError(Status.UNAVAILABLE, 'no socket yet');
      return 0;
    });
    stop.push(() => k.stop());
    const r = await k.start();
    expect(r).toEqual({ name: SUP, uid: 'uid-1', image: 'img:v1', action: 'created' });
    const pod = (await api.read(NS, SUP))!;
    expect(pod.spec?.nodeName).toBe(NODE);
    expect(pod.spec?.containers[0].imagePullPolicy).toBe('Never');
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ uid: 'ds-uid', controller: false });
  });

  it('adopts a running pod of the same image: no create, no delete', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    api.put(supervisorPod('img:v1', 'old-uid'));
    const { k } = keeper(api, async () => 2);
    stop.push(() => k.stop());
    expect(await k.start()).toMatchObject({ uid: 'old-uid', action: 'adopted' });
    expect(api.calls).toEqual([]);
  });

  it('keeps a pod of another image while it holds mounts, and says so', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v2'));
    api.put(supervisorPod('img:v1', 'old-uid'));
    const { k, sink } = keeper(api, async () => 2);
    stop.push(() => k.stop());
    expect(await k.start()).toMatchObject({ uid: 'old-uid', image: 'img:v1', action: 'kept-older' });
    expect(api.calls).toEqual([]);
    expect(sink.lines.find((l) => l.level === 40)).toMatchObject({ image: 'img:v1', pluginImage: 'img:v2', mounts: 2 });
  });

  it('replaces a pod of another image that holds no mount', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v2'));
    api.put(supervisorPod('img:v1', 'old-uid'));
    const { k } = keeper(api, async () => 0);
    stop.push(() => k.stop());
    expect(await k.start()).toMatchObject({ image: 'img:v2', action: 'replaced' });
    expect(api.calls).toEqual([`delete ${SUP} old-uid`, `create ${SUP}`]);
    expect(supervisorImage((await api.read(NS, SUP))!)).toBe('img:v2');
  });

  it('treats a changed DaemonSet spec of the same image like another image: kept while it holds mounts, else replaced', async () => {
    const tainted = pluginPod('img:v1', [
      { key: 'dedicated', operator: 'Equal', value: 'storage', effect: 'NoSchedule' },
    ]);
    for (const [mounts, action, calls] of [
      [2, 'kept-older', []],
      [0, 'replaced', [`delete ${SUP} old-uid`, `create ${SUP}`]],
    ] as const) {
      const api = new FakePods();
      api.put(supervisorPod('img:v1', 'old-uid'));
      // The DaemonSet now tolerates a taint the old supervisor pod does not: same image, another spec.
      api.put(tainted);
      const { k } = keeper(api, async () => mounts);
      stop.push(() => k.stop());
      expect(await k.start()).toMatchObject({ image: 'img:v1', action });
      expect(api.calls).toEqual(calls);
      const now = (await api.read(NS, SUP))!;
      expect(now.spec?.tolerations).toEqual(
        action === 'replaced' ? tainted.spec?.tolerations : [{ operator: 'Exists' }],
      );
    }
  });

  it('adopts a pod whose spec hash matches even though the API added defaults to its spec', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    const running = supervisorPod('img:v1', 'old-uid');
    running.spec!.schedulerName = 'default-scheduler';
    running.spec!.containers[0].terminationMessagePath = '/dev/termination-log';
    api.put(running);
    const { k } = keeper(api, async () => 0);
    stop.push(() => k.stop());
    expect(await k.start()).toMatchObject({ uid: 'old-uid', action: 'adopted' });
    expect(api.calls).toEqual([]);
    expect(running.metadata?.annotations?.[SUPERVISOR_SPEC_ANNOTATION]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('replaces an ended pod, and recreates one deleted later', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    api.put(supervisorPod('img:v1', 'old-uid', 'Failed'));
    const { k } = keeper(api, async () => 0);
    stop.push(() => k.stop());
    const r = await k.start();
    expect(r.action).toBe('created');
    expect(api.calls).toEqual([`delete ${SUP} old-uid`, `create ${SUP}`]);
    api.pods.delete(`${NS}/${SUP}`);
    await new Promise((res) => setTimeout(res, 100));
    expect((await api.read(NS, SUP))?.metadata?.uid).toBe('uid-2');
  });

  it('does not recreate the pod while its own pod is being deleted (uninstall)', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    const { k } = keeper(api, async () => 0);
    stop.push(() => k.stop());
    await k.start();
    const own = (await api.read(NS, 'csi-cinder-nodeplugin-abcde'))!;
    api.put({ ...own, metadata: { ...own.metadata, deletionTimestamp: new Date() } });
    api.pods.delete(`${NS}/${SUP}`);
    await new Promise((res) => setTimeout(res, 100));
    expect(await api.read(NS, SUP)).toBeUndefined();
  });

  it('a start that finishes after stop() leaves no recheck loop behind', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v1'));
    let answers = false;
    const { k } = keeper(api, async () => {
      if (!answers) throw new CodedError(Status.UNAVAILABLE, 'no socket yet');
      return 0;
    });
    const started = k.start();
    await new Promise((res) => setTimeout(res, 30));
    k.stop();
    answers = true;
    expect((await started).action).toBe('created');
    api.pods.delete(`${NS}/${SUP}`);
    await new Promise((res) => setTimeout(res, 100));
    expect(await api.read(NS, SUP)).toBeUndefined();
  });

  it('replaces a pod kept at start once its last mount goes, inside exclusive, without waiting for the loop', async () => {
    const api = new FakePods();
    api.put(pluginPod('img:v2'));
    api.put(supervisorPod('img:v1', 'old-uid'));
    let mounts = 1;
    const sections: string[] = [];
    const exclusive = async <T>(fn: () => Promise<T>) => {
      sections.push('enter');
      const r = await fn();
      sections.push('leave');
      return r;
    };
    const { k, sink } = keeper(api, async () => mounts, { exclusive, recheckMs: 60_000 });
    stop.push(() => k.stop());
    expect(await k.start()).toMatchObject({ uid: 'old-uid', action: 'kept-older' });
    // An unmount that leaves one mount: looked at, kept.
    k.nudge();
    await new Promise((res) => setTimeout(res, 50));
    expect(api.calls).toEqual([]);
    expect(sections).toEqual(['enter', 'leave']);
    mounts = 0;
    k.nudge();
    await waitFor(() => supervisorImage(api.pods.get(`${NS}/${SUP}`) ?? {}) === 'img:v2');
    expect(api.calls).toEqual([`delete ${SUP} old-uid`, `create ${SUP}`]);
    expect(sections).toEqual(['enter', 'leave', 'enter', 'leave']);
    await waitFor(() => sink.lines.some((l) => l.action === 'replaced'));
    // Current now: later nudges do nothing.
    k.nudge();
    await new Promise((res) => setTimeout(res, 50));
    expect(sections).toHaveLength(4);
  });

  it('without exclusive, or when exclusive could not be had, a pod of another spec stays after start', async () => {
    for (const exclusive of [undefined, async () => undefined]) {
      const api = new FakePods();
      api.put(pluginPod('img:v2'));
      api.put(supervisorPod('img:v1', 'old-uid'));
      let mounts = 3;
      const { k } = keeper(api, async () => mounts, { exclusive });
      stop.push(() => k.stop());
      expect(await k.start()).toMatchObject({ action: 'kept-older' });
      mounts = 0;
      k.nudge();
      await new Promise((res) => setTimeout(res, 100));
      expect(api.calls).toEqual([]);
    }
  });

  it('fails start when its own pod is missing or the socket never answers', async () => {
    const api = new FakePods();
    const { k } = keeper(api, async () => 0);
    await expect(k.start()).rejects.toThrow(/own pod kube-system\/csi-cinder-nodeplugin-abcde was not found/);
    api.put(pluginPod('img:v1'));
    const { k: k2 } = keeper(api, async () => {
      throw new Error('ENOENT');
    });
    await expect(k2.start()).rejects.toThrow(/did not answer on \/run\/cinder-csi\/supervisor.sock/);
  });
});

describe('supervisorPodName', () => {
  it('is the node name when it fits a DNS label, else a hash keeps it unique and short', () => {
    expect(supervisorPodName('worker-1')).toBe('csi-cinder-fuse-supervisor-worker-1');
    const long = `${'a'.repeat(60)}.example.com`;
    const name = supervisorPodName(long);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(supervisorPodName(`${'a'.repeat(60)}.example.org`)).not.toBe(name);
  });
});

describe('GatedFuseMounts', () => {
  const inner: FuseMountService = {
    mount: async () => undefined,
    unmount: async () => undefined,
    updateCredentials: async () => undefined,
    list: async () => [],
  };

  it('holds calls until the supervisor is ready, then passes them on', async () => {
    let open!: () => void;
    const gate = new GatedFuseMounts(inner, new Promise<void>((r) => (open = r)), 5_000);
    const pending = gate.list();
    let done = false;
    void pending.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    open();
    expect(await pending).toEqual([]);
  });

  it('exclusive waits for the calls in flight, holds new ones until it ends, then lets them through', async () => {
    let finishMount!: () => void;
    const order: string[] = [];
    const slow: FuseMountService = {
      ...inner,
      mount: () =>
        new Promise<void>((r) => {
          order.push('mount start');
          finishMount = () => {
            order.push('mount end');
            r();
          };
        }),
      list: async () => {
        order.push('list');
        return [];
      },
    };
    const gate = new GatedFuseMounts(slow, Promise.resolve(), 5_000);
    const mounting = gate.mount({} as never, {} as never);
    await new Promise((r) => setTimeout(r, 10));
    const section = gate.exclusive(async () => {
      order.push('exclusive');
      await new Promise((r) => setTimeout(r, 30));
      order.push('exclusive end');
      return 7;
    });
    await new Promise((r) => setTimeout(r, 10));
    const listing = gate.list();
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['mount start']);
    finishMount();
    expect(await section).toBe(7);
    await listing;
    await mounting;
    expect(order).toEqual(['mount start', 'mount end', 'exclusive', 'exclusive end', 'list']);
  });

  it('exclusive gives up when a call in flight outlasts the bound; a call held past the bound is UNAVAILABLE', async () => {
    const never: FuseMountService = { ...inner, mount: () => new Promise(() => undefined) };
    const gate = new GatedFuseMounts(never, Promise.resolve(), 40);
    void gate.mount({} as never, {} as never);
    await new Promise((r) => setTimeout(r, 5));
    let ran = false;
    expect(await gate.exclusive(async () => (ran = true))).toBeUndefined();
    expect(ran).toBe(false);

    const gate2 = new GatedFuseMounts(inner, Promise.resolve(), 40);
    const section = gate2.exclusive(() => new Promise((r) => setTimeout(r, 150)));
    await expect(gate2.unmount('/x')).rejects.toThrow(/FUSE supervisor pod not ready: it is being replaced/);
    await section;
    await expect(gate2.unmount('/x')).resolves.toBeUndefined();
  });

  it('tells its listener after each unmount that succeeded', async () => {
    const gate = new GatedFuseMounts(inner, Promise.resolve(), 1_000);
    let told = 0;
    gate.afterUnmount = () => told++;
    await gate.unmount('/a');
    await gate.unmount('/b');
    expect(told).toBe(2);
  });

  it('answers UNAVAILABLE when the supervisor is not ready within the bound', async () => {
    const gate = new GatedFuseMounts(inner, new Promise(() => undefined), 30);
    await expect(gate.unmount('/x')).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });
});

describe('--fuse-supervisor-pod at start', () => {
  const base = ['--endpoint=unix:///tmp/never-served.sock', '--provide-controller-service=false'];
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['POD_NAME', 'POD_NAMESPACE', 'NODE_NAME']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('needs the supervisor socket and the downward API variables, naming what is missing', async () => {
    const { startPlugin } = await import('../../src/main');
    const { parseFlags } = await import('../../src/config/flags');
    const { log } = logSink('info');
    await expect(startPlugin(parseFlags([...base, '--fuse-supervisor-pod']), log)).rejects.toThrow(
      /--fuse-supervisor-pod needs --fuse-supervisor-socket/,
    );
    for (const k of ['POD_NAME', 'POD_NAMESPACE', 'NODE_NAME']) delete process.env[k];
    process.env.POD_NAME = 'csi-cinder-nodeplugin-x';
    await expect(
      startPlugin(parseFlags([...base, '--fuse-supervisor-pod', '--fuse-supervisor-socket=/tmp/x/s.sock']), log),
    ).rejects.toThrow(/--fuse-supervisor-pod needs POD_NAMESPACE, NODE_NAME in the environment/);
  });
});
