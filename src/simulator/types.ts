/**
 * The simulator's public contract: options, fault specs, the volume view handed to assertions and the
 * Simulator handle. Everyone who tests against the simulator codes against these types (re-exported by
 * index.ts); the implementation lives in the other modules of this folder.
 */
import type { Logger } from '../log';

/** Milliseconds of each status transition, before delayScale. All default to 0. */
export interface SimulatorDelays {
  /** creating -> available */
  volumeCreate: number;
  /** deleting -> gone */
  volumeDelete: number;
  /** extending -> available / in-use */
  volumeExtend: number;
  /** reserved -> attaching -> in-use (the whole attach; attaching starts half-way) */
  attach: number;
  /** detaching -> available */
  detach: number;
  /** retyping -> available / in-use (with the new type, or the old one when the retype cannot be done) */
  volumeRetype: number;
  /** by-id link appears this long after the attach completes (device plane) */
  deviceLink: number;
  snapshotCreate: number;
  snapshotDelete: number;
  backupCreate: number;
  backupDelete: number;
}

export type LinkStyle = 'virtio' | 'virtio-full' | 'scsi' | 'scsi-full' | 'wwn';

export interface DevicePlaneOptions {
  /** Where the hypervisor-style links go (the node plugin's /dev/disk/by-id stand-in). */
  byIdDir: string;
  /** Where sparse backing files live (one per volume and snapshot). */
  stateDir: string;
  linkStyle?: LinkStyle;
}

/** Cinder quotas of the simulated project; -1 is unlimited, as in Cinder. */
export interface SimulatorQuota {
  volumes?: number;
  gigabytes?: number;
  snapshots?: number;
  /** `per_volume_gigabytes`: the largest volume. */
  perVolumeGigabytes?: number;
  /** `gigabytes_<type name>`, by type name. */
  typeGigabytes?: Record<string, number>;
}

export interface SimulatorOptions {
  /** default '127.0.0.1' */
  host?: string;
  /** default 0 (ephemeral) */
  port?: number;
  delays?: Partial<SimulatorDelays>;
  /** multiplies every delay; default 1 */
  delayScale?: number;
  /** Keystone token lifetime; default 1 hour */
  tokenLifetimeMs?: number;
  /** default 'RegionOne' */
  region?: string;
  /** Cinder/Nova AZs; default ['nova'] (the first is the default AZ) */
  availabilityZones?: string[];
  /** defaults 1000 volumes / 10000 gigabytes / 1000 snapshots; the rest unlimited */
  quota?: SimulatorQuota;
  /** the Nova server standing for this machine */
  localServer?: { id?: string; name?: string; az?: string; maxVolumes?: number };
  /** Backs volumes with loop devices when root with /dev/loop-control; ignored (with a warning) otherwise. */
  devicePlane?: false | DevicePlaneOptions;
  /** Serve HTTPS instead of HTTP. Each is PEM text, or a path to a PEM file. */
  tls?: { cert: string; key: string };
  logger?: Logger;
}

/**
 * `reset` drops the connection before the service acts; `drop-response` lets the service act and then drops
 * the connection before the answer (a proxy timing out after the backend did the work); `expire-tokens` ends
 * every token's lifetime now, as a Keystone whose clock or token lifetime disagrees with the client's would.
 */
export type FaultKind =
  'http-status' | 'retry-after' | 'reset' | 'drop-response' | 'delay' | 'revoke-tokens' | 'expire-tokens';

export interface FaultSpec {
  kind: FaultKind;
  /** for http-status (e.g. 500, 502, 503, 401) */
  status?: number;
  /** for retry-after (answers 429 with Retry-After) */
  retryAfterSeconds?: number;
  /** for delay (slow response) */
  delayMs?: number;
  /** how many matching requests it affects; default 1; Infinity for all */
  times?: number;
}

export interface StatusChange {
  status: string;
  /** Date.now() milliseconds of the transition */
  at: number;
}

export interface SimVolume {
  id: string;
  name: string;
  status: string;
  size: number;
  availability_zone: string;
  volume_type: string;
  multiattach: boolean;
  attachments: Array<{ server_id: string; attachment_id: string; device: string }>;
  metadata: Record<string, string>;
  statusHistory: StatusChange[];
  /** /dev/loopN when the device plane attached it */
  devicePath?: string;
}

export interface SimSnapshot {
  id: string;
  name: string;
  status: string;
  size: number;
  volume_id: string;
  metadata: Record<string, string>;
  statusHistory: StatusChange[];
}

export interface SimBackup {
  id: string;
  name: string;
  status: string;
  size: number;
  volume_id: string;
  snapshot_id: string | null;
  statusHistory: StatusChange[];
}

export interface SimCredentials {
  username: string;
  password: string;
  userId: string;
  userDomainName: string;
  projectName: string;
  projectId: string;
  projectDomainName: string;
  applicationCredentialId: string;
  applicationCredentialName: string;
  applicationCredentialSecret: string;
}

/** A Keystone trust from the demo user (trustor) to a second user (trustee), scoped to the demo project. */
export interface SimTrust {
  id: string;
  trusteeUserId: string;
  trusteeUsername: string;
  trusteePassword: string;
  trusteeDomainName: string;
}

export interface Simulator {
  /** http(s)://127.0.0.1:PORT */
  readonly url: string;
  /** `${url}/identity/v3` (the auth-url for cloud.conf) */
  readonly keystoneUrl: string;
  /** `${url}/metadata`; GET `${metadataUrl}/openstack/latest/meta_data.json` */
  readonly metadataUrl: string;
  readonly localServerId: string;
  readonly credentials: SimCredentials;
  /** Extra: the trust usable with the OS-TRUST:trust scope. */
  readonly trust: SimTrust;
  /** Requests seen per operation name, plus `interface.public|internal|admin` for Cinder/Nova requests. */
  counters(): Record<string, number>;
  resetCounters(): void;
  /** Faults apply to the next `times` requests whose operation name matches `op` (exact, or prefix ending in '*'). */
  injectFault(op: string, fault: FaultSpec): void;
  clearFaults(): void;
  /** The next create of a volume named `name` (or any, if undefined) ends in `error`. */
  failNextVolumeCreate(name?: string, faultMessage?: string): void;
  /** The next attach of this volume falls back to `available` instead of reaching `in-use`. */
  failNextAttach(volumeId: string): void;
  /** Extra: the next extend of this volume ends in `error_extending`. */
  failNextExtend(volumeId: string): void;
  /**
   * Extra: a volume type, as an admin's POST /types makes one on a real cloud (the simulator's users are project
   * members, refused with 403 as there). `volume_backend_name` places it on a backend: `fake` or `fake-2`
   * (any other name has none). Returns its id; throws when the name exists.
   */
  createVolumeType(name: string, extraSpecs?: Record<string, string>): string;
  /** Extra: the next delete of this volume ends in `error_deleting`. */
  failNextDelete(volumeId: string): void;
  /**
   * Extra: Nova and Cinder fall out of step about an attachment of `volumeId` to `serverId`. `'nova'` drops
   * Nova's block-device mapping and leaves Cinder's attachment (in-use), as after a Nova cleanup that never
   * told Cinder; `'cinder'` drops Cinder's attachment (the volume goes `available` when it was the last) and
   * leaves Nova's mapping, as after an os-reset_status. Throws when there is no such attachment.
   */
  desyncAttachment(volumeId: string, serverId: string, forget: 'nova' | 'cinder'): void;
  addServer(opts: { id?: string; name: string; az?: string; maxVolumes?: number }): string;
  /** Extra: a Cinder group type, as the cloud admin would make one (the simulator's user may not); returns its id. */
  addGroupType(name: string, groupSpecs?: Record<string, string>): string;
  /** Extra: the next group snapshot (of this group, or of any) ends in `error`, its member snapshots too. */
  failNextGroupSnapshot(groupId?: string): void;
  /** As if Nova deleted it (attachments left dangling in Cinder). */
  deleteServer(id: string): void;
  /** Extra: change a server's attach limit (undefined = unlimited). */
  setServerMaxVolumes(id: string, maxVolumes: number | undefined): void;
  /** Sets Cinder quotas as an admin's PUT /os-quota-sets would; keys not given keep their limits. */
  setQuota(q: SimulatorQuota): void;
  revokeAllTokens(): void;
  /** Direct state access for assertions (a copy). */
  getVolume(id: string): SimVolume | undefined;
  listVolumes(): SimVolume[];
  /** Extra: force a volume's status, like Cinder's admin os-reset_status. */
  setVolumeStatus(id: string, status: string): void;
  /** Extra: a volume's status history, also after it was deleted (then ending in 'deleted'); [] if unknown. */
  volumeHistory(id: string): StatusChange[];
  getSnapshot(id: string): SimSnapshot | undefined;
  listSnapshots(): SimSnapshot[];
  getBackup(id: string): SimBackup | undefined;
  listBackups(): SimBackup[];
  /** Text of a cloud.conf [Global] (or [Global "name"]) pointing at this simulator. */
  cloudConf(extra?: { cloudName?: string }): string;
  /** Closes the server, cancels pending transitions, detaches loop devices, removes links and backing files. */
  stop(): Promise<void>;
}
