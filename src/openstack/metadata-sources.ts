/**
 * The four places a node can learn its instance id (and AZ): the config drive, the metadata service, the
 * cloud-init instance-id file and the Kubernetes Node's providerID. Each reader returns what it found or
 * throws a short reason; metadata.ts chooses the order, validates, caches and reports.
 */
import { mkdtemp, readFile, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Exec } from '../mount/exec';
import { type Logger } from '../log';
import { type HttpClient } from './http';

export const METADATA_SERVICE_URL = 'http://169.254.169.254';
export const META_DATA_PATH = 'openstack/latest/meta_data.json';
export const CONFIG_DRIVE_LABEL = 'config-2';
export const CONFIG_DRIVE_BY_LABEL = `/dev/disk/by-label/${CONFIG_DRIVE_LABEL}`;
export const CLOUD_INIT_INSTANCE_ID_PATH = '/var/lib/cloud/data/instance-id';
/** Bound on one blkid/mount/umount of the config drive, ms. */
export const CONFIG_DRIVE_COMMAND_TIMEOUT_MS = 30_000;
/** Node labels that carry the zone, newest first. */
const ZONE_LABELS = ['topology.kubernetes.io/zone', 'failure-domain.beta.kubernetes.io/zone'];

/** A disk in meta_data.json `devices[]` (used by the Hyper-V device-path fallback). */
export interface MetadataDevice {
  type?: string;
  bus?: string;
  serial?: string;
  address?: string;
}

/** What one source said, before validation. */
export interface RawMetadata {
  uuid?: string;
  name?: string;
  availabilityZone?: string;
  devices?: MetadataDevice[];
}

/** The slice of a Kubernetes Node we read; @kubernetes/client-node's V1Node fits it. */
export interface KubeNode {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { providerID?: string };
}

/** Reads one Node object by name; tests pass a fake, main.ts `kubernetesNodeGetter()`. */
export type NodeGetter = (name: string, signal?: AbortSignal) => Promise<KubeNode>;

/** Parses meta_data.json (`uuid`, `name`, `availability_zone`, `devices`). */
export function parseMetaData(text: string): RawMetadata {
  const j = JSON.parse(text) as { uuid?: unknown; name?: unknown; availability_zone?: unknown; devices?: unknown };
  return {
    uuid: typeof j.uuid === 'string' ? j.uuid : undefined,
    name: typeof j.name === 'string' ? j.name : undefined,
    availabilityZone: typeof j.availability_zone === 'string' ? j.availability_zone : undefined,
    devices: Array.isArray(j.devices) ? (j.devices as MetadataDevice[]) : [],
  };
}

export interface ConfigDriveDeps {
  exec: Exec;
  log: Logger;
  /** An already-mounted config drive; no device lookup or mount when set. */
  mountedDir?: string;
  byLabelPath?: string;
  tmpDir?: string;
}

/**
 * meta_data.json from the config drive: `/dev/disk/by-label/config-2`, else `blkid -l -t LABEL=config-2 -o device`,
 * mounted read-only as iso9660 then vfat on a fresh temp dir, read, unmounted and the dir removed.
 */
export async function readConfigDrive(d: ConfigDriveDeps): Promise<RawMetadata> {
  if (d.mountedDir) return parseMetaData(await readFile(join(d.mountedDir, META_DATA_PATH), 'utf8'));
  const device = await findConfigDriveDevice(d);
  const dir = await mkdtemp(join(d.tmpDir ?? tmpdir(), 'cinder-csi-configdrive-'));
  const opts = { timeoutMs: CONFIG_DRIVE_COMMAND_TIMEOUT_MS };
  try {
    try {
      await d.exec('mount', ['-t', 'iso9660', '-o', 'ro', device, dir], opts);
    } catch {
      // Config drives are ISO 9660 by default; `config_drive_format = vfat` clouds make a FAT one.
      await d.exec('mount', ['-t', 'vfat', '-o', 'ro', device, dir], opts);
    }
    try {
      return parseMetaData(await readFile(join(dir, META_DATA_PATH), 'utf8'));
    } finally {
      await d
        .exec('umount', [dir], opts)
        .catch((e: unknown) => d.log.warn({ err: e, dir }, 'config drive unmount failed'));
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

async function findConfigDriveDevice(d: ConfigDriveDeps): Promise<string> {
  const byLabel = d.byLabelPath ?? CONFIG_DRIVE_BY_LABEL;
  if (
    await stat(byLabel).then(
      () => true,
      () => false,
    )
  )
    return byLabel;
  // blkid exits 2 when nothing matches.
  const res = await d.exec('blkid', ['-l', '-t', `LABEL=${CONFIG_DRIVE_LABEL}`, '-o', 'device'], {
    okCodes: [0, 2],
    timeoutMs: CONFIG_DRIVE_COMMAND_TIMEOUT_MS,
  });
  const device = res.stdout.trim();
  if (!device) throw new Error(`no device labelled ${CONFIG_DRIVE_LABEL} (${byLabel} absent, blkid found none)`);
  return device;
}

/** meta_data.json from the metadata service, never through a proxy, bounded by `timeoutMs`. */
export async function readMetadataService(
  http: HttpClient,
  baseUrl: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<RawMetadata> {
  const res = await http.request<unknown>({
    service: 'metadata',
    operation: 'get',
    method: 'GET',
    url: `${baseUrl.replace(/\/+$/, '')}/${META_DATA_PATH}`,
    timeoutMs,
    signal,
  });
  const text = typeof res.data === 'string' ? res.data : JSON.stringify(res.data);
  return parseMetaData(text);
}

/** The instance id cloud-init recorded; it has no AZ. */
export async function readCloudInit(path = CLOUD_INIT_INSTANCE_ID_PATH): Promise<RawMetadata> {
  return { uuid: (await readFile(path, 'utf8')).trim() };
}

/**
 * The instance id from the Node's `spec.providerID` (`openstack:///<uuid>`, or `openstack://<region>/<uuid>`
 * from cloud-controller-manager), and the AZ from its zone label.
 */
export async function readKubernetesNode(
  getNode: NodeGetter,
  nodeName: string,
  signal?: AbortSignal,
): Promise<RawMetadata> {
  const node = await getNode(nodeName, signal);
  const providerId = node.spec?.providerID;
  if (!providerId) throw new Error(`node ${nodeName} has no spec.providerID`);
  const m = /^openstack:\/\/[^/]*\/(.+)$/.exec(providerId);
  if (!m) throw new Error(`node ${nodeName} providerID ${providerId} is not openstack:///<id>`);
  const labels = node.metadata?.labels ?? {};
  const zone = ZONE_LABELS.map((l) => labels[l]).find(Boolean);
  return { uuid: m[1], name: nodeName, availabilityZone: zone };
}

/** A NodeGetter on @kubernetes/client-node 1.x (ESM, loaded on first use): in-cluster or `kubeconfigPath`. */
export function kubernetesNodeGetter(opts: { kubeconfigPath?: string } = {}): NodeGetter {
  return async (name) => {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
    else kc.loadFromDefault();
    return kc.makeApiClient(k8s.CoreV1Api).readNode({ name });
  };
}
