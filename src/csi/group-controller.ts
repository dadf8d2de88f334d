/**
 * The CSI GroupController service: volume group snapshots over Cinder generic groups and group snapshots
 * (src/block/block-group-snapshots.ts). A request picks its cloud with the `cloud` secret, as the Controller
 * calls do; the VolumeGroupSnapshotClass parameter `groupType` names the Cinder group type.
 */
import type { Logger } from '../log';
import type { CloudClients } from '../openstack/clients';
import { CinderGroupsClient, type CinderGroupsApi } from '../openstack/cinder-groups';
import {
  createGroupSnapshot,
  deleteGroupSnapshot,
  getGroupSnapshot,
  type GroupSnapshotContext,
  type GroupSnapshotInfo,
} from '../block/block-group-snapshots';
import type { PollOptions } from '../block/volume-wait';
import { invalidArgument } from './errors';
import type { CallContext, ServiceHandlers } from './server';
import { requireString } from './validate';
import { CLOUD_SECRET_KEY } from './controller-routing';

/** The VolumeGroupSnapshotClass parameter naming the Cinder group type (name or id). */
export const GROUP_TYPE_PARAMETER = 'groupType';
/** Keys the snapshotter adds with --extra-create-metadata; accepted and ignored. */
const SIDECAR_PREFIX = 'csi.storage.k8s.io/';

export const GROUP_CONTROLLER_CAPABILITIES = ['CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT'] as const;

export interface GroupControllerDeps {
  /** Keyed by cloud.conf section name ('' for `[Global]`); a client made from `keystone` and `http` unless `groups` is given. */
  clouds: ReadonlyMap<string, Pick<CloudClients, 'name' | 'keystone' | 'http'> & { groups?: CinderGroupsApi }>;
  log: Logger;
  waitOptions?: PollOptions;
}

interface Timestamp {
  seconds: string | number;
  nanos: number;
}

interface CsiSnapshot {
  snapshot_id: string;
  source_volume_id: string;
  size_bytes: string;
  creation_time: Timestamp;
  ready_to_use: boolean;
  group_snapshot_id: string;
}

interface CsiVolumeGroupSnapshot {
  group_snapshot_id: string;
  snapshots: CsiSnapshot[];
  creation_time: Timestamp;
  ready_to_use: boolean;
}

interface CreateRequest {
  name: string;
  source_volume_ids?: string[];
  secrets?: Record<string, string>;
  parameters?: Record<string, string>;
}

interface ByIdRequest {
  group_snapshot_id: string;
  snapshot_ids?: string[];
  secrets?: Record<string, string>;
}

const GIB = 1024n ** 3n;

export function groupControllerHandlers(deps: GroupControllerDeps): ServiceHandlers {
  const contexts = new Map<string, GroupSnapshotContext>();
  for (const [name, clients] of deps.clouds) {
    contexts.set(name, {
      cinder: clients.groups ?? new CinderGroupsClient({ keystone: clients.keystone, http: clients.http }),
      log: deps.log.child({ backend: 'cinder-groups', cloud: name }),
      wait: deps.waitOptions ?? {},
    });
  }
  /** As the Controller's routing: the `cloud` secret, else `[Global]`, else the only cloud configured. */
  const forSecrets = (secrets: Readonly<Record<string, string>> | undefined): GroupSnapshotContext => {
    const name = secrets?.[CLOUD_SECRET_KEY] ?? '';
    const c = contexts.get(name) ?? (name === '' && contexts.size === 1 ? [...contexts.values()][0] : undefined);
    if (!c) {
      const known = [...contexts.keys()].map((k) => `"${k}"`).join(', ');
      throw invalidArgument(
        `secrets.${CLOUD_SECRET_KEY}`,
        `names a cloud that is not configured (known: ${known || 'none'})`,
      );
    }
    return c;
  };

  return {
    async GroupControllerGetCapabilities() {
      return { capabilities: GROUP_CONTROLLER_CAPABILITIES.map((type) => ({ rpc: { type } })) };
    },

    async CreateVolumeGroupSnapshot(
      req: CreateRequest,
      ctx: CallContext,
    ): Promise<{ group_snapshot: CsiVolumeGroupSnapshot }> {
      const name = requireString(req.name, 'name');
      const volumeIds = req.source_volume_ids ?? [];
      if (volumeIds.length === 0) throw invalidArgument('source_volume_ids', 'is required');
      volumeIds.forEach((id, i) => requireString(id, `source_volume_ids[${i}]`));
      if (new Set(volumeIds).size !== volumeIds.length)
        throw invalidArgument('source_volume_ids', 'names a volume twice');
      const groupType = parseGroupParameters(req.parameters ?? {});
      const c = forSecrets(req.secrets);
      const info = await createGroupSnapshot(c, { name, volumeIds, groupType }, ctx.signal);
      return { group_snapshot: groupSnapshotOut(info) };
    },

    async DeleteVolumeGroupSnapshot(req: ByIdRequest, ctx: CallContext): Promise<object> {
      const id = requireString(req.group_snapshot_id, 'group_snapshot_id');
      await deleteGroupSnapshot(forSecrets(req.secrets), id, req.snapshot_ids ?? [], ctx.signal);
      return {};
    },

    async GetVolumeGroupSnapshot(
      req: ByIdRequest,
      ctx: CallContext,
    ): Promise<{ group_snapshot: CsiVolumeGroupSnapshot }> {
      const id = requireString(req.group_snapshot_id, 'group_snapshot_id');
      const info = await getGroupSnapshot(forSecrets(req.secrets), id, req.snapshot_ids ?? [], ctx.signal);
      return { group_snapshot: groupSnapshotOut(info) };
    },
  };
}

/** The Cinder group type of a VolumeGroupSnapshotClass; undefined means the cloud's default group type. */
export function parseGroupParameters(params: Readonly<Record<string, string>>): string | undefined {
  for (const key of Object.keys(params)) {
    if (key !== GROUP_TYPE_PARAMETER && !key.startsWith(SIDECAR_PREFIX)) {
      throw invalidArgument(
        `parameters.${key}`,
        `is not a known parameter (known: ${GROUP_TYPE_PARAMETER}, ${SIDECAR_PREFIX}*)`,
      );
    }
  }
  return params[GROUP_TYPE_PARAMETER] || undefined;
}

function groupSnapshotOut(g: GroupSnapshotInfo): CsiVolumeGroupSnapshot {
  return {
    group_snapshot_id: g.id,
    snapshots: g.members.map((m) => ({
      snapshot_id: m.id,
      source_volume_id: m.sourceVolumeId,
      size_bytes: (BigInt(m.sizeGiB) * GIB).toString(),
      creation_time: timestamp(m.createdAt),
      ready_to_use: m.readyToUse,
      // CSI: a member that cannot be deleted on its own (Cinder refuses) names its group snapshot.
      group_snapshot_id: g.id,
    })),
    creation_time: timestamp(g.createdAt),
    ready_to_use: g.readyToUse,
  };
}

function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}
