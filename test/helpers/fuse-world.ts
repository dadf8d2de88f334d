/**
 * A world for object-volume node tests: s3rver and the FUSE supervisor as separate processes, the Node
 * service (real KernelNodeMounter, SupervisorClient) on a gRPC socket in this process, a temp kubelet dir,
 * and a close() that always unmounts, kills every daemon of the world and removes its files.
 */
import { execFile as execFileCb } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadCsiProto } from '../../src/csi/proto';
import { nodeHandlers, type NodeDeps } from '../../src/csi/node';
import { silentLogger } from '../../src/log';
import { readMountInfo } from '../../src/mount/mountinfo';
import { KernelNodeMounter } from '../../src/mount/node-mounter';
import { startHarness, type CsiHarness } from './csi-harness';
import {
  pidsMentioning,
  startS3rverProcess,
  startSupervisorProcess,
  type Proc,
  type SupervisorProc,
} from './fuse-procs';

export const execAsync = promisify(execFileCb);
/** s3rver's only key pair. */
export const S3_SECRETS = { accessKeyID: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface FuseWorld {
  dir: string;
  kubeletDir: string;
  stateDir: string;
  socket: string;
  supervisorLog: string;
  s3: Proc & { endpoint: string };
  supervisor: SupervisorProc;
  h: CsiHarness;

  call<T = any>(rpc: string, req?: object): Promise<T>;
  path(name: string): string;
  /** Kills the supervisor (SIGKILL) and starts a new one on the same socket and state dir. */
  restartSupervisor(): Promise<void>;
  close(): Promise<void>;
}

/** A filesystem capability as kubelet sends it for RWX. */
export const objCap = (mode = 'MULTI_NODE_MULTI_WRITER', volume_mount_group = '') => ({
  mount: { fs_type: '', mount_flags: [], volume_mount_group },
  access_mode: { mode },
});

/** Builds the world; `buckets` are created in s3rver. */
export async function startFuseWorld(buckets: string[]): Promise<FuseWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'fuse-'));
  const kubeletDir = join(dir, 'kubelet');
  const stateDir = join(dir, 'state');
  const socket = join(dir, 'supervisor.sock');
  const supervisorLog = join(dir, 'supervisor.log');
  await mkdir(kubeletDir, { recursive: true });
  const s3 = await startS3rverProcess(join(dir, 's3'), buckets);
  const startSup = () => startSupervisorProcess({ socket, stateDir, kubeletDir, logFile: supervisorLog });
  const world = { supervisor: await startSup() } as { supervisor: SupervisorProc };
  const deps: NodeDeps = {
    mounter: new KernelNodeMounter({ log: silentLogger, rescanner: { rescan: async () => undefined } }),
    metadata: { get: async () => ({ uuid: 'node-1' }) },
    nodeId: 'node-1',
    blockStorage: { rescanOnResize: false, ignoreVolumeAz: false, ignoreVolumeMicroversion: false },
    withTopology: false,
    additionalTopology: {},
    kubeletDir,
    byIdDir: join(dir, 'by-id'),
    log: silentLogger,
    // The socket client reconnects per request, so a restarted supervisor is picked up transparently.
    fuse: world.supervisor.client,
  };
  const h = await startHarness([{ definition: loadCsiProto().NodeService, handlers: nodeHandlers(deps) }]);
  return {
    dir,
    kubeletDir,
    stateDir,
    socket,
    supervisorLog,
    s3,
    h,
    get supervisor() {
      return world.supervisor;
    },
    call: (rpc, req = {}) => h.call('Node', rpc, req, 40_000),
    path: (name) => join(kubeletDir, name),
    async restartSupervisor() {
      await world.supervisor.kill();
      world.supervisor = await startSup();
    },
    async close() {
      await h.close().catch(() => undefined);
      await world.supervisor.kill();
      await cleanupUnder(dir);
      await s3.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Lazily unmounts every mount under `dir` (innermost first) and SIGKILLs every process naming `dir`. */
export async function cleanupUnder(dir: string): Promise<void> {
  const mounts = (await readMountInfo().catch(() => [])).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) {
    await execAsync('fusermount', ['-uz', m.mountPoint])
      .catch(() => execAsync('umount', ['-l', m.mountPoint]))
      .catch(() => undefined);
  }
  for (const pid of pidsMentioning(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Runs `argv` as uid/gid `id` with no supplementary groups; resolves with exit code and output. */
export async function runAs(id: number, argv: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await execAsync('setpriv', [`--reuid=${id}`, `--regid=${id}`, '--clear-groups', ...argv], {
      timeout: 20_000,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}
