/**
 * Command-line flags of the plugin, with the reference driver's names so existing manifests work unchanged
 * (`--endpoint`, `--cloud-config`, ..., and klog's `--v`). Go's flag syntax is accepted: `--name=value`,
 * `--name value`, one or two dashes, bare booleans. Unknown flags and bad values raise UsageError naming
 * the flag; the CLI turns that into one line on stderr and exit code 2.
 */
import { resolve } from 'node:path';
import type { LogLevel } from '../log';

export interface PluginFlags {
  readonly endpoint?: string;
  readonly cloudConfig: readonly string[];
  readonly cloudNames: readonly string[];
  readonly withTopology: boolean;
  readonly additionalTopology: Readonly<Record<string, string>>;
  readonly cluster: string;
  readonly httpEndpoint?: string;
  readonly provideControllerService: boolean;
  readonly provideNodeService: boolean;
  readonly pvcAnnotations: boolean;
  readonly userAgent: readonly string[];
  readonly logLevel: LogLevel;
  readonly logFormat: 'json' | 'text';
  /** Node: only targets under this directory are accepted. */
  readonly kubeletDir: string;
  /** Node: where the hypervisor's disk links appear. */
  readonly byIdDir: string;
  /** Node: instance id to report instead of asking the metadata chain (clouds without metadata). */
  readonly nodeId?: string;
  /** Node: base URL of the metadata service. */
  readonly metadataUrl: string;
  /** Node: unix socket of the FUSE mount supervisor that owns object-volume mounts. */
  readonly fuseSupervisorSocket?: string;
  /**
   * Node: run the supervisor on that socket as a pod of its own that this plugin creates and adopts (one per
   * node, outside the DaemonSet, so a rollout leaves the FUSE daemons running). Needs POD_NAME, POD_NAMESPACE
   * and NODE_NAME from the downward API and --fuse-supervisor-socket in a hostPath directory.
   */
  readonly fuseSupervisorPod: boolean;
  /**
   * Node: advertise VOLUME_MOUNT_GROUP, so kubelet passes the pod's fsGroup (object volumes mount with it as
   * their group) and no longer chowns any volume of this node itself (the driver does it for block volumes).
   */
  readonly volumeMountGroup: boolean;
  /** Node, without a supervisor socket: state directory of the supervisor run inside the plugin. */
  readonly fuseStateDir?: string;
  /** Flags accepted for compatibility that change nothing, for a start-up warning. */
  readonly ignored: readonly string[];
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Kind = 'string' | 'bool' | 'list' | 'int' | 'ignored-value' | 'ignored-bool';

const FLAGS: Record<string, Kind> = {
  endpoint: 'string',
  'cloud-config': 'list',
  'cloud-name': 'list',
  'with-topology': 'bool',
  'additional-topology': 'list',
  cluster: 'string',
  'http-endpoint': 'string',
  'provide-controller-service': 'bool',
  'provide-node-service': 'bool',
  'pvc-annotations': 'bool',
  'user-agent': 'list',
  'log-level': 'string',
  'log-format': 'string',
  v: 'int',
  'kubelet-dir': 'string',
  'by-id-dir': 'string',
  'node-id': 'string',
  'metadata-url': 'string',
  'fuse-supervisor-socket': 'string',
  'fuse-supervisor-pod': 'bool',
  'volume-mount-group': 'bool',
  'fuse-state-dir': 'string',
  // Accepted so reference manifests keep working; they have no effect here.
  nodeid: 'ignored-value',
  'node-service-no-os-client': 'ignored-bool',
  kubeconfig: 'ignored-value',
  master: 'ignored-value',
  'kube-api-qps': 'ignored-value',
  'kube-api-burst': 'ignored-value',
  'min-resync-period': 'ignored-value',
  logtostderr: 'ignored-bool',
  alsologtostderr: 'ignored-bool',
};

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const BOOL_TEXT: Record<string, boolean> = { true: true, '1': true, t: true, false: false, '0': false, f: false };
// Kubernetes label syntax for topology keys (optional DNS prefix) and values.
const LABEL_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses plugin flags (everything after the program name, subcommand removed). Throws UsageError. */
export function parseFlags(argv: readonly string[]): PluginFlags {
  const seen = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--?([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}" (flags look like --name=value)`);
    const [, name, inline] = m;
    const kind = FLAGS[name];
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    let value = inline;
    if (value === undefined) {
      if (kind === 'bool' || kind === 'ignored-bool') value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new UsageError(`flag --${name} needs a value`);
    }
    seen.set(name, [...(seen.get(name) ?? []), value]);
  }

  const last = (name: string) => seen.get(name)?.at(-1);
  const bool = (name: string, dflt: boolean): boolean => {
    const v = last(name);
    if (v === undefined) return dflt;
    const b = BOOL_TEXT[v.toLowerCase()];
    if (b === undefined) throw new UsageError(`flag --${name}: "${v}" is not a boolean (true or false)`);
    return b;
  };
  const list = (name: string) => seen.get(name) ?? [];

  return Object.freeze({
    endpoint: last('endpoint'),
    cloudConfig: Object.freeze(list('cloud-config')),
    cloudNames: Object.freeze(list('cloud-name').length ? [...new Set(list('cloud-name'))] : ['']),
    withTopology: bool('with-topology', true),
    additionalTopology: Object.freeze(parseTopology(list('additional-topology'))),
    cluster: last('cluster') ?? '',
    httpEndpoint: last('http-endpoint') || undefined,
    provideControllerService: bool('provide-controller-service', true),
    provideNodeService: bool('provide-node-service', true),
    pvcAnnotations: bool('pvc-annotations', false),
    userAgent: Object.freeze(list('user-agent')),
    logLevel: parseLogLevel(last('log-level'), last('v')),
    logFormat: parseLogFormat(last('log-format')),
    kubeletDir: last('kubelet-dir') ?? '/var/lib/kubelet',
    byIdDir: last('by-id-dir') ?? '/dev/disk/by-id',
    nodeId: last('node-id') || undefined,
    metadataUrl: parseUrl('metadata-url', last('metadata-url') ?? 'http://169.254.169.254'),
    fuseSupervisorSocket: last('fuse-supervisor-socket') || undefined,
    fuseSupervisorPod: bool('fuse-supervisor-pod', false),
    volumeMountGroup: bool('volume-mount-group', false),
    fuseStateDir: last('fuse-state-dir') || undefined,
    ignored: Object.freeze([...seen.keys()].filter((n) => FLAGS[n].startsWith('ignored'))),
  });
}

function parseTopology(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    // The reference accepts a comma-separated list in one flag as well as the flag repeated.
    for (const pair of item.split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      const key = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (eq <= 0 || !LABEL_NAME.test(key) || !LABEL_VALUE.test(value)) {
        throw new UsageError(`flag --additional-topology: "${pair}" is not key=value with a valid label key and value`);
      }
      out[key] = value;
    }
  }
  return out;
}

function parseLogLevel(level: string | undefined, verbosity: string | undefined): LogLevel {
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(`flag --log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
    }
    return level as LogLevel;
  }
  if (verbosity === undefined) return 'info';
  if (!/^\d+$/.test(verbosity)) throw new UsageError(`flag --v: "${verbosity}" is not a non-negative integer`);
  // klog verbosity as the reference's manifests set it: 0-3 ordinary, 4-5 debug, 6+ wire-level.
  const v = Number(verbosity);
  return v >= 6 ? 'trace' : v >= 4 ? 'debug' : 'info';
}

function parseLogFormat(format: string | undefined): 'json' | 'text' {
  if (format === undefined || format === 'json') return 'json';
  if (format === 'text') return 'text';
  throw new UsageError(`flag --log-format: "${format}" is not json or text`);
}

function parseUrl(flag: string, value: string): string {
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    return value.replace(/\/+$/, '');
  } catch {
    throw new UsageError(`flag --${flag}: "${value}" is not an http(s) URL`);
  }
}

/** Parses `unix:///path/csi.sock` or `tcp://host:port` (the reference's --endpoint forms). */
export function parseEndpoint(
  endpoint: string,
): { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } {
  // The reference manifests say unix://csi/csi.sock and mean csi/csi.sock relative to the working directory.
  const unix = /^unix:\/\/(.+)$/.exec(endpoint) ?? /^unix:(\/[^/].*)$/.exec(endpoint);
  if (unix) return { kind: 'unix', path: resolve(unix[1]) };
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]*):(\d+)\/?$/.exec(endpoint);
  if (tcp && Number(tcp[2]) <= 65535) return { kind: 'tcp', host: tcp[1] || '0.0.0.0', port: Number(tcp[2]) };
  throw new UsageError(`flag --endpoint: "${endpoint}" is not unix:///path/to/csi.sock or tcp://host:port`);
}
