/**
 * Typed, validated configuration. Flags and cloud.conf are parsed once at start-up (src/config/*.ts) into
 * these frozen objects; every other module receives only the slice it needs and never reads files or env.
 */

/** Credentials and endpoint selection of one `[Global]` / `[Global "name"]` section of cloud.conf. */
export interface CloudAuth {
  /** Section name: '' for `[Global]`, otherwise the quoted name. Selected by the `cloud` CSI secret key. */
  readonly name: string;
  readonly authUrl: string;
  readonly region?: string;
  /** Catalog interface: public (default), internal or admin. */
  readonly endpointType: 'public' | 'internal' | 'admin';
  readonly username?: string;
  readonly userId?: string;
  readonly password?: string;
  readonly userDomainId?: string;
  readonly userDomainName?: string;
  readonly projectId?: string;
  readonly projectName?: string;
  readonly projectDomainId?: string;
  readonly projectDomainName?: string;
  readonly trustId?: string;
  readonly trusteeId?: string;
  readonly trusteePassword?: string;
  readonly applicationCredentialId?: string;
  readonly applicationCredentialName?: string;
  readonly applicationCredentialSecret?: string;
  readonly token?: string;
  readonly caFile?: string;
  readonly tlsInsecure: boolean;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** `[BlockStorage]`. */
export interface BlockStorageOptions {
  /** max_volumes_per_node reported by NodeGetInfo; undefined means the default (256). */
  readonly nodeVolumeAttachLimit?: number;
  readonly rescanOnResize: boolean;
  readonly ignoreVolumeAz: boolean;
  readonly ignoreVolumeMicroversion: boolean;
}

/** Where the node looks for its instance id and AZ, in order. */
export type MetadataSource = 'configDrive' | 'metadataService' | 'cloudInit' | 'kubernetes';

/** `[Metadata]`. */
export interface MetadataOptions {
  readonly searchOrder: readonly MetadataSource[];
  /** Timeout of one metadata-service request, in milliseconds. */
  readonly requestTimeoutMs: number;
}

export interface CloudConfig {
  /** Keyed by section name ('' for `[Global]`). */
  readonly clouds: ReadonlyMap<string, CloudAuth>;
  readonly blockStorage: BlockStorageOptions;
  readonly metadata: MetadataOptions;
  /** Non-fatal findings (unknown keys), each naming file, section and key. */
  readonly warnings: readonly string[];
}
