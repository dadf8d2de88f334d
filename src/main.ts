/**
 * Composition root of the plugin process: turns flags and cloud.conf into the logger, the services and the
 * gRPC server, and runs until SIGTERM/SIGINT. The only place that builds real clients; everything below
 * receives its dependencies.
 */
import { loadCloudConfigFiles, ConfigError } from './config/cloud-conf';
import type { CloudConfig } from './config/types';
import type { PluginFlags } from './config/flags';
import { createLogger, type Logger } from './log';
import { CsiServer, type ServiceBinding } from './csi/server';
import { identityHandlers } from './csi/identity';
import { loadCsiProto, stripSecrets } from './csi/proto';
import { commandExists } from './mount/exec';
import type { PluginMetrics } from './metrics/registry';
import { startMetricsServer } from './metrics/http-server';
import { REQUIRED_TOOLS } from './mount/node-tools';
import { VERSION } from './version';
import { messageOf } from './errors';
import type { FuseMountService } from './fuse/supervisor-client';

export interface RunningPlugin {
  readonly endpoint: string;
  readonly server: CsiServer;
  readonly config: CloudConfig;
  /** Only with --http-endpoint: without it nothing could read them. */
  readonly metrics?: PluginMetrics;
  stop(graceMs?: number): Promise<void>;
}

/** Loads and validates cloud.conf for the roles this process plays. Throws ConfigError. */
export function loadConfigForRoles(flags: PluginFlags): CloudConfig {
  if (flags.provideControllerService && flags.cloudConfig.length === 0) {
    throw new ConfigError('--cloud-config is required when the controller service is enabled');
  }
  const config = loadCloudConfigFiles(flags.cloudConfig, { requireCredentials: flags.provideControllerService });
  if (flags.provideControllerService) {
    for (const name of flags.cloudNames) {
      if (!config.clouds.has(name)) {
        const section = name === '' ? '[Global]' : `[Global "${name}"]`;
        throw new ConfigError(`--cloud-name "${name}": no ${section} section in ${flags.cloudConfig.join(', ')}`);
      }
    }
  }
  return config;
}

/** Starts the plugin with the given flags; resolves once the socket is listening. */
export async function startPlugin(flags: PluginFlags, log: Logger): Promise<RunningPlugin> {
  if (!flags.endpoint) throw new ConfigError('--endpoint is required (unix:///path/csi.sock or tcp://host:port)');
  if (!flags.provideControllerService && !flags.provideNodeService) {
    throw new ConfigError('--provide-controller-service and --provide-node-service are both false: nothing to serve');
  }
  const config = loadConfigForRoles(flags);
  for (const w of config.warnings) log.warn(w);
  for (const f of flags.ignored) log.warn(`--${f} is accepted for compatibility and has no effect`);

  const proto = loadCsiProto();
  // prom-client and its collectors cost 20-75 ms of every start (bench/node.ts); only a scrape endpoint needs them.
  const metrics = flags.httpEndpoint ? new (await import('./metrics/registry')).PluginMetrics() : undefined;
  const services: ServiceBinding[] = [
    {
      definition: proto.IdentityService,
      handlers: identityHandlers({
        version: VERSION,
        controller: flags.provideControllerService,
        groupController: flags.provideControllerService,
        topology: flags.withTopology,
        readinessProblems: flags.provideNodeService ? toolsReadiness(REQUIRED_TOOLS) : async () => [],
      }),
    },
  ];
  const stops: Array<() => void> = [];
  /** Work for after the socket is served: nothing a Probe should wait for. */
  const afterStart: Array<() => Promise<void>> = [];
  if (flags.provideControllerService) {
    // Each role's modules load only when the role is served: the controller side pulls in the OpenStack clients and minio,
    // which a node-only DaemonSet pod would carry in memory and pay for at every start (bench/node.ts).
    const { createClouds } = await import('./openstack/clients');
    const { controllerHandlers } = await import('./csi/controller');
    const { watchCloudConfig } = await import('./config/reload');
    const { kubePvcAnnotations } = await import('./kube/pvc-annotations');
    const clouds = createClouds(config.clouds, flags.cloudNames, {
      logger: log,
      userAgentExtra: flags.userAgent,
      ignoreVolumeMicroversion: config.blockStorage.ignoreVolumeMicroversion,
      onRequest: metrics?.onRequest,
    });
    services.push({
      definition: proto.ControllerService,
      handlers: controllerHandlers({
        clouds,
        blockStorage: config.blockStorage,
        cluster: flags.cluster,
        withTopology: flags.withTopology,
        // Reads the PVC's affinity annotations through the Kubernetes API, like the reference driver.
        pvcAnnotations: flags.pvcAnnotations ? kubePvcAnnotations() : undefined,
        log,
        waitOptions: { onWaitFinished: metrics?.onWaitFinished },
        // S3 endpoints and keys come from each StorageClass's secrets; Swift uses the same clouds as Cinder.
        object: { s3: {}, swift: clouds },
      }),
    });
    const { groupControllerHandlers } = await import('./csi/group-controller');
    services.push({
      definition: proto.GroupControllerService,
      handlers: groupControllerHandlers({ clouds, log, waitOptions: { onWaitFinished: metrics?.onWaitFinished } }),
    });
    // What the first request needs loads as soon as the plugin serves, so the first CreateVolume pays for none of it.
    afterStart.push(() =>
      import('./openstack/http-transport').then((m) => m.preloadTransport()).catch(() => undefined),
    );
    // Each cloud authenticates as soon as the plugin serves, so the first CreateVolume does not wait for
    // Keystone (one token per lifetime either way), and a wrong credential shows in the log at start.
    afterStart.push(async () => {
      for (const [name, clients] of clouds) {
        await clients.keystone.token().catch((e: unknown) => {
          log.warn({ cloud: name, error: messageOf(e) }, 'could not authenticate at start; every call will try again');
        });
      }
    });
    stops.push(
      watchCloudConfig({
        files: flags.cloudConfig,
        requireCredentials: true,
        log,
        onChange: (next) => {
          for (const [name, clients] of clouds) {
            const auth = next.clouds.get(name);
            if (auth) clients.keystone.reload(auth);
          }
        },
      }),
    );
  }
  if (flags.provideNodeService) {
    // NODE_NAME comes from the DaemonSet's downward API; it lets the Node object's providerID answer
    // when the cloud has neither a metadata service nor a config drive.
    const nodeName = process.env.NODE_NAME;
    const { MetadataClient } = await import('./openstack/metadata');
    const { kubernetesNodeGetter } = await import('./openstack/metadata-sources');
    const { createFuseMounts } = await import('./fuse/fuse-mounts');
    const { nodeHandlers } = await import('./csi/node');
    const { KernelNodeMounter } = await import('./mount/node-mounter');
    const metadata = new MetadataClient({
      options: config.metadata,
      logger: log,
      metadataUrl: flags.metadataUrl,
      kubernetes: nodeName ? { nodeName, getNode: kubernetesNodeGetter() } : undefined,
    });
    if (flags.fuseSupervisorPod && !flags.fuseSupervisorSocket)
      throw new ConfigError('--fuse-supervisor-pod needs --fuse-supervisor-socket (in a hostPath directory)');
    const fuse = await createFuseMounts({
      supervisorSocket: flags.fuseSupervisorSocket,
      stateDir: flags.fuseStateDir,
      kubeletDir: flags.kubeletDir,
      log,
    });
    stops.push(() => fuse.stop());
    if (flags.fuseSupervisorPod) {
      // The supervisor runs in a pod of its own that this plugin creates or adopts; object calls wait for it.
      const kept = await keepSupervisorPod(flags, fuse.service, log);
      stops.push(kept.stop);
      fuse.service = kept.service;
    }
    metrics?.setFuseMountSource(() => fuse.service.list());
    services.push({
      definition: proto.NodeService,
      handlers: nodeHandlers({
        fuse: fuse.service,
        mounter: new KernelNodeMounter({ log, byIdDir: flags.byIdDir }),
        metadata,
        nodeId: flags.nodeId,
        blockStorage: config.blockStorage,
        withTopology: flags.withTopology,
        additionalTopology: { ...flags.additionalTopology },
        kubeletDir: flags.kubeletDir,
        byIdDir: flags.byIdDir,
        volumeMountGroup: flags.volumeMountGroup,
        log,
      }),
    });
  }
  const server = new CsiServer({
    endpoint: flags.endpoint,
    log,
    services,
    stripSecrets,
    observer: metrics?.callObserver,
  });
  const endpoint = await server.start();
  for (const task of afterStart) void task();
  let serving = true;
  let http: { stop(): Promise<void> } | undefined;
  if (flags.httpEndpoint && metrics) {
    try {
      http = await startMetricsServer({ endpoint: flags.httpEndpoint, metrics, isServing: () => serving, log });
    } catch (e) {
      await server.stop(0);
      throw e;
    }
  }
  return {
    endpoint,
    server,
    config,
    metrics,
    stop: async (graceMs) => {
      serving = false;
      for (const stop of stops) stop();
      await server.stop(graceMs);
      await http?.stop();
    },
  };
}

/**
 * `--fuse-supervisor-pod`: starts keeping the node's supervisor pod (adopt, create or replace; kube/) in the
 * background, retrying until it answers, and gates the FUSE service on it. The CSI socket serves meanwhile:
 * block volumes need no supervisor, and an object call waits a bounded time, then gets UNAVAILABLE.
 */
async function keepSupervisorPod(
  flags: PluginFlags,
  service: FuseMountService,
  log: Logger,
): Promise<{ service: FuseMountService; stop(): void }> {
  const env = {
    POD_NAME: process.env.POD_NAME,
    POD_NAMESPACE: process.env.POD_NAMESPACE,
    NODE_NAME: process.env.NODE_NAME,
  };
  const missing = Object.entries(env)
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length)
    throw new ConfigError(`--fuse-supervisor-pod needs ${missing.join(', ')} in the environment (downward API)`);
  const { SupervisorPodKeeper, kubePodApi } = await import('./kube/supervisor-pod-keeper');
  const { DEFAULT_SUPERVISOR_STATE_DIR } = await import('./kube/supervisor-pod');
  const { GatedFuseMounts } = await import('./fuse/gated-mounts');
  const socketPath = flags.fuseSupervisorSocket!;
  const keeper = new SupervisorPodKeeper({
    api: await kubePodApi(),
    namespace: env.POD_NAMESPACE!,
    pluginPodName: env.POD_NAME!,
    nodeName: env.NODE_NAME!,
    socketPath,
    stateDir: flags.fuseStateDir ?? DEFAULT_SUPERVISOR_STATE_DIR,
    kubeletDir: flags.kubeletDir,
    mountCount: async () => (await service.list()).length,
    // The gate below is made once start() is under way; the keeper uses it only after start, from its loop.
    exclusive: <T>(fn: () => Promise<T>): Promise<T | undefined> => gate.exclusive(fn),
    log: log.child({ component: 'fuse-supervisor-pod' }),
  });
  let stopped = false;
  const ready = (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await keeper.start();
      } catch (e) {
        if (stopped) throw e;
        log.error({ error: messageOf(e), attempt }, 'could not start the FUSE supervisor pod; trying again in 10 s');
        await new Promise((r) => setTimeout(r, 10_000).unref());
        if (stopped) throw e;
      }
    }
  })();
  ready.catch(() => undefined);
  const gate = new GatedFuseMounts(service, ready);
  gate.afterUnmount = () => keeper.nudge();
  return {
    service: gate,
    stop: () => {
      stopped = true;
      keeper.stop();
    },
  };
}

/**
 * Probe's tool check, answered from memory once every tool was found: the lookups run on libuv's small
 * thread pool, which stat() calls on a hung FUSE mount can fill, and a liveness probe must not wait behind them.
 */
function toolsReadiness(tools: readonly string[]): () => Promise<string[]> {
  let allFound = false;
  return async () => {
    if (allFound) return [];
    const missing = await missingTools(tools);
    allFound = missing.length === 0;
    return missing;
  };
}

async function missingTools(tools: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tools) if (!(await commandExists(t))) missing.push(`${t} is not installed`);
  return missing;
}

/** Runs the plugin until a termination signal; returns the process exit code. */
export async function runPlugin(flags: PluginFlags): Promise<number> {
  const log = createLogger({ level: flags.logLevel, pretty: flags.logFormat === 'text' });
  log.info(
    { version: VERSION, controller: flags.provideControllerService, node: flags.provideNodeService },
    'starting cinder-csi-plugin',
  );
  const plugin = await startPlugin(flags, log);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal: sig }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal: sig }, 'signal received; draining in-flight calls');
      void plugin.stop().then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  log.info('stopped');
  return 0;
}
