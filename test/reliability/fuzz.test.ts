/**
 * Bad input (issue #11): a seeded fuzzer sends thousands of random and damaged requests of every Identity,
 * Controller and Node RPC over the real socket to a plugin process serving all three (controller on the
 * simulator, node on the real KernelNodeMounter in a temp kubelet dir), then checks that every answer was
 * a status of the right class, the process lives, nothing was mounted or created outside the allowed
 * roots and no volume appeared that no answer owned. Malformed cloud.conf texts and object-volume secrets
 * are fuzzed against their parsers. Rerun a failure with FUZZ_SEED=<the printed seed>.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import type * as protobuf from 'protobufjs';
import { ConfigError, parseCloudConfig } from '../../src/config/cloud-conf';
import { requirePathUnder } from '../../src/csi/validate';
import { hasDotSegment } from '../../src/openstack/http';
import { CodedError, Status } from '../../src/errors';
import { callUnary, loadCsiProto, makeClient } from '../../src/csi/proto';
import { readMountInfo } from '../../src/mount/mountinfo';
import { objectCredentials, objectMountSpec } from '../../src/csi/node-object-context';
import { parseObjectParameters } from '../../src/object/object-params';
import { objectStoreFor } from '../../src/object/object-stores';
import { parseObjectVolumeId } from '../../src/object/volume-id';
import { startSimulator, type Simulator } from '../../src/simulator';
import { cleanupUnder } from '../helpers/fuse-world';
import {
  COMMON_STRINGS,
  INT64_STRINGS,
  Rng,
  encodeCase,
  genMessage,
  type CaseKind,
  type FuzzCorpus,
} from '../helpers/fuzz-gen';
import { describeIf } from '../helpers/prereq';
import { startPluginProcess, type PluginProc } from '../helpers/secrets-procs';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
/** Enough to reach every RPC with every corpus a few times, in about 10 s on two shared cores; FUZZ_CASES for longer runs. */
const CASES = Number(process.env.FUZZ_CASES) || 2400;
const CONCURRENCY = 8;
/** Short, so requests that legitimately wait (a device that never appears) do not dominate the runtime. */
const CALL_DEADLINE_MS = 2_000;
const SERVICES = ['Identity', 'Controller', 'Node'] as const;
/** The marker every fuzzed secret value carries; no answer may ever contain it. */
const SECRET_MARK = 'FUZZSECRET';

/** Codes a bad request may get. Never UNKNOWN or INTERNAL: those mean the input reached code that did not expect it. */
const ALLOWED: Record<(typeof SERVICES)[number], ReadonlySet<string>> = {
  Identity: new Set(['OK', 'INVALID_ARGUMENT']),
  Controller: new Set([
    'OK',
    'INVALID_ARGUMENT',
    'NOT_FOUND',
    'ALREADY_EXISTS',
    'FAILED_PRECONDITION',
    'OUT_OF_RANGE',
    'ABORTED',
    'RESOURCE_EXHAUSTED',
    'UNIMPLEMENTED',
    // An object volume on an unreachable endpoint or with refused keys; an operation the simulator has not finished by our short deadline.
    'UNAVAILABLE',
    'PERMISSION_DENIED',
    'DEADLINE_EXCEEDED',
  ]),
  Node: new Set([
    'OK',
    'INVALID_ARGUMENT',
    'NOT_FOUND',
    'ALREADY_EXISTS',
    'FAILED_PRECONDITION',
    'OUT_OF_RANGE',
    'ABORTED',
    'RESOURCE_EXHAUSTED',
    'UNIMPLEMENTED',
    // A well-formed stage waits for a device that is never attached here, until just before our deadline;
    // an object stage's daemon finds its endpoint unreachable or its keys refused.
    'UNAVAILABLE',
    'PERMISSION_DENIED',
    'DEADLINE_EXCEEDED',
  ]),
};

/** The request as the server decoded it (damaged bytes may differ from what was generated); {} if undecodable. */
function serverView(method: protobuf.Method, bytes: Buffer): Record<string, unknown> {
  try {
    return method.resolvedRequestType!.toObject(method.resolvedRequestType!.decode(bytes)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

interface Outcome {
  service: (typeof SERVICES)[number];
  rpc: string;
  kind: CaseKind;
  index: number;
  code: string;
  details: string;
  response?: Buffer;
  request: Record<string, unknown>;
}

function rawCall(
  client: grpc.Client,
  path: string,
  bytes: Buffer,
): Promise<{ code: string; details: string; response?: Buffer }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err, res) => {
        if (err) resolve({ code: grpc.status[err.code] ?? String(err.code), details: err.details ?? '' });
        else resolve({ code: 'OK', details: '', response: res });
      },
    );
  });
}

/** Names in `dir`, with a marker for directories, so a created file or directory shows as a difference. */
function listing(dir: string): string[] {
  try {
    return readdirSync(dir)
      .map((n) => `${n}${lstatSync(join(dir, n)).isDirectory() ? '/' : ''}`)
      .sort();
  } catch {
    return [];
  }
}

function tree(dir: string): string[] {
  const out: string[] = [];
  for (const e of listing(dir)) {
    out.push(e);
    if (e.endsWith('/')) for (const sub of tree(join(dir, e))) out.push(`${e}${sub}`);
  }
  return out;
}

const MOUNT_CAP = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const OBJECT_CAP = { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
const OBJECT_ID = 'obj1:s3:bkt:';

/** Requests of each RPC that pass validation, block and object flavours (S3 on a port nothing listens on). */
function validRequests(K: string, volumeId: string, nodeId: string): Record<string, Array<Record<string, unknown>>> {
  const secrets = { accessKeyID: `${SECRET_MARK}-ak`, secretAccessKey: `${SECRET_MARK}-sk` };
  const objCtx = {
    backend: 'object',
    provider: 's3',
    bucket: 'bkt',
    prefix: '',
    endpoint: 'http://127.0.0.1:1',
    mounter: 's3fs',
  };
  const staging = `${K}/staging/s1`;
  const target = `${K}/pods/p1/volumes/v`;
  return {
    CreateVolume: [
      { name: 'pvc-fuzz-1', capacity_range: { required_bytes: '1073741824' }, volume_capabilities: [MOUNT_CAP] },
      {
        name: 'pvc-fuzz-obj',
        volume_capabilities: [OBJECT_CAP],
        parameters: { backend: 'object', endpoint: 'http://127.0.0.1:1' },
        secrets,
      },
    ],
    DeleteVolume: [{ volume_id: volumeId }, { volume_id: OBJECT_ID, secrets }],
    ControllerPublishVolume: [{ volume_id: volumeId, node_id: nodeId, volume_capability: MOUNT_CAP }],
    ControllerUnpublishVolume: [{ volume_id: volumeId, node_id: nodeId }],
    ControllerExpandVolume: [
      { volume_id: volumeId, capacity_range: { required_bytes: '2147483648' }, volume_capability: MOUNT_CAP },
    ],
    ValidateVolumeCapabilities: [
      { volume_id: volumeId, volume_capabilities: [MOUNT_CAP] },
      { volume_id: OBJECT_ID, volume_capabilities: [OBJECT_CAP], secrets },
    ],
    CreateSnapshot: [{ name: 'snap-fuzz-1', source_volume_id: volumeId }],
    NodeStageVolume: [
      { volume_id: volumeId, staging_target_path: staging, volume_capability: MOUNT_CAP },
      {
        volume_id: OBJECT_ID,
        staging_target_path: `${K}/staging/s2`,
        volume_capability: OBJECT_CAP,
        secrets,
        volume_context: objCtx,
      },
    ],
    NodeUnstageVolume: [
      { volume_id: volumeId, staging_target_path: staging },
      { volume_id: OBJECT_ID, staging_target_path: `${K}/staging/s2` },
    ],
    NodePublishVolume: [
      { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: MOUNT_CAP },
      {
        volume_id: OBJECT_ID,
        staging_target_path: `${K}/staging/s2`,
        target_path: target,
        volume_capability: OBJECT_CAP,
        volume_context: objCtx,
      },
    ],
    NodeUnpublishVolume: [
      { volume_id: volumeId, target_path: target },
      { volume_id: OBJECT_ID, target_path: target },
    ],
    NodeGetVolumeStats: [
      { volume_id: volumeId, volume_path: target },
      { volume_id: OBJECT_ID, volume_path: target },
    ],
    NodeExpandVolume: [{ volume_id: volumeId, volume_path: target, capacity_range: { required_bytes: '2147483648' } }],
  };
}

describeIf('CSI fuzzing over the socket', { root: true, loop: false, commands: ['mount', 'umount'] }, () => {
  let dir: string;
  let kubeletDir: string;
  let outsideDir: string;
  let sim: Simulator;
  let plugin: PluginProc | undefined;
  const outcomes: Outcome[] = [];
  const okVolumeIds = new Set<string>();
  const slowCreateNames = new Set<string>();
  const acceptedMountPaths = new Set<string>();
  let initialVolumes: Set<string>;
  let mountsBefore: Set<string>;
  let etcBefore: string[];
  let dirBefore: string[];
  let outsideBefore: string[];
  let outsideAbsolutes: string[];

  beforeAll(async () => {
    console.log(`fuzz seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
    dir = await mkdtemp(join(tmpdir(), 'fuzz-'));
    kubeletDir = join(dir, 'kubelet');
    outsideDir = join(dir, 'outside');
    for (const d of [
      kubeletDir,
      outsideDir,
      join(kubeletDir, 'pods', 'p1', 'volumes'),
      join(kubeletDir, 'staging', 's1'),
      join(dir, 'by-id'),
    ]) {
      mkdirSync(d, { recursive: true });
    }
    writeFileSync(join(outsideDir, 'sentinel'), 'not yours\n');
    // Links a pod could plant under the kubelet dir: following them must never let the node write outside it.
    symlinkSync(outsideDir, join(kubeletDir, 'escape'));
    symlinkSync('../../..', join(kubeletDir, 'pods', 'p1', 'up'));
    symlinkSync('/etc', join(kubeletDir, 'etc-link'));
    sim = await startSimulator({ devicePlane: false, delayScale: 0 });
    writeFileSync(join(dir, 'cloud.conf'), sim.cloudConf(), { mode: 0o600 });
    const socket = join(dir, 'csi.sock');
    plugin = await startPluginProcess(
      socket,
      [
        '--endpoint',
        `unix://${socket}`,
        '--cloud-config',
        join(dir, 'cloud.conf'),
        '--kubelet-dir',
        kubeletDir,
        '--by-id-dir',
        join(dir, 'by-id'),
        '--node-id',
        sim.localServerId,
        '--metadata-url',
        sim.metadataUrl,
        '--fuse-state-dir',
        join(dir, 'fuse-state'),
        '--log-level',
        'debug',
      ],
      join(dir, 'plugin.log'),
    );
  }, 120_000);

  afterAll(async () => {
    await plugin?.kill();
    if (dir) await cleanupUnder(dir);
    await sim?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`answers ${CASES} hostile requests of every RPC with a status of the right class and stays up`, async () => {
    const controller = makeClient('Controller', `unix://${plugin!.socket}`);
    const seeded = await callUnary<{ volume: { volume_id: string } }>(controller, 'CreateVolume', {
      name: 'pvc-fuzz-seed',
      capacity_range: { required_bytes: '1073741824' },
      volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
    });
    const volumeId = seeded.volume.volume_id;
    const snap = await callUnary<{ snapshot: { snapshot_id: string } }>(controller, 'CreateSnapshot', {
      name: 'snap-fuzz-seed',
      source_volume_id: volumeId,
    });
    controller.close();
    initialVolumes = new Set(sim.listVolumes().map((v) => v.id));

    const K = kubeletDir;
    outsideAbsolutes = [
      `${K}-evil`,
      '/etc/cinder-csi-fuzz',
      '/tmp/cinder-csi-fuzz-created',
      join(outsideDir, 'x'),
      `${dir}/sibling`,
    ];
    const corpus: FuzzCorpus = {
      paths: [
        `${K}/pods/p1/volumes/v`,
        `${K}/pods/p1/volumes/v/`,
        `${K}/staging/s1`,
        `${K}/staging/s2/deeper`,
        K,
        `${K}/`,
        `${K}/../outside`,
        `${K}/escape`,
        `${K}/escape/x`,
        `${K}/escape/new/deeper`,
        `${K}/pods/p1/up/outside/x`,
        `${K}/pods/p1/up/sibling`,
        `${K}/pods/p1/up/outside/sentinel`,
        `${K}/etc-link/cinder-csi-fuzz`,
        ...outsideAbsolutes,
        '../../etc',
        'relative/path',
        `${K}/a\0b`,
        `${K}/ünïcødé/路径`,
        `/proc/self/root${K}/x`,
        `${K}//double//slash`,
        `${K}/./dot`,
        '/dev/null',
        `${K}/pods/p1/volumes/${'x'.repeat(300)}`,
        `${K}/${'../'.repeat(20)}etc`,
      ],
      ids: [
        volumeId,
        volumeId,
        snap.snapshot.snapshot_id,
        randomUUID(),
        'a/b',
        '../../etc',
        `${volumeId}/../x`,
        '/dev/sda',
        'obj1:s3:bucket:',
        'obj1:s3:bkt:pre/',
        'obj1:s3:../..:x/',
        'obj1:swift:b:',
        'obj1:',
        'obj1:s3:',
        'obj1:s3:b:c',
        'obj1:zzz:b:',
        'obj1:s3:UPPER_case:',
        'obj1:s3:b:../../',
        'obj1:s3:b:\0/',
        'obj1:s3:b:💥/',
        `obj1:s3:${'b'.repeat(300)}:`,
      ],
      nodeIds: [sim.localServerId, sim.localServerId, randomUUID(), '../x', 'node/1', ''],
      names: [
        'pvc-fuzz-1',
        'pvc-fuzz-2',
        'pvc-fuzz-seed',
        'snap-fuzz-1',
        'ext4',
        'xfs',
        'btrfs',
        'ntfs',
        '',
        'SINGLE_NODE_WRITER',
        'a/b',
        '../../x',
        'UPPER',
        '💥',
      ],
      mapKeys: [
        'backend',
        'provider',
        'bucket',
        'endpoint',
        'mounter',
        'mountOptions',
        'region',
        'pathStyle',
        'type',
        'availability',
        'fsType',
        'cloud',
        'accessKeyID',
        'secretAccessKey',
        'csi.storage.k8s.io/pvc/name',
        'csi.storage.k8s.io/pvc/namespace',
        'cinder.csi.openstack.org/resizeRequired',
        'csi.storage.k8s.io/ephemeral',
        'reclaimData',
        'uid',
        'gid',
        'umask',
        'auth-url',
        'username',
        'password',
        'capacityBytes',
        'prefix',
        'DevicePath',
        '__proto__',
        'constructor',
        'topology.cinder.csi.openstack.org/zone',
      ],
      mapValues: [
        'object',
        'block',
        's3',
        'swift',
        's3fs',
        'rclone',
        'http://127.0.0.1:1',
        'true',
        'false',
        'nova',
        '../../etc',
        '',
        'delete',
        'retain',
        '0',
        '-1',
        '99999999999',
        '0777',
        'bkt',
        'UPPER_bucket',
        '/dev/sda',
        'max_stat_cache_size=1',
        'passwd_file=/etc/shadow',
        '--config=/etc/passwd',
        'allow_root,nonempty',
        `${K}/escape`,
      ],
      secretValues: [
        `${SECRET_MARK}-a1`,
        `${SECRET_MARK}/b2+`,
        `http://${SECRET_MARK}@127.0.0.1:1`,
        `${SECRET_MARK}:c3`,
        `x${SECRET_MARK}\0`,
      ],
      strings: COMMON_STRINGS,
      int64s: INT64_STRINGS,
    };

    const { root } = loadCsiProto();
    const methods: Array<{ service: (typeof SERVICES)[number]; method: protobuf.Method }> = [];
    for (const service of SERVICES) {
      const svc = root.lookup(`csi.v1.${service}`) as protobuf.Service;
      for (const m of svc.methodsArray) methods.push({ service, method: m.resolve() as protobuf.Method });
    }
    const templates = validRequests(K, volumeId, sim.localServerId);
    const rng = new Rng(SEED);
    const cases = Array.from({ length: CASES }, (_, index) => {
      const { service, method } = methods[index % methods.length];
      const type = method.resolvedRequestType!;
      const generated = genMessage(type, rng, corpus);
      // Half the cases start from a request that would pass validation and replace one or two of its
      // fields, so the damage reaches the deep code (device waits, mounts, the supervisor, the cloud).
      const valid = templates[method.name];
      let request = generated;
      if (valid && rng.chance(0.5)) {
        request = structuredClone(rng.pick(valid));
        for (let k = 0; k < 1 + rng.int(2); k++) {
          const key = rng.pick(type.fieldsArray).name;
          if (rng.chance(0.2)) delete request[key];
          else if (key in generated) request[key] = generated[key];
        }
      }
      return { index, service, method, request, ...encodeCase(type, request, rng) };
    });

    etcBefore = listing('/etc');
    dirBefore = listing(dir);
    outsideBefore = tree(outsideDir);
    mountsBefore = new Set((await readMountInfo()).map((m) => m.mountPoint));
    const clients = Object.fromEntries(
      SERVICES.map((s) => [s, new grpc.Client(`unix://${plugin!.socket}`, grpc.credentials.createInsecure())]),
    );
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < cases.length; i = next++) {
          const c = cases[i];
          const path = `/csi.v1.${c.service}/${c.method.name}`;
          const r = await rawCall(clients[c.service], path, c.bytes);
          outcomes.push({
            service: c.service,
            rpc: c.method.name,
            kind: c.kind,
            index: c.index,
            request: c.request,
            ...r,
          });
          // A stage or publish that was accepted (or still running at our deadline) may leave a mount at its path.
          if (
            /^Node(Stage|Publish)Volume$/.test(c.method.name) &&
            (r.code === 'OK' || r.code === 'DEADLINE_EXCEEDED')
          ) {
            const seen = serverView(c.method, c.bytes);
            for (const k of ['staging_target_path', 'target_path']) {
              if (typeof seen[k] === 'string')
                acceptedMountPaths.add(normalize(String(seen[k])).replace(/(.)\/+$/, '$1'));
            }
          }
          if (c.method.name === 'CreateVolume') {
            if (r.response) {
              const res = c.method.resolvedResponseType!.decode(r.response) as unknown as {
                volume?: { volume_id?: string };
              };
              if (res.volume?.volume_id) okVolumeIds.add(res.volume.volume_id);
            } else if (r.code === 'DEADLINE_EXCEEDED') {
              // The name the server saw, which damaged bytes may have changed from the generated one.
              slowCreateNames.add(String(serverView(c.method, c.bytes).name ?? ''));
            }
          }
        }
      }),
    );
    for (const c of Object.values(clients)) c.close();
    const elapsed = Date.now() - started;

    const byCode: Record<string, number> = {};
    for (const o of outcomes) byCode[o.code] = (byCode[o.code] ?? 0) + 1;
    const rpcs = new Set(outcomes.map((o) => `${o.service}/${o.rpc}`));

    console.log(
      `fuzz seed ${SEED}: ${outcomes.length} calls over ${rpcs.size} RPCs in ${elapsed} ms; codes ${JSON.stringify(byCode)}`,
    );

    const bad = outcomes
      .filter((o) => !ALLOWED[o.service].has(o.code))
      .map(
        (o) =>
          `#${o.index} ${o.rpc} (${o.kind}) -> ${o.code}: ${o.details.slice(0, 300)} | ${JSON.stringify(o.request).slice(0, 400)}`,
      );
    expect(bad).toEqual([]);
    expect(rpcs.size).toBe(methods.length);
    const leaked = outcomes
      .filter((o) => o.details.includes(SECRET_MARK))
      .map((o) => `#${o.index} ${o.rpc}: ${o.details.slice(0, 300)}`);
    expect(leaked).toEqual([]);
    expect(plugin!.log()).not.toContain(SECRET_MARK);

    // Alive and still serving every service.
    expect(plugin!.alive()).toBe(true);
    const identity = makeClient('Identity', `unix://${plugin!.socket}`);
    await expect(callUnary(identity, 'Probe', {}, { deadline: Date.now() + 5_000 })).resolves.toBeDefined();
    identity.close();
    expect(plugin!.log()).not.toMatch(/unexpected error|uncaught|unhandled/i);
  }, 180_000);

  it('mounted nothing and created nothing outside the allowed roots, and every new volume was answered for', async () => {
    expect(outcomes.length).toBe(CASES);
    const mountsAfter = (await readMountInfo()).map((m) => m.mountPoint);
    // Other suites may mount under their own temp dirs meanwhile: what we own is our dir and everything outside /tmp.
    const newMounts = mountsAfter.filter(
      (m) =>
        !mountsBefore.has(m) &&
        (m.startsWith(`${dir}/`) || !m.startsWith(`${tmpdir()}/`)) &&
        !acceptedMountPaths.has(m),
    );
    expect(newMounts).toEqual([]);
    expect(listing('/etc')).toEqual(etcBefore);
    expect(tree(outsideDir)).toEqual(outsideBefore);
    const allowedNew = new Set(['kubelet/', 'fuse-state/', 'csi.sock', 'plugin.log']);
    expect(listing(dir).filter((n) => !dirBefore.includes(n) && !allowedNew.has(n))).toEqual([]);
    for (const p of outsideAbsolutes) expect(existsSync(p) ? p : '').toBe('');

    const unexplained = sim
      .listVolumes()
      .filter((v) => !initialVolumes.has(v.id) && !okVolumeIds.has(v.id) && !slowCreateNames.has(v.name))
      .map((v) => `${v.id} ${JSON.stringify(v.name)}`);
    expect(unexplained).toEqual([]);
  });
});

describe('fuzzing cloud.conf', () => {
  const PASSWORD = 'Pw-FUZZ-7c1e;#"q';
  const APP_SECRET = 'AppSecret-FUZZ-0b9d';
  const VALID = [
    '[Global]',
    'auth-url = https://keystone.example:5000/v3',
    'username = demo',
    `password = "${PASSWORD.replace(/"/g, '\\"')}"`,
    'user-domain-name = Default',
    'tenant-name = demo',
    'region = RegionOne',
    'tls-insecure = false',
    '[Global "other"]',
    'auth-url = https://keystone.example:5000/v3',
    'application-credential-id = 0123abcd',
    `application-credential-secret = ${APP_SECRET}`,
    '[BlockStorage]',
    'node-volume-attach-limit = 64',
    'rescan-on-resize = true',
    'ignore-volume-az = no',
    '[Metadata]',
    'search-order = configDrive,metadataService',
    'request-timeout = 5s',
  ];
  const BAD_VALUES = [
    'maybe',
    '',
    '12abc',
    '99999999999999999999',
    '-5',
    '5x',
    '-1s',
    '1e9h',
    '1.5.5s',
    '"unterminated',
    '\\q',
    'a'.repeat(1 << 20),
    '\0',
    '💥',
    'configDrive,configDrive',
    'nope',
    'http//x',
    ' ; comment',
    '#',
    '"a" "b"',
    '\\',
    'true false',
  ];
  const GARBAGE = [
    '[',
    ']',
    '"',
    '=',
    '\\',
    '\0',
    '\r',
    '\n',
    ';',
    '#',
    ' ',
    '[Global',
    '[Global "x]',
    '\uFEFF',
    '💥',
    '\u202e',
  ];
  const SECRET_LINE = /^(password|application-credential-secret)\s*=/;

  function mutate(rng: Rng): string {
    const lines = [...VALID];
    for (let m = 0; m < 1 + rng.int(4); m++) {
      const i = rng.int(lines.length);
      switch (rng.int(8)) {
        case 0:
          lines.splice(i, 1);
          break;
        case 1: // duplicate a line or a whole section header
          lines.splice(i, 0, lines[i] ?? '[Global]');
          break;
        case 2: {
          // garbage anywhere in a line, secret lines included (it may break their syntax)
          const l = lines[i] ?? '';
          const at = rng.int(l.length + 1);
          lines[i] = l.slice(0, at) + rng.pick(GARBAGE) + l.slice(at);
          break;
        }
        case 3: // a bad value for a non-secret key
          if (lines[i] && lines[i].includes('=') && !SECRET_LINE.test(lines[i]))
            lines[i] = `${lines[i].split('=')[0]}= ${rng.pick(BAD_VALUES)}`;
          break;
        case 4:
          lines.splice(
            i,
            0,
            rng.pick(['[Global]', '[BlockStorage]', '[Metadata]', '[Global "other"]', '[Unknown]', '[global]']),
          );
          break;
        case 5:
          lines.splice(
            i,
            0,
            `${rng.pick(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'x'])} = ${rng.pick(BAD_VALUES)}`,
          );
          break;
        case 6:
          lines[i] = Buffer.from(Array.from({ length: rng.int(40) }, () => rng.int(256))).toString('latin1');
          break;
        default:
          return lines.join(rng.pick(['\n', '\r\n', '\r']));
      }
    }
    return lines.join('\n');
  }

  it('turns every mutation of a valid file into a config or a ConfigError that keeps the credentials out', () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const problems: string[] = [];
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const text = mutate(rng);
      for (const requireCredentials of [true, false]) {
        try {
          const conf = parseCloudConfig([{ file: 'cloud.conf', text }], { requireCredentials });
          for (const w of conf.warnings)
            if (w.includes(PASSWORD) || w.includes(APP_SECRET)) problems.push(`warning leaks: ${w}`);
          // Only known keys may become fields: a key named after an Object.prototype member must not.
          for (const auth of conf.clouds.values()) {
            for (const k of Object.keys(auth))
              if (k.includes('function') || k === 'constructor') problems.push(`bogus field ${k}`);
          }
        } catch (e) {
          rejected++;
          if (!(e instanceof ConfigError))
            problems.push(`#${i} ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
          else if (e.message.includes(PASSWORD) || e.message.includes(APP_SECRET))
            problems.push(`#${i} leaks: ${e.message.slice(0, 200)}`);
          else if (!/cloud\.conf/.test(e.message)) problems.push(`#${i} names no file: ${e.message.slice(0, 200)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(rejected).toBeGreaterThan(100);
  });

  it('rejects raw garbage bytes with a ConfigError', () => {
    const rng = new Rng(SEED ^ 0xbad);
    for (let i = 0; i < 300; i++) {
      const text = Buffer.from(Array.from({ length: rng.int(300) }, () => rng.int(256))).toString(
        rng.chance(0.5) ? 'utf8' : 'latin1',
      );
      try {
        parseCloudConfig([{ file: 'cloud.conf', text }], { requireCredentials: true });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
      }
    }
  });
});

describe('fuzzing object-volume secrets and parameters', () => {
  const MARK = 'SECRETFUZZ';
  const KEYS = [
    'accessKeyID',
    'secretAccessKey',
    'endpoint',
    'region',
    'cloud',
    'auth-url',
    'username',
    'password',
    'application-credential-id',
    'application-credential-secret',
    'project-name',
    'user-domain-name',
    '__proto__',
    'constructor',
    '',
  ];
  const VALUES = [
    `${MARK}-1`,
    `http://${MARK}:pw@127.0.0.1:1`,
    `${MARK}://x`,
    `:${MARK}:`,
    `${MARK}\0`,
    `${MARK}\n[vol]\ntype = local`,
    `${MARK} with spaces`,
    `ftp://127.0.0.1/${MARK}`,
    `http://127.0.0.1:99999/${MARK}`,
    `${'a'.repeat(5000)}${MARK}`,
    '',
  ];
  const cap = {
    access_type: 'mount',
    mount: { fs_type: '', mount_flags: [], volume_mount_group: '' },
    access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' },
  };

  function secretsMap(rng: Rng): Record<string, string> {
    const s: Record<string, string> = {};
    for (let i = 0; i < rng.int(6); i++) s[rng.pick(KEYS)] = rng.pick(VALUES);
    return s;
  }

  it('refuses bad secrets with a typed error naming the field and never echoing a value', () => {
    const rng = new Rng(SEED ^ 0x0b1);
    const problems: string[] = [];
    const check = (what: string, fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof CodedError))
          problems.push(`${what}: ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
        else if (e.details.includes(MARK)) problems.push(`${what} leaks: ${e.details.slice(0, 200)}`);
        else if (!/(secrets|parameters|volume_context|endpoint|volume_capability|provider)/.test(e.details))
          problems.push(`${what} names no field: ${e.details}`);
        else if (e.code !== Status.INVALID_ARGUMENT && e.code !== Status.FAILED_PRECONDITION)
          problems.push(`${what}: code ${Status[e.code]}`);
      }
    };
    const ref = parseObjectVolumeId('obj1:s3:bkt:')!;
    for (let i = 0; i < 3000; i++) {
      const secrets = rng.chance(0.05) ? (null as unknown as Record<string, string>) : secretsMap(rng);
      const provider = rng.pick(['s3', 'swift'] as const);
      check(`#${i} objectCredentials(${provider})`, () => objectCredentials(provider, secrets));
      check(`#${i} objectStoreFor(${provider})`, () =>
        objectStoreFor(
          { provider, endpoint: rng.chance(0.3) ? rng.pick(['', 'http://127.0.0.1:1', 'garbage']) : undefined },
          secrets,
          {},
        ),
      );
      check(`#${i} objectMountSpec`, () =>
        objectMountSpec(
          'obj1:s3:bkt:',
          ref,
          '/var/lib/kubelet/x',
          rng.chance(0.5) ? {} : { endpoint: 'http://127.0.0.1:1' },
          secrets,
          cap as never,
          false,
        ),
      );
      const params: Record<string, string> = { backend: 'object' };
      for (let k = 0; k < rng.int(5); k++) {
        params[
          rng.pick([
            'provider',
            'bucket',
            'endpoint',
            'mounter',
            'pathStyle',
            'reclaimData',
            'uid',
            'gid',
            'umask',
            'mountOptions',
            'region',
          ])
        ] = rng.pick([
          's3',
          'swift',
          'rclone',
          's3fs',
          'true',
          'x',
          '',
          '-1',
          '0777',
          'BAD_bucket',
          'http://127.0.0.1:1',
          '💥',
          '\0',
        ]);
      }
      try {
        parseObjectParameters(params);
      } catch (e) {
        if (!(e instanceof CodedError) || !/^parameters\./.test(e.details))
          problems.push(`#${i} parseObjectParameters: ${(e as Error).message}`);
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
  });
});

/** Cases the fuzzer found, pinned so they stay fixed whatever the seed. */
describe('regressions found by the fuzzer', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fuzz-regress-'));
    mkdirSync(join(root, 'kubelet', 'pods', 'p1'), { recursive: true });
    mkdirSync(join(root, 'outside'));
    symlinkSync(join(root, 'outside'), join(root, 'kubelet', 'pods', 'p1', 'escape'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('refuses a node path that leaves the kubelet dir through a planted symbolic link (it once removed files out there)', () => {
    const K = join(root, 'kubelet');
    for (const p of [`${K}/pods/p1/escape`, `${K}/pods/p1/escape/sentinel`, `${K}/pods/p1/escape/new/deeper`]) {
      expect(() => requirePathUnder(p, K, 'target_path')).toThrow(/target_path .*symbolic link/);
    }
    expect(requirePathUnder(`${K}/pods/p1/volumes/v`, K, 'target_path')).toBe(`${K}/pods/p1/volumes/v`);
  });

  it('answers INVALID_ARGUMENT for a path component longer than NAME_MAX (it was INTERNAL from ENAMETOOLONG)', () => {
    expect(() =>
      requirePathUnder(`/var/lib/kubelet/${'x'.repeat(256)}`, '/var/lib/kubelet', 'staging_target_path'),
    ).toThrow(expect.objectContaining({ code: Status.INVALID_ARGUMENT }));
  });

  it('never sends an id that is a dot segment to OpenStack (GET /volumes/. listed volumes and crashed the handler)', () => {
    expect(hasDotSegment('http://h/volume/v3/p/volumes/.')).toBe(true);
    expect(hasDotSegment('http://h/volume/v3/p/volumes/%2E%2e/action')).toBe(true);
    expect(hasDotSegment('http://h/volume/v3/p/volumes/a.b?x=..')).toBe(false);
  });

  it('keeps credentials and Object.prototype names out of cloud.conf parsing', () => {
    const text = '[Global]\nauth-url = https://k/v3\nconstructor = x\npass word = Hunter2-secret\n';
    expect(() => parseCloudConfig([{ file: 'c.conf', text }], { requireCredentials: false })).toThrow(ConfigError);
    expect(() => parseCloudConfig([{ file: 'c.conf', text }], { requireCredentials: false })).not.toThrow(/Hunter2/);
    const conf = parseCloudConfig([{ file: 'c.conf', text: '[Global]\nconstructor = x\ntoString = y\n' }], {
      requireCredentials: false,
    });
    expect(Object.keys(conf.clouds.get('')!).sort()).toEqual(['endpointType', 'name', 'tlsInsecure']);
    expect(conf.warnings.join('\n')).toMatch(/constructor: unknown key ignored/);
  });
});
