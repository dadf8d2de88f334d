/**
 * The simulator's in-memory world: identities and tokens, volumes, snapshots, backups, servers and their
 * block-device mappings, plus the timer registry every delayed status transition goes through. It knows
 * no HTTP; the service modules read and change it, and stop() cancels whatever is still scheduled.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { StatusChange, SimulatorDelays } from './types';

export type VolumeStatus =
  | 'creating'
  | 'available'
  | 'reserved'
  | 'attaching'
  | 'in-use'
  | 'detaching'
  | 'extending'
  | 'deleting'
  | 'backing-up'
  | 'retyping'
  | 'error'
  | 'error_extending'
  | 'error_deleting'
  /** only in a tombstone's history: the moment the volume disappeared */
  | 'deleted';

export interface VolumeAttachment {
  /** Cinder attachment id */
  id: string;
  serverId: string;
  device: string;
  hostName: string | null;
  attachedAt: number;
}

export interface VolumeRecord {
  id: string;
  seq: number;
  name: string | null;
  description: string | null;
  status: VolumeStatus;
  size: number;
  az: string;
  volumeType: string;
  multiattach: boolean;
  bootable: boolean;
  /** Attachments Cinder reports (attach_status 'attached' only, as the volume view does). */
  attachments: VolumeAttachment[];
  metadata: Record<string, string>;
  snapshotId: string | null;
  sourceVolid: string | null;
  backupId: string | null;
  createdAt: number;
  updatedAt: number;
  statusHistory: StatusChange[];
  devicePath?: string;
  /** The backend a retype migrated it to (cinder-retype.ts); absent: its type's backend. */
  backend?: string;
  /** The generic group it is in (cinder-groups.ts). */
  groupId?: string;
}

export interface SnapshotRecord {
  id: string;
  seq: number;
  name: string | null;
  description: string | null;
  status: 'creating' | 'available' | 'deleting' | 'error' | 'error_deleting' | 'backing-up';
  size: number;
  volumeId: string;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  statusHistory: StatusChange[];
  /** Set on a member of a group snapshot: Cinder then refuses to delete it on its own. */
  groupSnapshotId?: string;
}

export interface BackupRecord {
  id: string;
  seq: number;
  name: string | null;
  description: string | null;
  status: 'creating' | 'available' | 'deleting' | 'error' | 'restoring';
  size: number;
  volumeId: string;
  snapshotId: string | null;
  az: string;
  container: string | null;
  incremental: boolean;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  statusHistory: StatusChange[];
}

/** Nova's view of an attached volume (a block-device mapping). */
export interface Bdm {
  volumeId: string;
  device: string;
  attachmentId: string;
  /** Nova's own BDM id (2.89 `bdm_uuid`), distinct from the Cinder attachment id. */
  bdmUuid: string;
  tag: string | null;
  deleteOnTermination: boolean;
}

export interface ServerRecord {
  id: string;
  name: string;
  az: string;
  maxVolumes?: number;
  createdAt: number;
  bdms: Bdm[];
}

export interface UserRecord {
  id: string;
  name: string;
  password: string;
  defaultProjectId: string | null;
}

export interface TokenRecord {
  id: string;
  userId: string;
  /** null for an unscoped token */
  projectId: string | null;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
  auditId: string;
  appCredId?: string;
  trustId?: string;
  revoked: boolean;
}

/** A user-visible Cinder message (GET /messages), how real Cinder explains an `error` volume. */
export interface MessageRecord {
  id: string;
  resourceUuid: string;
  eventId: string;
  userMessage: string;
  createdAt: number;
}

export interface GroupType {
  id: string;
  name: string;
  description: string | null;
  groupSpecs: Record<string, string>;
}

export interface GroupRecord {
  id: string;
  seq: number;
  name: string | null;
  description: string | null;
  status: 'creating' | 'available' | 'updating' | 'deleting' | 'error';
  groupTypeId: string;
  volumeTypeIds: string[];
  az: string;
  createdAt: number;
}

export interface GroupSnapshotRecord {
  id: string;
  seq: number;
  name: string | null;
  description: string | null;
  status: 'creating' | 'available' | 'deleting' | 'error';
  groupId: string;
  groupTypeId: string;
  createdAt: number;
}

export const DOMAIN = { id: 'default', name: 'Default' } as const;

export interface VolumeType {
  id: string;
  name: string;
  description: string;
  extraSpecs: Record<string, string>;
}

/** A Keystone-style id: 32 hex characters. */
export function hexId(): string {
  return randomBytes(16).toString('hex');
}

export { randomUUID };

export class SimState {
  readonly users = new Map<string, UserRecord>();
  readonly project = { id: hexId(), name: 'demo' };
  readonly appCred = { id: hexId(), name: 'csi', secret: randomBytes(24).toString('base64url'), userId: '' };
  readonly trust = { id: hexId(), trustorId: '', trusteeId: '', impersonation: false };
  readonly tokens = new Map<string, TokenRecord>();
  readonly volumes = new Map<string, VolumeRecord>();
  readonly snapshots = new Map<string, SnapshotRecord>();
  readonly backups = new Map<string, BackupRecord>();
  readonly servers = new Map<string, ServerRecord>();
  readonly messages: MessageRecord[] = [];
  /** Generic volume groups, their snapshots and the group types (cinder-groups.ts). */
  readonly groups = new Map<string, GroupRecord>();
  readonly groupSnapshots = new Map<string, GroupSnapshotRecord>();
  readonly groupTypes: GroupType[] = [
    // Cinder's own, reserved for consistency groups migrated to groups: refused by the group APIs.
    {
      id: randomUUID(),
      name: 'default_cgsnapshot_type',
      description: 'Default group type for migrating cgsnapshot',
      groupSpecs: {},
    },
  ];
  /** Status histories of deleted volumes, ending in 'deleted', for benchmarks that time a delete. */
  readonly tombstones = new Map<string, StatusChange[]>();
  /** `__DEFAULT__`, and a type whose volumes are multiattach (extra spec `multiattach=<is> True`). */
  readonly volumeTypes: VolumeType[] = [
    { id: randomUUID(), name: '__DEFAULT__', description: 'Default Volume Type', extraSpecs: {} },
    {
      id: randomUUID(),
      name: 'multiattach',
      description: 'Multiattach-capable volumes',
      extraSpecs: { multiattach: '<is> True' },
    },
  ];
  /** Volume misbehaviour armed by the test API; each entry is consumed once. */
  readonly failCreates: Array<{ name?: string; message: string }> = [];
  readonly failAttach = new Set<string>();
  readonly failExtend = new Set<string>();
  readonly failDelete = new Set<string>();
  private seq = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly delays: SimulatorDelays,
    readonly delayScale: number,
    readonly tokenLifetimeMs: number,
    readonly quota: { volumes: number; gigabytes: number; snapshots: number },
    readonly availabilityZones: string[],
  ) {}

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  /** Runs `fn` after `delay` (scaled) on a tracked timer, so stop() can cancel it; errors are logged by the caller. */
  after(delay: keyof SimulatorDelays | number, fn: () => void): void {
    const base = typeof delay === 'number' ? delay : this.delays[delay];
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, base * this.delayScale),
    );
    this.timers.add(t);
  }

  /** Resolves after `ms` (unscaled) on a tracked timer; never resolves if stop() cancels it first. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  setVolumeStatus(v: VolumeRecord, status: VolumeStatus): void {
    const at = Date.now();
    v.status = status;
    v.updatedAt = at;
    v.statusHistory.push({ status, at });
  }

  setSnapshotStatus(s: SnapshotRecord, status: SnapshotRecord['status']): void {
    const at = Date.now();
    s.status = status;
    s.updatedAt = at;
    s.statusHistory.push({ status, at });
  }

  setBackupStatus(b: BackupRecord, status: BackupRecord['status']): void {
    const at = Date.now();
    b.status = status;
    b.updatedAt = at;
    b.statusHistory.push({ status, at });
  }

  /** Gigabytes counted against quota: volumes and snapshots, as Cinder's default `gigabytes` quota does. */
  usedGigabytes(): number {
    let gb = 0;
    for (const v of this.volumes.values()) gb += v.size;
    for (const s of this.snapshots.values()) gb += s.size;
    return gb;
  }

  /** A fresh token for a user; its expiry is capped by `notAfter` (a re-scoped token keeps the original's). */
  issueToken(
    userId: string,
    projectId: string | null,
    methods: string[],
    extra: Partial<TokenRecord> = {},
  ): TokenRecord {
    const now = Date.now();
    const token: TokenRecord = {
      id: `gAAAAAB${randomBytes(90).toString('base64url')}`,
      userId,
      projectId,
      methods,
      issuedAt: now,
      expiresAt: now + this.tokenLifetimeMs,
      auditId: randomBytes(16).toString('base64url').slice(0, 22),
      revoked: false,
      ...extra,
    };
    this.tokens.set(token.id, token);
    return token;
  }

  /** The live token with this id, or undefined when unknown, revoked or expired. */
  liveToken(id: string | undefined): TokenRecord | undefined {
    if (!id) return undefined;
    const t = this.tokens.get(id);
    if (!t || t.revoked || t.expiresAt <= Date.now()) return undefined;
    return t;
  }

  revokeAllTokens(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  /** Ends every token's lifetime now (not revoked: expired, which Keystone reports the same way). */
  expireAllTokens(): void {
    const now = Date.now();
    for (const t of this.tokens.values()) t.expiresAt = Math.min(t.expiresAt, now);
  }
}

/** Cinder's timestamp format: ISO without zone, microseconds. */
export function cinderTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000');
}

/** Keystone's format: microseconds and a Z. */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000Z');
}

/** Nova's format: seconds and a Z. */
export function isoZ(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
