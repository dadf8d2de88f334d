/**
 * What the Controller handlers depend on and how a request finds its backend: one ControllerBackend per
 * configured cloud, chosen by the `cloud` secret key as in the reference driver. The object-storage backend
 * will be routed here too; handlers only ever see the ControllerBackend interface.
 */
import type { BlockStorageOptions } from '../config/types';
import type { Logger } from '../log';
import type { CloudClients } from '../openstack/clients';
import { CinderBlockBackend } from '../block/block-backend';
import type { ControllerBackend } from '../block/block-types';
import type { PollOptions } from '../block/volume-wait';
import { invalidArgument } from './errors';

/** Topology segment key of a Cinder availability zone (reference-compatible). */
export const TOPOLOGY_ZONE_KEY = 'topology.cinder.csi.openstack.org/zone';
/** The secret key that names the cloud.conf `[Global "name"]` section a request is for. */
export const CLOUD_SECRET_KEY = 'cloud';

export interface ControllerDeps {
  /** Keyed by cloud.conf section name ('' for `[Global]`). */
  clouds: ReadonlyMap<string, Pick<CloudClients, 'name' | 'cinder' | 'nova'>>;
  blockStorage: BlockStorageOptions;
  /** `--cluster`: written to volume metadata `cinder.csi.openstack.org/cluster`. */
  cluster: string;
  /** `--with-topology`: take the AZ from accessibility_requirements and report accessible_topology. */
  withTopology: boolean;
  /** `--pvc-annotations`: honour affinity / anti-affinity scheduler hints. */
  pvcAnnotations: boolean;
  log: Logger;
  /** Poll tunables of status waits (tests shorten them); defaults in src/block/volume-wait.ts. */
  waitOptions?: PollOptions;
}

/** Backends by cloud name, and the choice of one per request. */
export class ControllerRouting {
  private readonly backends = new Map<string, ControllerBackend>();

  constructor(deps: ControllerDeps) {
    for (const [name, clients] of [...deps.clouds.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      this.backends.set(name, new CinderBlockBackend({ clients, log: deps.log, wait: deps.waitOptions }));
    }
  }

  /**
   * The backend for a request's secrets. Without a `cloud` secret: the `[Global]` cloud, or the only cloud
   * when just one is configured. INVALID_ARGUMENT naming `secrets.cloud` for a cloud not configured.
   */
  forSecrets(secrets: Readonly<Record<string, string>> | undefined): ControllerBackend {
    const name = secrets?.[CLOUD_SECRET_KEY] ?? '';
    const backend = this.backends.get(name) ?? (name === '' && this.backends.size === 1 ? [...this.backends.values()][0] : undefined);
    if (!backend) {
      const known = [...this.backends.keys()].map((k) => `"${k}"`).join(', ');
      throw invalidArgument(`secrets.${CLOUD_SECRET_KEY}`, `names cloud "${name}", which is not configured (known: ${known || 'none'})`);
    }
    return backend;
  }

  /** Every backend with its cloud name, sorted by name (the ListVolumes token order). */
  all(): Array<[string, ControllerBackend]> {
    return [...this.backends.entries()];
  }

  get(cloud: string): ControllerBackend | undefined {
    return this.backends.get(cloud);
  }
}
