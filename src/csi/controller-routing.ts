/**
 * What the Controller handlers depend on and how a request finds its backend: one ControllerBackend per
 * configured cloud, chosen by the `cloud` secret key as in the reference driver, and the object-storage
 * backend for `backend: object` and `obj1:` ids. Handlers only ever see the ControllerBackend interface.
 */
import type { BlockStorageOptions } from '../config/types';
import type { Logger } from '../log';
import type { CloudClients } from '../openstack/clients';
import { CinderBlockBackend } from '../block/block-backend';
import type { ControllerBackend } from '../block/block-types';
import type { PollOptions } from '../block/volume-wait';
import { invalidArgument } from './errors';
import { ObjectControllerBackend } from '../object/object-backend';
import { objectStoreFor, type ObjectControllerOptions } from '../object/object-stores';
import type { ObjectParams } from '../object/object-params';
import type { PvcAnnotationGetter } from '../kube/pvc-annotations';
import { parseObjectVolumeId } from '../object/volume-id';

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
  /**
   * `--pvc-annotations`: honour affinity / anti-affinity scheduler hints. A getter (main.ts:
   * `kubePvcAnnotations()`) also reads them from the PVC's annotations in the Kubernetes API when the
   * provisioner passes the PVC's name and namespace (`--extra-create-metadata`); `true` honours only the
   * StorageClass parameters (kept for callers that predate the getter). Absent or false: off.
   */
  pvcAnnotations?: boolean | PvcAnnotationGetter;
  log: Logger;
  /** Poll tunables of status waits (tests shorten them); defaults in src/block/volume-wait.ts. */
  waitOptions?: PollOptions;
  /** Object volumes (`backend: object`): S3 defaults and Swift access per cloud. Absent: s3 needs secrets only; swift refused. */
  object?: ObjectControllerOptions;
}

/** Backends by cloud name, and the choice of one per request. */
export class ControllerRouting {
  private readonly backends = new Map<string, ControllerBackend>();
  private readonly object: ObjectControllerOptions;
  private readonly log: Logger;

  constructor(deps: ControllerDeps) {
    this.object = deps.object ?? {};
    this.log = deps.log;
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
    const backend =
      this.backends.get(name) ?? (name === '' && this.backends.size === 1 ? [...this.backends.values()][0] : undefined);
    if (!backend) {
      const known = [...this.backends.keys()].map((k) => `"${k}"`).join(', ');
      // The value is not quoted back: everything in a CSI secret map stays out of answers and logs.
      throw invalidArgument(
        `secrets.${CLOUD_SECRET_KEY}`,
        `names a cloud that is not configured (known: ${known || 'none'})`,
      );
    }
    return backend;
  }

  /**
   * The backend of an existing volume: the object backend for `obj1:` ids (its store reached with the
   * request's secrets when a call first needs it; Publish never does), else the Cinder backend of the `cloud` secret. Errors as forSecrets / objectStoreFor.
   */
  forVolume(volumeId: string, secrets: Readonly<Record<string, string>> | undefined): ControllerBackend {
    const ref = parseObjectVolumeId(volumeId);
    if (!ref) return this.forSecrets(secrets);
    const openStore = () => objectStoreFor({ provider: ref.provider }, secrets, this.object).store;
    return new ObjectControllerBackend({ openStore, provider: ref.provider, log: this.log });
  }

  /** The object backend for CreateVolume with `backend: object` parameters. */
  forObjectCreate(
    params: Readonly<ObjectParams>,
    secrets: Readonly<Record<string, string>> | undefined,
  ): ControllerBackend {
    const target = {
      provider: params.provider,
      endpoint: params.endpoint,
      region: params.region,
      pathStyle: params.pathStyle,
    };
    const { store, endpoint } = objectStoreFor(target, secrets, this.object);
    return new ObjectControllerBackend({
      openStore: () => store,
      provider: params.provider,
      params,
      endpoint,
      log: this.log,
    });
  }

  /** Every backend with its cloud name, sorted by name (the ListVolumes token order). */
  all(): Array<[string, ControllerBackend]> {
    return [...this.backends.entries()];
  }

  get(cloud: string): ControllerBackend | undefined {
    return this.backends.get(cloud);
  }
}
