/**
 * The built image itself: the docker-archive tarball .ci/build-image writes, imported with buildah and run as a
 * container runtime would run it (its ENTRYPOINT, WorkingDir and Env; `buildah run --isolation chroot`, which shares
 * this host's network, so the simulator on 127.0.0.1 is reachable; volumes are host directories, so the CSI socket
 * is dialled from here). It starts as the controller (CreateVolume), as the node plugin (stages ext4, xfs and btrfs
 * volumes on the simulator's loop devices) and as the FUSE supervisor (s3fs and rclone mounts), under our
 * manifests' arguments and under the reference's unchanged ones; it holds every tool the node runs and nothing of
 * the development tree. Needs root, loop devices, /dev/fuse, buildah and the tarball; under CI=true (where .ci/run
 * builds it) their absence fails, locally it is a todo.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { callUnary, makeClient } from '../../src/csi/proto';
import * as Minio from 'minio';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { buildSupervisorPod, DEFAULT_SUPERVISOR_STATE_DIR } from '../../src/kube/supervisor-pod';
import { startS3Server } from '../helpers/s3-server';
import { OPTIONAL_TOOLS, REQUIRED_TOOLS } from '../../src/mount/node-tools';
import { FORMATTABLE_FS_TYPES } from '../../src/mount/filesystem';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { createCloudClients } from '../../src/openstack/clients';
import { startSimulator, type Simulator } from '../../src/simulator';
import { expandedArgs, flagValue, loadManifests, podSpec, ROOT } from '../deploy/manifest-helpers';
import { IN_CI, missingPrereqs } from '../helpers/prereq';
import { REFERENCE_DIR, referenceContainers } from '../helpers/reference-manifests';
import { freePort } from '../helpers/free-port';

const IMAGE_TAR = process.env.IMAGE_TAR ?? '/tmp/cinder-csi-plugin-image.tar';
// The storage .ci/build-image builds in: importing the tarball there reuses the layers it already holds.
const CACHE = process.env.CINDER_CSI_IMAGE_CACHE ?? '/var/cache/cinder-csi-image';
const DRIVER = process.env.BUILDAH_STORAGE_DRIVER ?? 'overlay';
const BUILDAH = [
  '--root',
  `${CACHE}/storage-${DRIVER}`,
  '--runroot',
  `/run/${basename(CACHE)}-${DRIVER}`,
  '--storage-driver',
  DRIVER,
];
/** Bound on the unpacked image; docs/benchmarks.md (Image) records the measured size. */
const MAX_UNPACKED_MIB = 600;

const missing = [
  ...missingPrereqs({ root: true, loop: true, fuse: true, commands: ['buildah'] }),
  ...(existsSync(IMAGE_TAR) ? [] : [`${IMAGE_TAR} (run .ci/build-image)`]),
];

/**
 * Every external command the node side runs: node-tools.ts' lists (what Probe and `doctor` check), mkfs for each
 * filesystem the driver formats, and every literal `exec('<tool>'` / `command: '<tool>'` in src/mount and src/fuse,
 * so a new tool in the code is a missing tool here until the Dockerfile installs it.
 */
function nodeTools(): string[] {
  const tools = new Set<string>([
    ...REQUIRED_TOOLS,
    ...OPTIONAL_TOOLS,
    ...FORMATTABLE_FS_TYPES.map((t) => `mkfs.${t}`),
  ]);
  for (const dir of ['mount', 'fuse']) {
    for (const f of readdirSync(join(ROOT, 'src', dir)).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(ROOT, 'src', dir, f), 'utf8');
      for (const m of text.matchAll(/\bexec\('([a-z0-9._-]+)'|\bcommand: '([a-z0-9._-]+)'/g)) tools.add(m[1] ?? m[2]);
    }
  }
  return [...tools].sort();
}

/** The pids below `pid` (buildah run -> buildah-chroot-exec -> the command: same PID namespace as this test). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const queue = [pid]; queue.length;)
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  return out;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function waitFor(what: string, cond: () => boolean, ms: number, out?: () => string): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms${out ? `:\n${out()}` : ''}`);
  }
}

interface Running {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** SIGTERM to the command inside (as kubelet stops a container), resolving with buildah run's exit code. */
  stop(): Promise<number | null>;
}

function describeImage(name: string, body: () => void): void {
  if (missing.length === 0) describe(name, body);
  else if (IN_CI)
    describe(name, () =>
      it('has its prerequisites', () => {
        throw new Error(`missing under CI=true: ${missing.join(', ')}`);
      }),
    );
  else describe(`${name} [missing: ${missing.join(', ')}]`, () => it.todo(`needs ${missing.join(', ')}`));
}

describeImage('the cinder-csi-plugin image', () => {
  const container = `cinder-csi-image-test-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'image-test-'));
  let rootfs = '';
  let config: { Entrypoint: string[]; WorkingDir: string; Env: string[] };
  let sim: Simulator;
  const running: Running[] = [];

  const docs = loadManifests();
  const workload = (kind: string) =>
    docs.find((d) => d.obj.kind === kind && d.file.startsWith('manifests/cinder-csi-plugin/'))!.obj;
  const ours = (kind: string, name: string) =>
    (podSpec(workload(kind)).containers as any[]).find((c) => c.name === name);

  const buildah = (...args: string[]) =>
    execFileSync('buildah', [...BUILDAH, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

  /** Runs argv in the image with the given host directories as volumes. */
  function run(
    argv: string[],
    volumes: Record<string, string>,
    securityContext?: { privileged?: boolean; capabilities?: { add?: string[] } },
  ): Running {
    const vols = Object.entries(volumes).flatMap(([inside, host]) => ['--volume', `${host}:${inside}`]);
    // What the manifest's securityContext grants; buildah's default set lacks CAP_SYS_ADMIN (mount, FUSE).
    const caps = [
      ...(securityContext?.privileged ? ['CAP_SYS_ADMIN'] : []),
      ...(securityContext?.capabilities?.add ?? []).map((c) => `CAP_${c}`),
    ];
    const capArgs = [...new Set(caps)].flatMap((c) => ['--cap-add', c]);
    const proc = spawn(
      'buildah',
      [...BUILDAH, 'run', '--isolation', 'chroot', ...capArgs, ...vols, container, '--', ...argv],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const r: Running = {
      proc,
      output: () => out,
      exited,
      stop: async () => {
        if (proc.exitCode === null) {
          const inner = descendants(proc.pid!).filter((p) => commOf(p) === 'node');
          for (const p of inner) process.kill(p, 'SIGTERM');
          if (inner.length === 0) proc.kill('SIGTERM');
        }
        return exited;
      },
    };
    running.push(r);
    return r;
  }

  /** A fresh set of the pod's volumes: the CSI socket dir, the cloud.conf Secret, kubelet's dir, FUSE dirs. */
  function podDirs(tag: string) {
    const base = join(work, tag);
    const dirs = {
      csi: join(base, 'csi'),
      config: join(base, 'config'),
      kubelet: join(base, 'kubelet'),
      fuseRun: join(base, 'run'),
      fuseState: join(base, 'state'),
    };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    writeFileSync(join(dirs.config, 'cloud.conf'), sim.cloudConf(), { mode: 0o600 });
    return dirs;
  }

  async function identity(socket: string) {
    const client = makeClient('Identity', `unix://${socket}`);
    try {
      return {
        info: await callUnary<{ name: string }>(client, 'GetPluginInfo', {}),
        probe: await callUnary(client, 'Probe', {}),
        caps: JSON.stringify(await callUnary(client, 'GetPluginCapabilities', {})),
      };
    } finally {
      client.close();
    }
  }

  beforeAll(async () => {
    // With a device plane: an attachment to the simulator's local server becomes a loop device with a by-id link.
    sim = await startSimulator({ devicePlane: { byIdDir: join(work, 'by-id'), stateDir: join(work, 'sim-state') } });
    buildah('from', '--name', container, `docker-archive:${IMAGE_TAR}`);
    rootfs = buildah('mount', container);
    config = JSON.parse(buildah('inspect', '--type', 'container', container)).OCIv1.config;
  }, 300_000);

  afterAll(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exited));
    try {
      buildah('umount', container);
      buildah('rm', container);
    } finally {
      await sim?.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("has the Dockerfile's ENTRYPOINT and WorkingDir, and /bin/cinder-csi-plugin runs the same process", () => {
    expect(config.Entrypoint).toEqual(
      JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]),
    );
    expect(config.WorkingDir).toBe('/');
    expect(config.Env).toContain('NODE_ENV=production');
    const launcher = readFileSync(join(rootfs, 'usr/bin/cinder-csi-plugin'), 'utf8');
    expect(launcher).toContain(`exec ${config.Entrypoint.join(' ')} "$@"`);
    expect(
      execFileSync(
        'buildah',
        [...BUILDAH, 'run', '--isolation', 'chroot', container, '--', '/bin/cinder-csi-plugin', 'version'],
        { encoding: 'utf8' },
      ).trim(),
    ).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('holds every tool the node side runs', () => {
    const tools = nodeTools();
    expect(tools).toEqual(
      expect.arrayContaining([
        'mkfs.ext4',
        'mkfs.xfs',
        'mkfs.btrfs',
        'blkid',
        'mount',
        'umount',
        'resize2fs',
        'e2fsck',
        'xfs_growfs',
        'udevadm',
        's3fs',
        'rclone',
        'fusermount',
        'losetup',
      ]),
    );
    // `which` prints the path of each tool it finds: the one list shows what is missing.
    let found: string;
    try {
      found = execFileSync(
        'buildah',
        [...BUILDAH, 'run', '--isolation', 'chroot', container, '--', 'which', ...tools, 'findmnt', 'fusermount3'],
        { encoding: 'utf8' },
      );
    } catch (e) {
      found = String((e as { stdout?: string }).stdout ?? '');
    }
    const paths = found.trim().split('\n');
    const have = new Set(paths.map((p) => p.split('/').pop()));
    expect([...tools, 'findmnt', 'fusermount3'].filter((t) => !have.has(t))).toEqual([]);
    // Found is not enough: every shared library each one links must be in the image too (rclone is static).
    let linked: string;
    try {
      linked = execFileSync('buildah', [...BUILDAH, 'run', '--isolation', 'chroot', container, '--', 'ldd', ...paths], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      linked = String((e as { stdout?: string }).stdout ?? '');
    }
    expect(linked.split('\n').filter((l) => l.includes('not found'))).toEqual([]);
    expect(linked.match(/^\//gm)?.length).toBe(paths.length);
  });

  it('carries no development dependency, test, source map, TypeScript source or bench code', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => path.startsWith('node_modules/') && p.dev)
      .map(([path]) => path);
    expect(devOnly).toEqual(
      expect.arrayContaining([
        'node_modules/jest',
        'node_modules/ts-jest',
        'node_modules/typescript',
        'node_modules/s3rver',
      ]),
    );
    expect(devOnly.filter((p) => existsSync(join(rootfs, 'app', p)))).toEqual([]);
    expect(existsSync(join(rootfs, 'app/node_modules/@grpc/grpc-js'))).toBe(true);
    expect(readdirSync(join(rootfs, 'app')).sort()).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'proto']);
    expect(readdirSync(join(rootfs, 'app/dist'))).toEqual(['src']);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else files.push(join(dir, e.name));
      }
    };
    walk(join(rootfs, 'app/dist'));
    expect(files.filter((f) => !f.endsWith('.js') && !f.endsWith('.json'))).toEqual([]);
    expect(files.filter((f) => /\.test\.js$/.test(f))).toEqual([]);
  });

  it(`unpacks to less than ${MAX_UNPACKED_MIB} MiB`, () => {
    const mib = Number(execFileSync('du', ['-sm', '--one-file-system', rootfs], { encoding: 'utf8' }).split('\t')[0]);
    const tarMib = Math.round(statSync(IMAGE_TAR).size / 2 ** 20);
    process.stdout.write(`image: ${mib} MiB unpacked, ${tarMib} MiB docker-archive\n`);
    expect(mib).toBeLessThan(MAX_UNPACKED_MIB);
  });

  it("starts as the controller under our manifest's arguments and answers over its unix socket", async () => {
    const dirs = podDirs('controller');
    const plugin = ours('Deployment', 'cinder-csi-plugin');
    const port = await freePort();
    // Only the metrics port moves: this test shares the host's network with whatever else listens on :9809.
    const args = expandedArgs(plugin).map((a) =>
      a.startsWith('--http-endpoint=') ? `--http-endpoint=127.0.0.1:${port}` : a,
    );
    const r = run(
      [...config.Entrypoint, ...args],
      { '/csi': dirs.csi, '/etc/config': dirs.config },
      plugin.securityContext,
    );
    await waitFor(
      'controller socket',
      () => existsSync(join(dirs.csi, 'csi.sock')) || r.proc.exitCode !== null,
      30_000,
      r.output,
    );
    const { info, probe, caps } = await identity(join(dirs.csi, 'csi.sock'));
    expect(info.name).toBe('cinder.csi.openstack.org');
    expect(probe).toEqual({ ready: { value: true } });
    expect(caps).toContain('CONTROLLER_SERVICE');
    const controller = makeClient('Controller', `unix://${join(dirs.csi, 'csi.sock')}`);
    const cap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    const created = await callUnary<{ volume: { volume_id: string } }>(controller, 'CreateVolume', {
      name: `pvc-image-${process.pid}`,
      capacity_range: { required_bytes: String(2 ** 30) },
      volume_capabilities: [cap],
    });
    await callUnary(controller, 'DeleteVolume', { volume_id: created.volume.volume_id });
    controller.close();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await r.stop()).toBe(0);
  });

  it('starts as the FUSE supervisor, which mounts with s3fs and rclone, and as the node plugin beside it, which stages ext4, xfs and btrfs volumes, as the node DaemonSet and its supervisor pod run them', async () => {
    const dirs = podDirs('node');
    const pluginSpec = ours('DaemonSet', 'cinder-csi-plugin');
    // The supervisor pod the plugin creates with --fuse-supervisor-pod (its own code builds it from its Pod).
    const supervisorSpec = buildSupervisorPod({
      plugin: { metadata: { name: 'node', namespace: 'kube-system' }, spec: podSpec(workload('DaemonSet')) },
      nodeName: 'node-1',
      socketPath: flagValue(expandedArgs(pluginSpec), 'fuse-supervisor-socket')!,
      stateDir: DEFAULT_SUPERVISOR_STATE_DIR,
      kubeletDir: '/var/lib/kubelet',
    }).spec!.containers[0] as any;
    const supArgs = expandedArgs(supervisorSpec);
    const volumes = {
      '/csi': dirs.csi,
      '/etc/config': dirs.config,
      '/var/lib/kubelet': dirs.kubelet,
      '/run/cinder-csi': dirs.fuseRun,
      [DEFAULT_SUPERVISOR_STATE_DIR]: dirs.fuseState,
    };
    const supervisor = run([...config.Entrypoint, ...supArgs], volumes, supervisorSpec.securityContext);
    const socket = flagValue(supArgs.slice(1), 'socket')!;
    const hostSocket = join(dirs.fuseRun, socket.replace('/run/cinder-csi/', ''));
    await waitFor(
      'supervisor socket',
      () => existsSync(hostSocket) || supervisor.proc.exitCode !== null,
      30_000,
      supervisor.output,
    );
    const fuse = new SupervisorClient(hostSocket);
    expect(await fuse.list()).toEqual([]);

    // The supervisor mounts with the image's s3fs and rclone (FUSE through the host's /dev/fuse) against a local S3.
    const s3 = await startS3Server();
    try {
      const u = new URL(s3.endpoint);
      await new Minio.Client({
        endPoint: u.hostname,
        port: Number(u.port),
        useSSL: false,
        accessKey: s3.accessKey,
        secretKey: s3.secretKey,
        pathStyle: true,
        region: 'us-east-1',
      }).makeBucket('image-test', 'us-east-1');
      for (const mounter of ['s3fs', 'rclone'] as const) {
        const rel = `plugins/kubernetes.io/csi/cinder.csi.openstack.org/${mounter}/globalmount`;
        mkdirSync(join(dirs.kubelet, rel), { recursive: true });
        const target = `/var/lib/kubelet/${rel}`;
        const spec = {
          volumeId: `image-${mounter}`,
          target,
          mounter,
          provider: 's3' as const,
          bucket: 'image-test',
          prefix: `${mounter}/`,
          endpoint: s3.endpoint,
          region: 'us-east-1',
          pathStyle: true,
          options: [],
          readOnly: false,
        };
        await fuse.mount(spec, { kind: 's3', accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey });
        expect((await fuse.list()).find((m) => m.target === target)).toMatchObject({ mounter, state: 'alive' });
        await fuse.unmount(target);
      }
      expect(await fuse.list()).toEqual([]);
    } finally {
      await s3.stop();
    }

    // The node plugin's `command` replaces the ENTRYPOINT; the metadata service is the simulator's (on a cloud, 169.254.169.254).
    // Without --fuse-supervisor-pod: the supervisor above plays its pod (no API server here).
    const node = run(
      [
        ...pluginSpec.command,
        ...expandedArgs(pluginSpec).filter((a) => a !== '--fuse-supervisor-pod'),
        `--metadata-url=${sim.metadataUrl}`,
        '--by-id-dir=/by-id',
      ],
      { ...volumes, '/by-id': join(work, 'by-id') },
      pluginSpec.securityContext,
    );
    await waitFor(
      'node socket',
      () => existsSync(join(dirs.csi, 'csi.sock')) || node.proc.exitCode !== null,
      30_000,
      node.output,
    );
    const { probe, caps } = await identity(join(dirs.csi, 'csi.sock'));
    // Probe checks the required tools inside the container: ready means they were found there.
    expect(probe).toEqual({ ready: { value: true } });
    expect(caps).not.toContain('CONTROLLER_SERVICE');
    const client = makeClient('Node', `unix://${join(dirs.csi, 'csi.sock')}`);
    const info = await callUnary<{ node_id: string }>(client, 'NodeGetInfo', {});
    client.close();
    expect(info.node_id).toBe(sim.localServerId);

    // A Cinder volume attached to this node is formatted and mounted by the image's mkfs and mount, each filesystem
    // the driver offers; the mounts live in the container's mount namespace, so the plugin itself reports them.
    const clients = createCloudClients(
      parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true }).clouds.get('')!,
    );
    const nodeClient = makeClient('Node', `unix://${join(dirs.csi, 'csi.sock')}`);
    try {
      for (const fsType of ['ext4', 'xfs', 'btrfs']) {
        const v = await clients.cinder.createVolume({ name: `image-${fsType}-${process.pid}`, size: 1 });
        await waitFor('volume available', () => sim.getVolume(v.id)?.status === 'available', 15_000);
        await clients.nova.attachVolume(sim.localServerId, v.id);
        await waitFor('loop device', () => sim.getVolume(v.id)?.devicePath !== undefined, 15_000);
        const rel = `plugins/kubernetes.io/csi/cinder.csi.openstack.org/${fsType}/globalmount`;
        mkdirSync(join(dirs.kubelet, rel), { recursive: true });
        const staging = `/var/lib/kubelet/${rel}`;
        const cap = {
          mount: { fs_type: fsType, mount_flags: [], volume_mount_group: '' },
          access_mode: { mode: 'SINGLE_NODE_WRITER' },
        };
        await callUnary(nodeClient, 'NodeStageVolume', {
          volume_id: v.id,
          staging_target_path: staging,
          volume_capability: cap,
        });
        const stats = await callUnary<{ usage: Array<{ total: string; unit: string }> }>(
          nodeClient,
          'NodeGetVolumeStats',
          { volume_id: v.id, volume_path: staging },
        );
        const bytes = Number(stats.usage.find((u) => u.unit === 'BYTES')!.total);
        expect({ fsType, mounted: bytes > 0.5 * 2 ** 30 && bytes <= 2 ** 30 }).toEqual({ fsType, mounted: true });
        await callUnary(nodeClient, 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: staging });
        await clients.nova.detachVolume(sim.localServerId, v.id);
        await waitFor('volume detached', () => sim.getVolume(v.id)?.status === 'available', 15_000);
        await clients.cinder.deleteVolume(v.id);
      }
    } finally {
      nodeClient.close();
    }
    expect(await node.stop()).toBe(0);
    const staged = node
      .output()
      .split('\n')
      .filter((l) => l.includes('"volume staged"'))
      .map((l) => JSON.parse(l) as { fsType: string; formatted: boolean });
    expect(staged.map((l) => [l.fsType, l.formatted])).toEqual([
      ['ext4', true],
      ['xfs', true],
      ['btrfs', true],
    ]);
    expect(await supervisor.stop()).toBe(0);
    expect(node.output()).not.toContain('"level":50');
  });

  const reference = REFERENCE_DIR
    ? referenceContainers(REFERENCE_DIR).filter((c) => c.container.name === 'cinder-csi-plugin')
    : [];
  (REFERENCE_DIR || IN_CI ? it : it.todo)(
    "runs under the reference's manifests unchanged: their args after our ENTRYPOINT, their paths",
    async () => {
      expect(reference.map((r) => r.file).sort()).toEqual([
        'cinder-csi-controllerplugin.yaml',
        'cinder-csi-nodeplugin.yaml',
      ]);
      for (const { file, container: spec } of reference) {
        const dirs = podDirs(`reference-${file}`);
        // Volumes where the reference mounts them: the socket dir at /csi, the Secret at /etc/config.
        const mounts = (spec.volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath);
        expect(mounts).toEqual(expect.arrayContaining(['/csi', '/etc/config']));
        const args = expandedArgs(spec);
        expect(args[0]).toBe('/bin/cinder-csi-plugin');
        const r = run(
          [...config.Entrypoint, ...args],
          { '/csi': dirs.csi, '/etc/config': dirs.config },
          spec.securityContext,
        );
        await waitFor(
          `${file} socket`,
          () => existsSync(join(dirs.csi, 'csi.sock')) || r.proc.exitCode !== null,
          30_000,
          r.output,
        );
        const { info, probe, caps } = await identity(join(dirs.csi, 'csi.sock'));
        expect({ file, name: info.name, probe }).toEqual({
          file,
          name: 'cinder.csi.openstack.org',
          probe: { ready: { value: true } },
        });
        expect({ file, controller: caps.includes('CONTROLLER_SERVICE') }).toEqual({
          file,
          controller: !file.includes('node'),
        });
        expect(await r.stop()).toBe(0);
      }
    },
  );
});
