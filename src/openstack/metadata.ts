/**
 * The node's identity: instance id (a UUID) and availability zone, looked up in the configured search order
 * (metadata-sources.ts does the reading), validated, cached after the first success and shared by concurrent
 * callers. Used by NodeGetInfo; the CSI code never reads metadata itself.
 */
import { type MetadataOptions, type MetadataSource } from '../config/types';
import { CodedError, Status, messageOf } from '../errors';
import { type Logger, silentLogger } from '../log';
import { type Exec, execFile } from '../mount/exec';
import { raceAbort } from './abort';
import { HttpClient } from './http';
import {
  type MetadataDevice,
  METADATA_SERVICE_URL,
  type NodeGetter,
  type RawMetadata,
  readCloudInit,
  readConfigDrive,
  readKubernetesNode,
  readMetadataService,
} from './metadata-sources';

export * from './metadata-sources';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface InstanceMetadata {
  /** Nova instance UUID: the CSI node_id. */
  uuid: string;
  name?: string;
  /** Raw, unsanitized AZ; undefined when the source does not know it (cloudInit, an unlabelled Node). */
  availabilityZone?: string;
  devices: MetadataDevice[];
  /** Which source answered. */
  source: MetadataSource;
}

/** What the node service needs. */
export interface MetadataApi {
  /**
   * The instance's metadata from the first source in the search order that gives a valid UUID. Cached after
   * the first success. Rejects with CodedError UNAVAILABLE listing what each source said, or
   * DEADLINE_EXCEEDED when `signal` fires first (the shared lookup goes on for other callers).
   */
  get(signal?: AbortSignal): Promise<InstanceMetadata>;
}

export interface MetadataDeps {
  options: MetadataOptions;
  logger?: Logger;
  /** Runs blkid/mount/umount; default src/mount/exec.ts. */
  exec?: Exec;
  /** Default: a proxy-less client with no retries (the next source is the retry). */
  http?: HttpClient;
  /** Default METADATA_SERVICE_URL. */
  metadataUrl?: string;
  /** An already-mounted config drive directory (skips device lookup and mount). */
  configDriveDir?: string;
  /** Default /dev/disk/by-label/config-2. */
  configDriveByLabelPath?: string;
  /** Where the config drive is mounted temporarily; default os.tmpdir(). */
  tmpDir?: string;
  /** Default /var/lib/cloud/data/instance-id. */
  cloudInitInstanceIdPath?: string;
  /** Needed for the 'kubernetes' source; without it that source reports "not configured". */
  kubernetes?: { nodeName: string; getNode: NodeGetter };
}

export class MetadataClient implements MetadataApi {
  private readonly deps: MetadataDeps;
  private readonly log: Logger;
  private readonly http: HttpClient;
  private cached?: InstanceMetadata;
  private inflight?: Promise<InstanceMetadata>;

  constructor(deps: MetadataDeps) {
    this.deps = deps;
    this.log = (deps.logger ?? silentLogger).child({ component: 'metadata' });
    this.http =
      deps.http ??
      new HttpClient({
        proxy: false,
        timeoutMs: deps.options.requestTimeoutMs,
        retry: { maxRetries: 0 },
        logger: this.log,
      });
  }

  async get(signal?: AbortSignal): Promise<InstanceMetadata> {
    if (this.cached) return this.cached;
    if (!this.inflight) {
      const p = this.lookup().then((m) => (this.cached = m));
      this.inflight = p;
      const clear = () => {
        if (this.inflight === p) this.inflight = undefined;
      };
      p.then(clear, clear);
    }
    try {
      return await raceAbort(this.inflight, signal);
    } catch (e) {
      if (signal?.aborted) {
        const code = signal.reason instanceof CodedError ? signal.reason.code : Status.DEADLINE_EXCEEDED;
        throw new CodedError(code, 'instance metadata lookup cancelled before it finished');
      }
      throw e;
    }
  }

  private async lookup(): Promise<InstanceMetadata> {
    const said: string[] = [];
    for (const source of this.deps.options.searchOrder) {
      try {
        const raw = await this.read(source);
        if (!raw.uuid) throw new Error('no uuid');
        if (!UUID_RE.test(raw.uuid)) throw new Error(`instance id ${raw.uuid} is not a UUID`);
        const found: InstanceMetadata = {
          uuid: raw.uuid.toLowerCase(),
          name: raw.name,
          availabilityZone: raw.availabilityZone || undefined,
          devices: raw.devices ?? [],
          source,
        };
        this.log.info(
          { source, instanceId: found.uuid, availabilityZone: found.availabilityZone },
          'instance metadata found',
        );
        return found;
      } catch (e) {
        this.log.debug({ source, reason: messageOf(e) }, 'instance metadata source failed');
        said.push(`${source}: ${messageOf(e)}`);
      }
    }
    throw new CodedError(
      Status.UNAVAILABLE,
      `instance metadata unavailable (${said.join('; ') || 'search order is empty'})`,
    );
  }

  private read(source: MetadataSource): Promise<RawMetadata> {
    const d = this.deps;
    switch (source) {
      case 'configDrive':
        return readConfigDrive({
          exec: d.exec ?? execFile,
          log: this.log,
          mountedDir: d.configDriveDir,
          byLabelPath: d.configDriveByLabelPath,
          tmpDir: d.tmpDir,
        });
      case 'metadataService':
        return readMetadataService(this.http, d.metadataUrl ?? METADATA_SERVICE_URL, d.options.requestTimeoutMs);
      case 'cloudInit':
        return readCloudInit(d.cloudInitInstanceIdPath);
      case 'kubernetes':
        if (!d.kubernetes) return Promise.reject(new Error('not configured (no node name)'));
        return readKubernetesNode(d.kubernetes.getNode, d.kubernetes.nodeName);
    }
  }
}
