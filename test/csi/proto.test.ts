/**
 * Pins proto/csi.proto to the CSI spec (numbers below are copied from the spec's csi.proto v1.8 and the
 * v1.10 generated csi.pb.go, not from our file), checks the secret stripping the server logs through,
 * and proves the definitions work on the wire with a real grpc-js server and client on a unix socket.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  STRIPPED,
  callUnary,
  loadCsiProto,
  makeClient,
  methodRequestType,
  secretFieldPaths,
  serviceDefinition,
  stripSecrets,
} from '../../src/csi/proto';
import type { CreateVolumeRequest, GetPluginInfoResponse } from '../../src/csi/types';

const root = () => loadCsiProto().root;
const type = (name: string) => root().lookupType(`csi.v1.${name}`);
const enumValues = (name: string) => root().lookupEnum(`csi.v1.${name}`).values;

/** `repeated csi.v1.Topology`, `map<string,string>`, `int64`: how a field reads in the spec. */
function describeField(f: protobuf.Field): string {
  if (f instanceof protobuf.MapField) return `map<${f.keyType},${f.type}>`;
  const t = f.resolvedType ? f.resolvedType.fullName.slice(1) : f.type;
  return f.repeated ? `repeated ${t}` : t;
}

// [field, number, type] per message, transcribed from the spec.
const SPEC_FIELDS: Record<string, Array<[string, number, string]>> = {
  GetPluginInfoResponse: [
    ['name', 1, 'string'],
    ['vendor_version', 2, 'string'],
    ['manifest', 3, 'map<string,string>'],
  ],
  GetPluginCapabilitiesResponse: [['capabilities', 1, 'repeated csi.v1.PluginCapability']],
  PluginCapability: [
    ['service', 1, 'csi.v1.PluginCapability.Service'],
    ['volume_expansion', 2, 'csi.v1.PluginCapability.VolumeExpansion'],
  ],
  ProbeResponse: [['ready', 1, 'google.protobuf.BoolValue']],
  CreateVolumeRequest: [
    ['name', 1, 'string'],
    ['capacity_range', 2, 'csi.v1.CapacityRange'],
    ['volume_capabilities', 3, 'repeated csi.v1.VolumeCapability'],
    ['parameters', 4, 'map<string,string>'],
    ['secrets', 5, 'map<string,string>'],
    ['volume_content_source', 6, 'csi.v1.VolumeContentSource'],
    ['accessibility_requirements', 7, 'csi.v1.TopologyRequirement'],
    ['mutable_parameters', 8, 'map<string,string>'],
  ],
  CreateVolumeResponse: [['volume', 1, 'csi.v1.Volume']],
  VolumeContentSource: [
    ['snapshot', 1, 'csi.v1.VolumeContentSource.SnapshotSource'],
    ['volume', 2, 'csi.v1.VolumeContentSource.VolumeSource'],
  ],
  'VolumeContentSource.SnapshotSource': [['snapshot_id', 1, 'string']],
  'VolumeContentSource.VolumeSource': [['volume_id', 1, 'string']],
  VolumeCapability: [
    ['block', 1, 'csi.v1.VolumeCapability.BlockVolume'],
    ['mount', 2, 'csi.v1.VolumeCapability.MountVolume'],
    ['access_mode', 3, 'csi.v1.VolumeCapability.AccessMode'],
  ],
  'VolumeCapability.MountVolume': [
    ['fs_type', 1, 'string'],
    ['mount_flags', 2, 'repeated string'],
    ['volume_mount_group', 3, 'string'],
  ],
  'VolumeCapability.AccessMode': [['mode', 1, 'csi.v1.VolumeCapability.AccessMode.Mode']],
  CapacityRange: [
    ['required_bytes', 1, 'int64'],
    ['limit_bytes', 2, 'int64'],
  ],
  Volume: [
    ['capacity_bytes', 1, 'int64'],
    ['volume_id', 2, 'string'],
    ['volume_context', 3, 'map<string,string>'],
    ['content_source', 4, 'csi.v1.VolumeContentSource'],
    ['accessible_topology', 5, 'repeated csi.v1.Topology'],
  ],
  TopologyRequirement: [
    ['requisite', 1, 'repeated csi.v1.Topology'],
    ['preferred', 2, 'repeated csi.v1.Topology'],
  ],
  Topology: [['segments', 1, 'map<string,string>']],
  DeleteVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['secrets', 2, 'map<string,string>'],
  ],
  ControllerPublishVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['node_id', 2, 'string'],
    ['volume_capability', 3, 'csi.v1.VolumeCapability'],
    ['readonly', 4, 'bool'],
    ['secrets', 5, 'map<string,string>'],
    ['volume_context', 6, 'map<string,string>'],
  ],
  ControllerPublishVolumeResponse: [['publish_context', 1, 'map<string,string>']],
  ControllerUnpublishVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['node_id', 2, 'string'],
    ['secrets', 3, 'map<string,string>'],
  ],
  ValidateVolumeCapabilitiesRequest: [
    ['volume_id', 1, 'string'],
    ['volume_context', 2, 'map<string,string>'],
    ['volume_capabilities', 3, 'repeated csi.v1.VolumeCapability'],
    ['parameters', 4, 'map<string,string>'],
    ['secrets', 5, 'map<string,string>'],
  ],
  ValidateVolumeCapabilitiesResponse: [
    ['confirmed', 1, 'csi.v1.ValidateVolumeCapabilitiesResponse.Confirmed'],
    ['message', 2, 'string'],
  ],
  'ValidateVolumeCapabilitiesResponse.Confirmed': [
    ['volume_context', 1, 'map<string,string>'],
    ['volume_capabilities', 2, 'repeated csi.v1.VolumeCapability'],
    ['parameters', 3, 'map<string,string>'],
  ],
  ListVolumesRequest: [
    ['max_entries', 1, 'int32'],
    ['starting_token', 2, 'string'],
  ],
  ListVolumesResponse: [
    ['entries', 1, 'repeated csi.v1.ListVolumesResponse.Entry'],
    ['next_token', 2, 'string'],
  ],
  'ListVolumesResponse.Entry': [
    ['volume', 1, 'csi.v1.Volume'],
    ['status', 2, 'csi.v1.ListVolumesResponse.VolumeStatus'],
  ],
  'ListVolumesResponse.VolumeStatus': [
    ['published_node_ids', 1, 'repeated string'],
    ['volume_condition', 2, 'csi.v1.VolumeCondition'],
  ],
  ControllerGetVolumeRequest: [['volume_id', 1, 'string']],
  ControllerGetVolumeResponse: [
    ['volume', 1, 'csi.v1.Volume'],
    ['status', 2, 'csi.v1.ControllerGetVolumeResponse.VolumeStatus'],
  ],
  ControllerModifyVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['secrets', 2, 'map<string,string>'],
    ['mutable_parameters', 3, 'map<string,string>'],
  ],
  GetCapacityRequest: [
    ['volume_capabilities', 1, 'repeated csi.v1.VolumeCapability'],
    ['parameters', 2, 'map<string,string>'],
    ['accessible_topology', 3, 'csi.v1.Topology'],
  ],
  GetCapacityResponse: [
    ['available_capacity', 1, 'int64'],
    ['maximum_volume_size', 2, 'google.protobuf.Int64Value'],
    ['minimum_volume_size', 3, 'google.protobuf.Int64Value'],
  ],
  ControllerGetCapabilitiesResponse: [['capabilities', 1, 'repeated csi.v1.ControllerServiceCapability']],
  ControllerServiceCapability: [['rpc', 1, 'csi.v1.ControllerServiceCapability.RPC']],
  'ControllerServiceCapability.RPC': [['type', 1, 'csi.v1.ControllerServiceCapability.RPC.Type']],
  CreateSnapshotRequest: [
    ['source_volume_id', 1, 'string'],
    ['name', 2, 'string'],
    ['secrets', 3, 'map<string,string>'],
    ['parameters', 4, 'map<string,string>'],
  ],
  CreateSnapshotResponse: [['snapshot', 1, 'csi.v1.Snapshot']],
  Snapshot: [
    ['size_bytes', 1, 'int64'],
    ['snapshot_id', 2, 'string'],
    ['source_volume_id', 3, 'string'],
    ['creation_time', 4, 'google.protobuf.Timestamp'],
    ['ready_to_use', 5, 'bool'],
    ['group_snapshot_id', 6, 'string'],
  ],
  DeleteSnapshotRequest: [
    ['snapshot_id', 1, 'string'],
    ['secrets', 2, 'map<string,string>'],
  ],
  ListSnapshotsRequest: [
    ['max_entries', 1, 'int32'],
    ['starting_token', 2, 'string'],
    ['source_volume_id', 3, 'string'],
    ['snapshot_id', 4, 'string'],
    ['secrets', 5, 'map<string,string>'],
  ],
  ListSnapshotsResponse: [
    ['entries', 1, 'repeated csi.v1.ListSnapshotsResponse.Entry'],
    ['next_token', 2, 'string'],
  ],
  'ListSnapshotsResponse.Entry': [['snapshot', 1, 'csi.v1.Snapshot']],
  ControllerExpandVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['capacity_range', 2, 'csi.v1.CapacityRange'],
    ['secrets', 3, 'map<string,string>'],
    ['volume_capability', 4, 'csi.v1.VolumeCapability'],
  ],
  ControllerExpandVolumeResponse: [
    ['capacity_bytes', 1, 'int64'],
    ['node_expansion_required', 2, 'bool'],
  ],
  NodeStageVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['publish_context', 2, 'map<string,string>'],
    ['staging_target_path', 3, 'string'],
    ['volume_capability', 4, 'csi.v1.VolumeCapability'],
    ['secrets', 5, 'map<string,string>'],
    ['volume_context', 6, 'map<string,string>'],
  ],
  NodeUnstageVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['staging_target_path', 2, 'string'],
  ],
  NodePublishVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['publish_context', 2, 'map<string,string>'],
    ['staging_target_path', 3, 'string'],
    ['target_path', 4, 'string'],
    ['volume_capability', 5, 'csi.v1.VolumeCapability'],
    ['readonly', 6, 'bool'],
    ['secrets', 7, 'map<string,string>'],
    ['volume_context', 8, 'map<string,string>'],
  ],
  NodeUnpublishVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['target_path', 2, 'string'],
  ],
  NodeGetVolumeStatsRequest: [
    ['volume_id', 1, 'string'],
    ['volume_path', 2, 'string'],
    ['staging_target_path', 3, 'string'],
  ],
  NodeGetVolumeStatsResponse: [
    ['usage', 1, 'repeated csi.v1.VolumeUsage'],
    ['volume_condition', 2, 'csi.v1.VolumeCondition'],
  ],
  VolumeUsage: [
    ['available', 1, 'int64'],
    ['total', 2, 'int64'],
    ['used', 3, 'int64'],
    ['unit', 4, 'csi.v1.VolumeUsage.Unit'],
  ],
  VolumeCondition: [
    ['abnormal', 1, 'bool'],
    ['message', 2, 'string'],
  ],
  NodeGetCapabilitiesResponse: [['capabilities', 1, 'repeated csi.v1.NodeServiceCapability']],
  NodeServiceCapability: [['rpc', 1, 'csi.v1.NodeServiceCapability.RPC']],
  'NodeServiceCapability.RPC': [['type', 1, 'csi.v1.NodeServiceCapability.RPC.Type']],
  NodeGetInfoResponse: [
    ['node_id', 1, 'string'],
    ['max_volumes_per_node', 2, 'int64'],
    ['accessible_topology', 3, 'csi.v1.Topology'],
  ],
  NodeExpandVolumeRequest: [
    ['volume_id', 1, 'string'],
    ['volume_path', 2, 'string'],
    ['capacity_range', 3, 'csi.v1.CapacityRange'],
    ['staging_target_path', 4, 'string'],
    ['volume_capability', 5, 'csi.v1.VolumeCapability'],
    ['secrets', 6, 'map<string,string>'],
  ],
  NodeExpandVolumeResponse: [['capacity_bytes', 1, 'int64']],
};

const SPEC_ENUMS: Record<string, Record<string, number>> = {
  'PluginCapability.Service.Type': {
    UNKNOWN: 0,
    CONTROLLER_SERVICE: 1,
    VOLUME_ACCESSIBILITY_CONSTRAINTS: 2,
    GROUP_CONTROLLER_SERVICE: 3,
    SNAPSHOT_METADATA_SERVICE: 4,
  },
  'PluginCapability.VolumeExpansion.Type': { UNKNOWN: 0, ONLINE: 1, OFFLINE: 2 },
  'VolumeCapability.AccessMode.Mode': {
    UNKNOWN: 0,
    SINGLE_NODE_WRITER: 1,
    SINGLE_NODE_READER_ONLY: 2,
    MULTI_NODE_READER_ONLY: 3,
    MULTI_NODE_SINGLE_WRITER: 4,
    MULTI_NODE_MULTI_WRITER: 5,
    SINGLE_NODE_SINGLE_WRITER: 6,
    SINGLE_NODE_MULTI_WRITER: 7,
  },
  'ControllerServiceCapability.RPC.Type': {
    UNKNOWN: 0,
    CREATE_DELETE_VOLUME: 1,
    PUBLISH_UNPUBLISH_VOLUME: 2,
    LIST_VOLUMES: 3,
    GET_CAPACITY: 4,
    CREATE_DELETE_SNAPSHOT: 5,
    LIST_SNAPSHOTS: 6,
    CLONE_VOLUME: 7,
    PUBLISH_READONLY: 8,
    EXPAND_VOLUME: 9,
    LIST_VOLUMES_PUBLISHED_NODES: 10,
    VOLUME_CONDITION: 11,
    GET_VOLUME: 12,
    SINGLE_NODE_MULTI_WRITER: 13,
    MODIFY_VOLUME: 14,
  },
  'NodeServiceCapability.RPC.Type': {
    UNKNOWN: 0,
    STAGE_UNSTAGE_VOLUME: 1,
    GET_VOLUME_STATS: 2,
    EXPAND_VOLUME: 3,
    VOLUME_CONDITION: 4,
    SINGLE_NODE_MULTI_WRITER: 5,
    VOLUME_MOUNT_GROUP: 6,
  },
  'VolumeUsage.Unit': { UNKNOWN: 0, BYTES: 1, INODES: 2 },
};

// [rpc, request type, response type] in the spec's order; the request/response names are the RPC's.
const SPEC_SERVICES: Record<string, string[]> = {
  Identity: ['GetPluginInfo', 'GetPluginCapabilities', 'Probe'],
  Controller: [
    'CreateVolume',
    'DeleteVolume',
    'ControllerPublishVolume',
    'ControllerUnpublishVolume',
    'ValidateVolumeCapabilities',
    'ListVolumes',
    'GetCapacity',
    'ControllerGetCapabilities',
    'CreateSnapshot',
    'DeleteSnapshot',
    'ListSnapshots',
    'ControllerExpandVolume',
    'ControllerGetVolume',
    'ControllerModifyVolume',
  ],
  Node: [
    'NodeStageVolume',
    'NodeUnstageVolume',
    'NodePublishVolume',
    'NodeUnpublishVolume',
    'NodeGetVolumeStats',
    'NodeExpandVolume',
    'NodeGetCapabilities',
    'NodeGetInfo',
  ],
  GroupController: [
    'GroupControllerGetCapabilities',
    'CreateVolumeGroupSnapshot',
    'DeleteVolumeGroupSnapshot',
    'GetVolumeGroupSnapshot',
  ],
};

// Every field the spec marks [(csi_secret) = true] in these services.
const SPEC_SECRETS: Record<string, string[]> = {
  'csi.v1.CreateVolumeRequest': ['secrets'],
  'csi.v1.DeleteVolumeRequest': ['secrets'],
  'csi.v1.ControllerPublishVolumeRequest': ['secrets'],
  'csi.v1.ControllerUnpublishVolumeRequest': ['secrets'],
  'csi.v1.ValidateVolumeCapabilitiesRequest': ['secrets'],
  'csi.v1.ControllerModifyVolumeRequest': ['secrets'],
  'csi.v1.CreateSnapshotRequest': ['secrets'],
  'csi.v1.DeleteSnapshotRequest': ['secrets'],
  'csi.v1.ListSnapshotsRequest': ['secrets'],
  'csi.v1.ControllerExpandVolumeRequest': ['secrets'],
  'csi.v1.NodeStageVolumeRequest': ['secrets'],
  'csi.v1.NodePublishVolumeRequest': ['secrets'],
  'csi.v1.NodeExpandVolumeRequest': ['secrets'],
  'csi.v1.CreateVolumeGroupSnapshotRequest': ['secrets'],
  'csi.v1.DeleteVolumeGroupSnapshotRequest': ['secrets'],
  'csi.v1.GetVolumeGroupSnapshotRequest': ['secrets'],
};

describe('csi proto', () => {
  it('loads once and exposes the csi.v1 package, client constructors and service definitions', () => {
    const proto = loadCsiProto();
    expect(loadCsiProto()).toBe(proto);
    expect(root().lookup('csi.v1')).toBeInstanceOf(protobuf.Namespace);
    for (const name of ['Identity', 'Controller', 'Node', 'GroupController'] as const) {
      expect(typeof proto.csi[name]).toBe('function');
      expect(serviceDefinition(name)).toBe(proto.csi[name].service);
    }
    expect(proto.IdentityService.GetPluginInfo.path).toBe('/csi.v1.Identity/GetPluginInfo');
    expect(proto.ControllerService.CreateVolume.path).toBe('/csi.v1.Controller/CreateVolume');
    expect(proto.NodeService.NodeStageVolume.path).toBe('/csi.v1.Node/NodeStageVolume');
  });

  it('declares the spec custom options with the spec extension numbers', () => {
    const ext = (name: string) => root().lookup(`csi.v1.${name}`) as protobuf.Field;
    expect([ext('csi_secret').id, ext('csi_secret').extend, ext('csi_secret').type]).toEqual([
      1059,
      'google.protobuf.FieldOptions',
      'bool',
    ]);
    expect([ext('alpha_field').id, ext('alpha_field').extend]).toEqual([1060, 'google.protobuf.FieldOptions']);
    expect([ext('alpha_enum').id, ext('alpha_enum').extend]).toEqual([1060, 'google.protobuf.EnumOptions']);
    expect([ext('alpha_enum_value').id, ext('alpha_enum_value').extend]).toEqual([
      1060,
      'google.protobuf.EnumValueOptions',
    ]);
    expect([ext('alpha_message').id, ext('alpha_message').extend]).toEqual([1060, 'google.protobuf.MessageOptions']);
    expect([ext('alpha_method').id, ext('alpha_method').extend]).toEqual([1060, 'google.protobuf.MethodOptions']);
    expect([ext('alpha_service').id, ext('alpha_service').extend]).toEqual([1060, 'google.protobuf.ServiceOptions']);
  });

  it.each(Object.entries(SPEC_FIELDS))('%s has exactly the spec fields, numbers and types', (name, fields) => {
    const actual = type(name).fieldsArray.map((f) => [f.name, f.id, describeField(f)]);
    expect(actual).toEqual(fields);
  });

  it.each(Object.entries(SPEC_ENUMS))('enum %s has exactly the spec values', (name, values) => {
    expect(enumValues(name)).toEqual(values);
  });

  it('groups the oneofs as the spec does', () => {
    expect(type('VolumeCapability').oneofs.access_type.oneof).toEqual(['block', 'mount']);
    expect(type('VolumeContentSource').oneofs.type.oneof).toEqual(['snapshot', 'volume']);
    expect(type('PluginCapability').oneofs.type.oneof).toEqual(['service', 'volume_expansion']);
    expect(type('ControllerServiceCapability').oneofs.type.oneof).toEqual(['rpc']);
    expect(type('NodeServiceCapability').oneofs.type.oneof).toEqual(['rpc']);
  });

  it.each(Object.entries(SPEC_SERVICES))(
    'service %s has the spec RPCs in order with their own request and response',
    (svc, rpcs) => {
      const service = root().lookupService(`csi.v1.${svc}`);
      expect(service.methodsArray.map((m) => m.name)).toEqual(rpcs);
      for (const m of service.methodsArray) {
        expect([
          m.resolvedRequestType?.fullName,
          m.resolvedResponseType?.fullName,
          m.requestStream,
          m.responseStream,
        ]).toEqual([`.csi.v1.${m.name}Request`, `.csi.v1.${m.name}Response`, undefined, undefined]);
      }
    },
  );
});

describe('csi proto secrets', () => {
  it('finds every csi_secret field of the spec from the proto options', () => {
    expect(secretFieldPaths()).toEqual(SPEC_SECRETS);
  });

  it('maps a method path to its request type and rejects anything else', () => {
    expect(methodRequestType('/csi.v1.Controller/CreateVolume')).toBe('csi.v1.CreateVolumeRequest');
    expect(methodRequestType('/csi.v1.Node/NodeStageVolume')).toBe('csi.v1.NodeStageVolumeRequest');
    expect(methodRequestType('/csi.v1.Identity/Probe')).toBe('csi.v1.ProbeRequest');
    expect(methodRequestType('/csi.v1.Node/NoSuchRpc')).toBeUndefined();
    expect(methodRequestType('/csi.v0.Node/NodeStageVolume')).toBeUndefined();
    expect(methodRequestType('garbage')).toBeUndefined();
  });

  it('stripSecrets replaces secrets and keeps everything else, without touching the input', () => {
    const request = {
      volume_id: 'vol-1',
      staging_target_path: '/stage',
      secrets: { password: 'hunter2' },
      volume_context: { a: 'b' },
      volume_capability: {
        mount: { fs_type: 'ext4', mount_flags: ['ro'] },
        access_mode: { mode: 'SINGLE_NODE_WRITER' },
      },
    };
    const before = JSON.parse(JSON.stringify(request));
    const out = stripSecrets('/csi.v1.Node/NodeStageVolume', request) as typeof request;
    expect(out).toEqual({ ...before, secrets: STRIPPED });
    expect(request).toEqual(before);
    expect(out.volume_capability).not.toBe(request.volume_capability);
    expect(JSON.stringify(out)).not.toContain('hunter2');
  });

  it.each(Object.keys(SPEC_SECRETS))('stripSecrets removes the secrets of %s', (typeName) => {
    const out = stripSecrets(typeName, { secrets: { key: 'value' }, other: 1 });
    expect(out).toEqual({ secrets: STRIPPED, other: 1 });
  });

  it('stripSecrets accepts a short type name and leaves empty secrets visible as empty', () => {
    expect(stripSecrets('DeleteVolumeRequest', { volume_id: 'v', secrets: {} })).toEqual({
      volume_id: 'v',
      secrets: {},
    });
    expect(stripSecrets('csi.v1.NodeUnpublishVolumeRequest', { volume_id: 'v', target_path: '/t' })).toEqual({
      volume_id: 'v',
      target_path: '/t',
    });
  });

  it('stripSecrets throws for a name that is not a CSI message or method', () => {
    expect(() => stripSecrets('/csi.v1.Node/NoSuchRpc', {})).toThrow(/NoSuchRpc/);
    expect(() => stripSecrets('NoSuchRequest', {})).toThrow(/NoSuchRequest/);
  });
});

describe('csi proto decoding', () => {
  const method = () => loadCsiProto().ControllerService.CreateVolume;

  it('decodes int64 as strings, enums as names, oneofs with their virtual field, and fills defaults', () => {
    const bytes = method().requestSerialize({
      name: 'pvc-1',
      capacity_range: { required_bytes: 10 * 2 ** 40 },
      volume_capabilities: [
        { mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
        { block: {}, access_mode: { mode: 7 } },
      ],
      volume_content_source: { snapshot: { snapshot_id: 'snap-1' } },
    });
    const req = method().requestDeserialize(bytes) as CreateVolumeRequest;
    expect(req.capacity_range).toEqual({ required_bytes: '10995116277760', limit_bytes: '0' });
    expect(req.volume_capabilities[0]).toEqual({
      access_type: 'mount',
      mount: { fs_type: 'xfs', mount_flags: [], volume_mount_group: '' },
      access_mode: { mode: 'SINGLE_NODE_WRITER' },
    });
    expect(req.volume_capabilities[1]).toEqual({
      access_type: 'block',
      block: {},
      access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' },
    });
    expect(req.volume_content_source).toEqual({ type: 'snapshot', snapshot: { snapshot_id: 'snap-1' } });
    expect(req).toMatchObject({
      parameters: {},
      secrets: {},
      mutable_parameters: {},
      accessibility_requirements: null,
    });
  });

  it('decodes an empty request to all defaults with unset messages as null', () => {
    expect(method().requestDeserialize(Buffer.alloc(0))).toEqual({
      name: '',
      capacity_range: null,
      volume_capabilities: [],
      parameters: {},
      secrets: {},
      volume_content_source: null,
      accessibility_requirements: null,
      mutable_parameters: {},
    });
  });
});

describe('csi proto on the wire', () => {
  let dir: string;
  let server: grpc.Server;
  let address: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'csi-proto-'));
    address = `unix://${join(dir, 'csi.sock')}`;
    server = new grpc.Server();
    const { IdentityService, ControllerService } = loadCsiProto();
    server.addService(IdentityService, {
      GetPluginInfo: (_call: unknown, cb: grpc.sendUnaryData<GetPluginInfoResponse>) =>
        cb(null, { name: 'cinder.csi.openstack.org', vendor_version: '1.2.3', manifest: { k: 'v' } }),
    });
    server.addService(ControllerService, {
      CreateVolume: (call: grpc.ServerUnaryCall<CreateVolumeRequest, unknown>, cb: grpc.sendUnaryData<object>) =>
        cb(null, {
          volume: {
            volume_id: call.request.name,
            capacity_bytes: call.request.capacity_range?.required_bytes ?? 0,
            volume_context: { mode: call.request.volume_capabilities[0]?.access_mode?.mode ?? '' },
            accessible_topology: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }],
          },
        }),
    });
    await new Promise<void>((res, rej) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? rej(err) : res())),
    );
  });

  afterAll(async () => {
    await new Promise<void>((res) => server.tryShutdown(() => res()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers GetPluginInfo from a real grpc-js server through a real client', async () => {
    const client = makeClient('Identity', address);
    try {
      await expect(callUnary(client, 'GetPluginInfo', {})).resolves.toEqual({
        name: 'cinder.csi.openstack.org',
        vendor_version: '1.2.3',
        manifest: { k: 'v' },
      });
    } finally {
      client.close();
    }
  });

  it('answers UNIMPLEMENTED for an RPC the implementation leaves out', async () => {
    const client = makeClient('Identity', address);
    try {
      await expect(callUnary(client, 'Probe', {})).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    } finally {
      client.close();
    }
  });

  it('carries int64, enums and maps of CreateVolume across the wire', async () => {
    const client = makeClient('Controller', address);
    try {
      const res = await callUnary(client, 'CreateVolume', {
        name: 'pvc-9',
        capacity_range: { required_bytes: '21474836480' },
        volume_capabilities: [{ mount: {}, access_mode: { mode: 'SINGLE_NODE_SINGLE_WRITER' } }],
        secrets: { password: 'x' },
      });
      expect(res).toEqual({
        volume: {
          capacity_bytes: '21474836480',
          volume_id: 'pvc-9',
          volume_context: { mode: 'SINGLE_NODE_SINGLE_WRITER' },
          content_source: null,
          accessible_topology: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }],
        },
      });
    } finally {
      client.close();
    }
  });
});
