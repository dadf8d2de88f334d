/**
 * The simulator's public surface: startSimulator() builds the state (demo user, project, application
 * credential, trust, local server), the optional device plane and the HTTP server, and returns the
 * Simulator handle tests, the demo, doctor and the benchmarks drive. Types are in types.ts.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../log';
import { DevicePlane } from './device-plane';
import { setQuotas } from './cinder-quotas';
import type { SimEnv } from './env';
import { Counters, FaultTable } from './faults';
import { createSimServer } from './server';
import { addVolumeType } from './cinder-retype';
import { addGroupType, failNextGroupSnapshot } from './cinder-groups';
import {
  hexId,
  randomUUID,
  SimState,
  type BackupRecord,
  type SnapshotRecord,
  type VolumeRecord,
  type VolumeStatus,
} from './state';
import type {
  SimBackup,
  SimSnapshot,
  SimVolume,
  Simulator,
  SimulatorDelays,
  SimulatorOptions,
  StatusChange,
} from './types';

export * from './types';
export { byIdName } from './device-plane';

export const DEFAULT_DELAYS: SimulatorDelays = {
  volumeCreate: 0,
  volumeDelete: 0,
  volumeExtend: 0,
  attach: 0,
  detach: 0,
  volumeRetype: 0,
  deviceLink: 0,
  snapshotCreate: 0,
  snapshotDelete: 0,
  backupCreate: 0,
  backupDelete: 0,
};
export const DEFAULT_TOKEN_LIFETIME_MS = 60 * 60 * 1000;
export const DEFAULT_QUOTA = { volumes: 1000, gigabytes: 10000, snapshots: 1000 };
export const DEFAULT_PASSWORD = 'secret-password';
export const DEFAULT_TRUSTEE_PASSWORD = 'trustee-password';
const DEFAULT_LOCAL_SERVER_NAME = 'sim-node-0';

/** PEM text as given, or the contents of the file it names. */
function pem(textOrPath: string): string {
  return textOrPath.includes('-----BEGIN') ? textOrPath : readFileSync(textOrPath, 'utf8');
}

function validate(opts: SimulatorOptions): void {
  if (opts.delayScale !== undefined && !(opts.delayScale >= 0))
    throw new Error(`delayScale must be >= 0, got ${opts.delayScale}`);
  for (const [k, v] of Object.entries(opts.delays ?? {})) {
    if (!(typeof v === 'number' && v >= 0)) throw new Error(`delays.${k} must be a number >= 0, got ${String(v)}`);
  }
  if (opts.availabilityZones && opts.availabilityZones.length === 0)
    throw new Error('availabilityZones must not be empty');
}

const history = (h: StatusChange[]) => h.map((x) => ({ ...x }));

function simVolume(v: VolumeRecord): SimVolume {
  const out: SimVolume = {
    id: v.id,
    name: v.name ?? '',
    status: v.status,
    size: v.size,
    availability_zone: v.az,
    volume_type: v.volumeType,
    multiattach: v.multiattach,
    attachments: v.attachments.map((a) => ({ server_id: a.serverId, attachment_id: a.id, device: a.device })),
    metadata: { ...v.metadata },
    statusHistory: history(v.statusHistory),
  };
  if (v.devicePath) out.devicePath = v.devicePath;
  return out;
}

function simSnapshot(s: SnapshotRecord): SimSnapshot {
  return {
    id: s.id,
    name: s.name ?? '',
    status: s.status,
    size: s.size,
    volume_id: s.volumeId,
    metadata: { ...s.metadata },
    statusHistory: history(s.statusHistory),
  };
}

function simBackup(b: BackupRecord): SimBackup {
  return {
    id: b.id,
    name: b.name ?? '',
    status: b.status,
    size: b.size,
    volume_id: b.volumeId,
    snapshot_id: b.snapshotId,
    statusHistory: history(b.statusHistory),
  };
}

/** Starts a simulator on 127.0.0.1 (ephemeral port unless given). Throws if the options are invalid or listen fails. */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  validate(opts);
  const log = opts.logger ?? silentLogger;
  const zones = opts.availabilityZones ?? ['nova'];
  const state = new SimState(
    { ...DEFAULT_DELAYS, ...opts.delays },
    opts.delayScale ?? 1,
    opts.tokenLifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS,
    { ...DEFAULT_QUOTA },
    zones,
  );
  setQuotas(state, opts.quota ?? {});
  const demo = { id: hexId(), name: 'demo', password: DEFAULT_PASSWORD, defaultProjectId: state.project.id };
  const trustee = { id: hexId(), name: 'csi-trustee', password: DEFAULT_TRUSTEE_PASSWORD, defaultProjectId: null };
  state.users.set(demo.id, demo);
  state.users.set(trustee.id, trustee);
  state.appCred.userId = demo.id;
  state.trust.trustorId = demo.id;
  state.trust.trusteeId = trustee.id;

  const addServer = (o: { id?: string; name: string; az?: string; maxVolumes?: number }): string => {
    const id = o.id ?? randomUUID();
    if (state.servers.has(id)) throw new Error(`server ${id} already exists`);
    state.servers.set(id, {
      id,
      name: o.name,
      az: o.az ?? zones[0],
      maxVolumes: o.maxVolumes,
      createdAt: Date.now(),
      bdms: [],
    });
    return id;
  };
  const local = opts.localServer ?? {};
  const localServerId = addServer({
    id: local.id,
    name: local.name ?? DEFAULT_LOCAL_SERVER_NAME,
    az: local.az,
    maxVolumes: local.maxVolumes,
  });

  const device = opts.devicePlane ? await DevicePlane.create(opts.devicePlane, log) : null;
  const env: SimEnv = { state, region: opts.region ?? 'RegionOne', baseUrl: '', localServerId, log, device };
  const counters = new Counters();
  const faults = new FaultTable();
  const tls = opts.tls ? { cert: pem(opts.tls.cert), key: pem(opts.tls.key) } : undefined;
  // A certificate given as a file can go into cloud.conf as the CA (the simulator's certificates are self-signed).
  const caFile = opts.tls && !opts.tls.cert.includes('-----BEGIN') ? opts.tls.cert : undefined;
  const server = createSimServer({ env, counters, faults, tls });
  const host = opts.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await device?.stop();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  env.baseUrl = `${tls ? 'https' : 'http'}://${urlHost}:${port}`;
  log.info({ url: env.baseUrl, devicePlane: device !== null }, 'simulator listening');

  let stopped: Promise<void> | undefined;
  const sim: Simulator = {
    url: env.baseUrl,
    keystoneUrl: `${env.baseUrl}/identity/v3`,
    metadataUrl: `${env.baseUrl}/metadata`,
    localServerId,
    credentials: {
      username: demo.name,
      password: demo.password,
      userId: demo.id,
      userDomainName: 'Default',
      projectName: state.project.name,
      projectId: state.project.id,
      projectDomainName: 'Default',
      applicationCredentialId: state.appCred.id,
      applicationCredentialName: state.appCred.name,
      applicationCredentialSecret: state.appCred.secret,
    },
    trust: {
      id: state.trust.id,
      trusteeUserId: trustee.id,
      trusteeUsername: trustee.name,
      trusteePassword: trustee.password,
      trusteeDomainName: 'Default',
    },
    counters: () => counters.snapshot(),
    resetCounters: () => counters.reset(),
    injectFault: (op, fault) => faults.add(op, fault),
    clearFaults: () => faults.clear(),
    failNextVolumeCreate: (name, faultMessage) => void state.failCreates.push({ name, message: faultMessage ?? '' }),
    failNextAttach: (id) => void state.failAttach.add(id),
    failNextExtend: (id) => void state.failExtend.add(id),
    createVolumeType: (name, extraSpecs) => addVolumeType(env, name, extraSpecs),
    failNextDelete: (id) => void state.failDelete.add(id),
    desyncAttachment: (volumeId, serverId, forget) => {
      const v = state.volumes.get(volumeId);
      const s = state.servers.get(serverId);
      const bdm = s?.bdms.find((b) => b.volumeId === volumeId);
      const att = v?.attachments.find((a) => a.serverId === serverId);
      if (!v || !s || !bdm || !att)
        throw new Error(`volume ${volumeId} is not attached to server ${serverId} in both Nova and Cinder`);
      if (forget === 'nova') {
        s.bdms.splice(s.bdms.indexOf(bdm), 1);
        return;
      }
      v.attachments.splice(v.attachments.indexOf(att), 1);
      if (v.attachments.length === 0 && v.status === 'in-use') state.setVolumeStatus(v, 'available');
    },
    addServer,
    addGroupType: (name, specs) => addGroupType(state, name, specs),
    failNextGroupSnapshot: (groupId) => failNextGroupSnapshot(state, groupId),
    deleteServer: (id) => void state.servers.delete(id),
    setServerMaxVolumes: (id, maxVolumes) => {
      const s = state.servers.get(id);
      if (!s) throw new Error(`no server ${id}`);
      s.maxVolumes = maxVolumes;
    },
    setQuota: (q) => setQuotas(state, q),
    revokeAllTokens: () => state.revokeAllTokens(),
    getVolume: (id) => {
      const v = state.volumes.get(id);
      return v && simVolume(v);
    },
    listVolumes: () => [...state.volumes.values()].map(simVolume),
    setVolumeStatus: (id, status) => {
      const v = state.volumes.get(id);
      if (!v) throw new Error(`no volume ${id}`);
      state.setVolumeStatus(v, status as VolumeStatus);
    },
    volumeHistory: (id) => history(state.volumes.get(id)?.statusHistory ?? state.tombstones.get(id) ?? []),
    getSnapshot: (id) => {
      const s = state.snapshots.get(id);
      return s && simSnapshot(s);
    },
    listSnapshots: () => [...state.snapshots.values()].map(simSnapshot),
    getBackup: (id) => {
      const b = state.backups.get(id);
      return b && simBackup(b);
    },
    listBackups: () => [...state.backups.values()].map(simBackup),
    cloudConf: (extra) => cloudConfText(sim, env.region, extra?.cloudName, caFile),
    stop: () => {
      stopped ??= (async () => {
        state.cancelTimers();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await device?.stop();
        log.info({ url: env.baseUrl }, 'simulator stopped');
      })();
      return stopped;
    },
  };
  return sim;
}

/** cloud.conf in the reference driver's keys (the [Global] section; a named one for multi-cloud setups). */
function cloudConfText(sim: Simulator, region: string, cloudName?: string, caFile?: string): string {
  const c = sim.credentials;
  const lines = [
    cloudName ? `[Global "${cloudName}"]` : '[Global]',
    `auth-url=${sim.keystoneUrl}`,
    `username=${c.username}`,
    `password=${c.password}`,
    `user-domain-name=${c.userDomainName}`,
    `tenant-name=${c.projectName}`,
    `tenant-id=${c.projectId}`,
    `tenant-domain-name=${c.projectDomainName}`,
    `region=${region}`,
  ];
  if (caFile) lines.push(`ca-file=${caFile}`);
  return `${lines.join('\n')}\n`;
}
