/**
 * Owns the CSI wire definitions at run time: loads proto/csi.proto once, hands grpc-js its service
 * definitions and client constructors, and answers which fields the spec marks `csi_secret` so the
 * server can log requests without them. The message shapes handlers see are described in ./types.
 */
import * as grpc from '@grpc/grpc-js';
// Only proto-loader's option type: its runtime builds descriptors of every message at load, which cost ~100 ms
// of every start (bench/node.ts); the service definitions below are built from our own parse instead.
import type * as protoLoader from '@grpc/proto-loader';
// protobufjs is @grpc/proto-loader's parser (pinned by it); we read its reflection for csi_secret.
import * as protobuf from 'protobufjs';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Package of every CSI v1 type and service. */
export const CSI_PACKAGE = 'csi.v1';
/** What a csi_secret value is replaced with, as kubernetes-csi's protosanitizer does. */
export const STRIPPED = '***stripped***';

/**
 * How decoded messages look: snake_case names as in the spec (`volume_id`), int64 as decimal strings
 * (`"1073741824"`, no precision loss), enums as names (`'SINGLE_NODE_WRITER'`), every scalar, map and
 * repeated field present with its default, unset message fields `null`, and each set oneof named by a
 * virtual field (`access_type: 'mount'`, `type: 'snapshot'`).
 */
export const LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The CSI services this driver can serve; SnapshotMetadata is not in our proto. */
export type CsiServiceName = 'Identity' | 'Controller' | 'Node' | 'GroupController';
const SERVICE_NAMES: readonly CsiServiceName[] = ['Identity', 'Controller', 'Node', 'GroupController'];

/** A generated CSI client: one callback-style method per RPC, under both its proto and camelCase names. */
export type CsiClient = grpc.Client & { [rpc: string]: unknown };
type CsiClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => CsiClient;

/** The `csi.v1` namespace of grpc.loadPackageDefinition: one client constructor per service. */
export type CsiNamespace = Record<CsiServiceName, CsiClientConstructor & { service: grpc.ServiceDefinition }>;

/** Everything loaded from csi.proto. */
export interface CsiProto {
  /** Absolute path of the proto file that was loaded. */
  readonly file: string;
  /** Client constructors, e.g. `new csi.Identity('unix:///csi/csi.sock', credentials)`. */
  readonly csi: CsiNamespace;
  readonly IdentityService: grpc.ServiceDefinition;
  readonly ControllerService: grpc.ServiceDefinition;
  readonly NodeService: grpc.ServiceDefinition;
  readonly GroupControllerService: grpc.ServiceDefinition;
  /** protobufjs reflection of the same parse, for field numbers and options. */
  readonly root: protobuf.Root;
  /** Paths of csi_secret fields per message type that has any: see {@link secretFieldPaths}. */
  readonly secretFieldPaths: Readonly<Record<string, readonly string[]>>;
}

let cached: CsiProto | undefined;

/**
 * Loads proto/csi.proto on first call and returns the same object afterwards. Throws an Error naming
 * the paths it tried when the proto file is not shipped next to the code.
 */
export function loadCsiProto(): CsiProto {
  if (cached) return cached;
  const file = findProtoFile();
  registerDescriptorProto();
  const root = new protobuf.Root();
  // google/protobuf/{timestamp,wrappers,descriptor}.proto come from protobufjs's bundled copies.
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  // One parse feeds both grpc-js and our reflection, so the two can never disagree.
  const definition: Record<string, grpc.ServiceDefinition> = {};
  for (const name of SERVICE_NAMES) {
    definition[`${CSI_PACKAGE}.${name}`] = serviceDefinitionOf(root.lookupService(`${CSI_PACKAGE}.${name}`));
  }
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { csi: { v1: CsiNamespace } };
  const csi = loaded.csi.v1;
  const service = (name: CsiServiceName) => definition[`${CSI_PACKAGE}.${name}`];
  cached = Object.freeze({
    file,
    csi,
    IdentityService: service('Identity'),
    ControllerService: service('Controller'),
    NodeService: service('Node'),
    GroupControllerService: service('GroupController'),
    root,
    secretFieldPaths: computeSecretFieldPaths(root),
  });
  return cached;
}

/**
 * Makes `import "google/protobuf/descriptor.proto"` resolvable from protobufjs's bundled JSON copy (protobufjs
 * bundles timestamp and wrappers but not descriptor), as @grpc/proto-loader does on import. Idempotent.
 */
function registerDescriptorProto(): void {
  const json = JSON.parse(readFileSync(require.resolve('protobufjs/google/protobuf/descriptor.json'), 'utf8')) as {
    nested: { google: { nested: { protobuf: { nested: Record<string, protobuf.AnyNestedObject> } } } };
  };
  protobuf.common('descriptor', json.nested.google.nested.protobuf.nested);
}

/**
 * What @grpc/proto-loader's fromJSON gives grpc-js for a service, minus the per-message descriptors nobody here
 * reads: encode via fromObject, decode via toObject with LOADER_OPTIONS, and the camelCase `originalName`
 * (every CSI method name is PascalCase without acronyms, so lowering the first letter is lodash's camelCase).
 */
function serviceDefinitionOf(service: protobuf.Service): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    const req = method.resolvedRequestType as protobuf.Type;
    const res = method.resolvedResponseType as protobuf.Type;
    def[method.name] = {
      path: `/${qualifiedName(service)}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return def as grpc.ServiceDefinition;
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value))
      throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  };
}

function deserializer(type: protobuf.Type): (buf: Buffer) => object {
  const options = { ...LOADER_OPTIONS } as protobuf.IConversionOptions;
  return (buf) => type.toObject(type.decode(buf), options);
}

/** Looks for proto/csi.proto above this module, so both src/ (ts-jest) and dist/src/ (built) find it. */
function findProtoFile(): string {
  const tried: string[] = [];
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'proto', 'csi.proto');
    if (existsSync(candidate)) return candidate;
    tried.push(candidate);
    dir = dirname(dir);
  }
  throw new Error(`csi.proto not found; looked at ${tried.join(', ')}`);
}

/**
 * Dotted paths of the csi_secret fields inside each message type that has any, keyed by fully-qualified
 * type name: `{ 'csi.v1.CreateVolumeRequest': ['secrets'], ... }`. Secrets inside nested messages get
 * the parent field name prefixed, with `*` standing for any element of a repeated or map field (the spec
 * only marks top-level fields today). Computed from the proto's options, never hand-listed.
 */
export function secretFieldPaths(): Readonly<Record<string, readonly string[]>> {
  return loadCsiProto().secretFieldPaths;
}

function computeSecretFieldPaths(root: protobuf.Root): Readonly<Record<string, readonly string[]>> {
  const out: Record<string, readonly string[]> = {};
  for (const type of messageTypes(root.lookup(CSI_PACKAGE) as protobuf.Namespace)) {
    const paths = secretPathsOf(type, new Set());
    if (paths.length > 0) out[qualifiedName(type)] = Object.freeze(paths);
  }
  return Object.freeze(out);
}

function secretPathsOf(type: protobuf.Type, visiting: Set<protobuf.Type>): string[] {
  if (visiting.has(type)) return [];
  visiting.add(type);
  const paths: string[] = [];
  for (const field of type.fieldsArray) {
    if (isSecret(field)) {
      paths.push(field.name);
      continue;
    }
    const nested = field.resolvedType;
    if (!(nested instanceof protobuf.Type)) continue;
    const prefix = field.repeated || field.map ? `${field.name}.*` : field.name;
    for (const p of secretPathsOf(nested, visiting)) paths.push(`${prefix}.${p}`);
  }
  visiting.delete(type);
  return paths;
}

function isSecret(field: protobuf.Field): boolean {
  return field.options?.['(csi_secret)'] === true;
}

function* messageTypes(ns: protobuf.Namespace): Generator<protobuf.Type> {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) yield child;
    if (child instanceof protobuf.Namespace) yield* messageTypes(child);
  }
}

/** `csi.v1.CreateVolumeRequest`, without protobufjs's leading dot. */
function qualifiedName(type: protobuf.ReflectionObject): string {
  return type.fullName.replace(/^\./, '');
}

/**
 * Maps a gRPC method path (`/csi.v1.Controller/CreateVolume`) to its request message type
 * (`csi.v1.CreateVolumeRequest`). Returns undefined for a path that is not a CSI method we define.
 */
export function methodRequestType(methodPath: string): string | undefined {
  const match = /^\/?([\w.]+)\.(\w+)\/(\w+)$/.exec(methodPath);
  if (!match || match[1] !== CSI_PACKAGE) return undefined;
  const service = loadCsiProto().root.lookup(`${CSI_PACKAGE}.${match[2]}`);
  if (!(service instanceof protobuf.Service)) return undefined;
  const method = service.methods[match[3]];
  return method?.resolvedRequestType ? qualifiedName(method.resolvedRequestType) : undefined;
}

/**
 * Returns a deep copy of `message` with every csi_secret field that holds a value replaced by
 * `'***stripped***'`, recursing into nested, repeated and map message fields; empty secrets stay as they
 * are so the log still shows none were sent. `typeOrMethod` is a method path
 * (`/csi.v1.Node/NodeStageVolume`) or a message type (`csi.v1.NodeStageVolumeRequest` or
 * `NodeStageVolumeRequest`). Throws an Error for a name that is neither; the input is never modified.
 */
export function stripSecrets(typeOrMethod: string, message: unknown): unknown {
  return stripValue(resolveMessageType(typeOrMethod), message);
}

function resolveMessageType(typeOrMethod: string): protobuf.Type {
  const { root } = loadCsiProto();
  const fromMethod = typeOrMethod.includes('/') ? methodRequestType(typeOrMethod) : undefined;
  const name = fromMethod ?? (typeOrMethod.includes('.') ? typeOrMethod : `${CSI_PACKAGE}.${typeOrMethod}`);
  const type = typeOrMethod.includes('/') && !fromMethod ? null : root.lookup(name);
  if (!(type instanceof protobuf.Type)) throw new Error(`not a CSI message type or method: ${typeOrMethod}`);
  return type;
}

function stripValue(type: protobuf.Type, value: unknown): unknown {
  if (!isPlainObject(value)) return deepCopy(value);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    if (!field) out[key] = deepCopy(v);
    else if (isSecret(field)) out[key] = hasValue(v) ? STRIPPED : deepCopy(v);
    else out[key] = stripField(field, v);
  }
  return out;
}

function stripField(field: protobuf.Field, value: unknown): unknown {
  const nested = field.resolvedType;
  if (!(nested instanceof protobuf.Type)) return deepCopy(value);
  if (field.map && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stripValue(nested, v)]));
  }
  if (field.repeated && Array.isArray(value)) return value.map((v) => stripValue(nested, v));
  return stripValue(nested, value);
}

function hasValue(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function deepCopy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(deepCopy);
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepCopy(x)]));
  return v;
}

/** The grpc-js service definition of one CSI service, for `server.addService(definition, impl)`. */
export function serviceDefinition(kind: CsiServiceName): grpc.ServiceDefinition {
  if (!SERVICE_NAMES.includes(kind)) throw new Error(`unknown CSI service: ${kind}`);
  return loadCsiProto().csi[kind].service;
}

/**
 * Builds a client for one CSI service, for tests and `doctor`. `address` is a grpc-js target such as
 * `unix:///var/lib/kubelet/plugins/cinder.csi.openstack.org/csi.sock`; credentials default to insecure,
 * as CSI runs over a local socket. Close it with `client.close()`.
 */
export function makeClient(
  kind: CsiServiceName,
  address: string,
  credentials = grpc.credentials.createInsecure(),
): CsiClient {
  if (!SERVICE_NAMES.includes(kind)) throw new Error(`unknown CSI service: ${kind}`);
  return new (loadCsiProto().csi[kind])(address, credentials);
}

/**
 * Calls one unary RPC by its proto name and resolves with the decoded response; rejects with the
 * grpc ServiceError (its `code` is the gRPC status) when the call fails.
 */
export function callUnary<Res = unknown>(
  client: CsiClient,
  rpc: string,
  request: object,
  options: grpc.CallOptions = {},
): Promise<Res> {
  const fn = client[rpc];
  if (typeof fn !== 'function') return Promise.reject(new Error(`client has no RPC ${rpc}`));
  return new Promise((resolvePromise, reject) => {
    fn.call(client, request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(err) : resolvePromise(res),
    );
  });
}
