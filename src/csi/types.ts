/**
 * TypeScript shapes of the CSI v1 messages of the Identity, Controller and Node services, as
 * src/csi/proto.ts decodes and encodes them. The wire definitions themselves live in proto/csi.proto.
 *
 * Requests are typed as the loader yields them: snake_case fields, int64 as decimal strings, enums as
 * names, scalars/maps/lists always present (defaults filled in), unset messages `null`, and each set
 * oneof named by a virtual field (`access_type: 'mount'`). Responses are what a handler may return:
 * every field optional, int64 as number or string, and a oneof is chosen by setting one member.
 */

/** int64 as the loader decodes it: a decimal string, so sizes above 2^53 survive. */
export type Int64String = string;
/** int64 a handler may send: grpc-js encodes either. */
export type Int64 = number | string;
type StringMap = Record<string, string>;

// ---- Enums (names as in the spec) ----

export type AccessModeName =
  | 'UNKNOWN'
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER';

export type PluginServiceType =
  | 'UNKNOWN'
  | 'CONTROLLER_SERVICE'
  | 'VOLUME_ACCESSIBILITY_CONSTRAINTS'
  | 'GROUP_CONTROLLER_SERVICE'
  | 'SNAPSHOT_METADATA_SERVICE';
export type VolumeExpansionType = 'UNKNOWN' | 'ONLINE' | 'OFFLINE';

export type ControllerRpcType =
  | 'UNKNOWN'
  | 'CREATE_DELETE_VOLUME'
  | 'PUBLISH_UNPUBLISH_VOLUME'
  | 'LIST_VOLUMES'
  | 'GET_CAPACITY'
  | 'CREATE_DELETE_SNAPSHOT'
  | 'LIST_SNAPSHOTS'
  | 'CLONE_VOLUME'
  | 'PUBLISH_READONLY'
  | 'EXPAND_VOLUME'
  | 'LIST_VOLUMES_PUBLISHED_NODES'
  | 'VOLUME_CONDITION'
  | 'GET_VOLUME'
  | 'SINGLE_NODE_MULTI_WRITER'
  | 'MODIFY_VOLUME';

export type NodeRpcType =
  | 'UNKNOWN'
  | 'STAGE_UNSTAGE_VOLUME'
  | 'GET_VOLUME_STATS'
  | 'EXPAND_VOLUME'
  | 'VOLUME_CONDITION'
  | 'SINGLE_NODE_MULTI_WRITER'
  | 'VOLUME_MOUNT_GROUP';

export type VolumeUsageUnit = 'UNKNOWN' | 'BYTES' | 'INODES';

// ---- Shared messages, decoded ----

/** Intentionally empty in the spec. */
export type BlockVolume = Record<string, never>;

export interface MountVolume {
  fs_type: string;
  /** May carry credentials (spec): never log them verbatim. */
  mount_flags: string[];
  volume_mount_group: string;
}

export interface AccessMode {
  mode: AccessModeName;
}

/** Exactly one of `block` / `mount` is present when the CO filled `access_type`. */
export interface VolumeCapability {
  access_type?: 'block' | 'mount';
  block?: BlockVolume;
  mount?: MountVolume;
  access_mode: AccessMode | null;
}

export interface CapacityRange {
  required_bytes: Int64String;
  limit_bytes: Int64String;
}

/** e.g. `{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }`. */
export interface Topology {
  segments: StringMap;
}

export interface TopologyRequirement {
  requisite: Topology[];
  preferred: Topology[];
}

export interface VolumeContentSource {
  type?: 'snapshot' | 'volume';
  snapshot?: { snapshot_id: string };
  volume?: { volume_id: string };
}

// ---- Shared messages, as sent ----

/** A capability as a handler returns it (ValidateVolumeCapabilities echoes the decoded ones). */
export interface VolumeCapabilityOut {
  block?: BlockVolume | null;
  mount?: Partial<MountVolume> | null;
  access_mode?: AccessMode | null;
}

export interface VolumeContentSourceOut {
  snapshot?: { snapshot_id: string } | null;
  volume?: { volume_id: string } | null;
}

/** A provisioned volume in CreateVolume, ListVolumes and ControllerGetVolume answers. */
export interface Volume {
  capacity_bytes?: Int64;
  volume_id: string;
  volume_context?: StringMap;
  content_source?: VolumeContentSourceOut | null;
  accessible_topology?: Topology[];
}

export interface Timestamp {
  seconds: Int64;
  nanos?: number;
}

/** A snapshot in CreateSnapshot and ListSnapshots answers. */
export interface Snapshot {
  size_bytes?: Int64;
  snapshot_id: string;
  source_volume_id: string;
  creation_time?: Timestamp | null;
  ready_to_use?: boolean;
  group_snapshot_id?: string;
}

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

// ---- Identity ----

export type GetPluginInfoRequest = Record<string, never>;
export interface GetPluginInfoResponse {
  name: string;
  vendor_version: string;
  manifest?: StringMap;
}

export type GetPluginCapabilitiesRequest = Record<string, never>;
export type PluginCapability =
  { service: { type: PluginServiceType } } | { volume_expansion: { type: VolumeExpansionType } };
export interface GetPluginCapabilitiesResponse {
  capabilities?: PluginCapability[];
}

export type ProbeRequest = Record<string, never>;
export interface ProbeResponse {
  /** google.protobuf.BoolValue; unset means ready. */
  ready?: { value: boolean } | null;
}

// ---- Controller ----

export interface CreateVolumeRequest {
  name: string;
  capacity_range: CapacityRange | null;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
  volume_content_source: VolumeContentSource | null;
  accessibility_requirements: TopologyRequirement | null;
  mutable_parameters: StringMap;
}
export interface CreateVolumeResponse {
  volume: Volume;
}

export interface DeleteVolumeRequest {
  volume_id: string;
  secrets: StringMap;
}
export type DeleteVolumeResponse = Record<string, never>;

export interface ControllerPublishVolumeRequest {
  volume_id: string;
  node_id: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: StringMap;
  volume_context: StringMap;
}
export interface ControllerPublishVolumeResponse {
  publish_context?: StringMap;
}

export interface ControllerUnpublishVolumeRequest {
  volume_id: string;
  /** Empty: unpublish from every node. */
  node_id: string;
  secrets: StringMap;
}
export type ControllerUnpublishVolumeResponse = Record<string, never>;

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: StringMap;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
}
export interface ValidateVolumeCapabilitiesResponse {
  /** Set only when every requested capability is supported. */
  confirmed?: {
    volume_context?: StringMap;
    volume_capabilities: VolumeCapabilityOut[];
    parameters?: StringMap;
  } | null;
  message?: string;
}

export interface ListVolumesRequest {
  max_entries: number;
  starting_token: string;
}
export interface ListVolumesResponse {
  entries?: Array<{
    volume: Volume;
    status?: { published_node_ids?: string[]; volume_condition?: VolumeCondition | null } | null;
  }>;
  next_token?: string;
}

export interface ControllerGetVolumeRequest {
  volume_id: string;
}
export interface ControllerGetVolumeResponse {
  volume: Volume;
  status: { published_node_ids?: string[]; volume_condition?: VolumeCondition | null };
}

export interface ControllerModifyVolumeRequest {
  volume_id: string;
  secrets: StringMap;
  /** Only the keys present are to be changed. */
  mutable_parameters: StringMap;
}
export type ControllerModifyVolumeResponse = Record<string, never>;

export interface GetCapacityRequest {
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  accessible_topology: Topology | null;
}
export interface GetCapacityResponse {
  available_capacity: Int64;
  /** google.protobuf.Int64Value */
  maximum_volume_size?: { value: Int64 } | null;
  minimum_volume_size?: { value: Int64 } | null;
}

export type ControllerGetCapabilitiesRequest = Record<string, never>;
export interface ControllerServiceCapability {
  rpc: { type: ControllerRpcType };
}
export interface ControllerGetCapabilitiesResponse {
  capabilities?: ControllerServiceCapability[];
}

export interface CreateSnapshotRequest {
  source_volume_id: string;
  name: string;
  secrets: StringMap;
  parameters: StringMap;
}
export interface CreateSnapshotResponse {
  snapshot: Snapshot;
}

export interface DeleteSnapshotRequest {
  snapshot_id: string;
  secrets: StringMap;
}
export type DeleteSnapshotResponse = Record<string, never>;

export interface ListSnapshotsRequest {
  max_entries: number;
  starting_token: string;
  source_volume_id: string;
  snapshot_id: string;
  secrets: StringMap;
}
export interface ListSnapshotsResponse {
  entries?: Array<{ snapshot: Snapshot }>;
  next_token?: string;
}

export interface ControllerExpandVolumeRequest {
  volume_id: string;
  capacity_range: CapacityRange | null;
  secrets: StringMap;
  volume_capability: VolumeCapability | null;
}
export interface ControllerExpandVolumeResponse {
  capacity_bytes: Int64;
  node_expansion_required: boolean;
}

// ---- Node ----

export interface NodeStageVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  secrets: StringMap;
  volume_context: StringMap;
}
export type NodeStageVolumeResponse = Record<string, never>;

export interface NodeUnstageVolumeRequest {
  volume_id: string;
  staging_target_path: string;
}
export type NodeUnstageVolumeResponse = Record<string, never>;

export interface NodePublishVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  /** Empty unless the node has STAGE_UNSTAGE_VOLUME. */
  staging_target_path: string;
  target_path: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: StringMap;
  volume_context: StringMap;
}
export type NodePublishVolumeResponse = Record<string, never>;

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}
export type NodeUnpublishVolumeResponse = Record<string, never>;

export interface NodeGetVolumeStatsRequest {
  volume_id: string;
  volume_path: string;
  staging_target_path: string;
}
export interface VolumeUsage {
  available?: Int64;
  total: Int64;
  used?: Int64;
  unit: VolumeUsageUnit;
}
export interface NodeGetVolumeStatsResponse {
  usage?: VolumeUsage[];
  volume_condition?: VolumeCondition | null;
}

export interface NodeExpandVolumeRequest {
  volume_id: string;
  volume_path: string;
  capacity_range: CapacityRange | null;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  secrets: StringMap;
}
export interface NodeExpandVolumeResponse {
  capacity_bytes?: Int64;
}

export type NodeGetCapabilitiesRequest = Record<string, never>;
export interface NodeServiceCapability {
  rpc: { type: NodeRpcType };
}
export interface NodeGetCapabilitiesResponse {
  capabilities?: NodeServiceCapability[];
}

export type NodeGetInfoRequest = Record<string, never>;
export interface NodeGetInfoResponse {
  node_id: string;
  /** 0 lets the CO decide. */
  max_volumes_per_node?: Int64;
  accessible_topology?: Topology | null;
}

// ---- RPC tables, for typing handler maps ----

/** Request and response type of every Identity RPC, keyed by its proto name. */
export interface IdentityRpcs {
  GetPluginInfo: { request: GetPluginInfoRequest; response: GetPluginInfoResponse };
  GetPluginCapabilities: { request: GetPluginCapabilitiesRequest; response: GetPluginCapabilitiesResponse };
  Probe: { request: ProbeRequest; response: ProbeResponse };
}

/** Request and response type of every Controller RPC, keyed by its proto name. */
export interface ControllerRpcs {
  CreateVolume: { request: CreateVolumeRequest; response: CreateVolumeResponse };
  DeleteVolume: { request: DeleteVolumeRequest; response: DeleteVolumeResponse };
  ControllerPublishVolume: { request: ControllerPublishVolumeRequest; response: ControllerPublishVolumeResponse };
  ControllerUnpublishVolume: { request: ControllerUnpublishVolumeRequest; response: ControllerUnpublishVolumeResponse };
  ValidateVolumeCapabilities: {
    request: ValidateVolumeCapabilitiesRequest;
    response: ValidateVolumeCapabilitiesResponse;
  };
  ListVolumes: { request: ListVolumesRequest; response: ListVolumesResponse };
  GetCapacity: { request: GetCapacityRequest; response: GetCapacityResponse };
  ControllerGetCapabilities: { request: ControllerGetCapabilitiesRequest; response: ControllerGetCapabilitiesResponse };
  CreateSnapshot: { request: CreateSnapshotRequest; response: CreateSnapshotResponse };
  DeleteSnapshot: { request: DeleteSnapshotRequest; response: DeleteSnapshotResponse };
  ListSnapshots: { request: ListSnapshotsRequest; response: ListSnapshotsResponse };
  ControllerExpandVolume: { request: ControllerExpandVolumeRequest; response: ControllerExpandVolumeResponse };
  ControllerGetVolume: { request: ControllerGetVolumeRequest; response: ControllerGetVolumeResponse };
  ControllerModifyVolume: { request: ControllerModifyVolumeRequest; response: ControllerModifyVolumeResponse };
}

/** Request and response type of every Node RPC, keyed by its proto name. */
export interface NodeRpcs {
  NodeStageVolume: { request: NodeStageVolumeRequest; response: NodeStageVolumeResponse };
  NodeUnstageVolume: { request: NodeUnstageVolumeRequest; response: NodeUnstageVolumeResponse };
  NodePublishVolume: { request: NodePublishVolumeRequest; response: NodePublishVolumeResponse };
  NodeUnpublishVolume: { request: NodeUnpublishVolumeRequest; response: NodeUnpublishVolumeResponse };
  NodeGetVolumeStats: { request: NodeGetVolumeStatsRequest; response: NodeGetVolumeStatsResponse };
  NodeExpandVolume: { request: NodeExpandVolumeRequest; response: NodeExpandVolumeResponse };
  NodeGetCapabilities: { request: NodeGetCapabilitiesRequest; response: NodeGetCapabilitiesResponse };
  NodeGetInfo: { request: NodeGetInfoRequest; response: NodeGetInfoResponse };
}
