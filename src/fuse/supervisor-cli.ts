/**
 * `cinder-csi-plugin fuse-supervisor --socket <path> --state-dir <dir> --kubelet-dir <dir>`: the long-lived
 * process (its own DaemonSet container) that owns the FUSE daemons. It exits on SIGTERM/SIGINT leaving every
 * mount and daemon running; the next supervisor with the same state dir adopts them.
 */
import { UsageError } from '../config/flags';
import { createLogger, type LogLevel } from '../log';
import { FuseSupervisor } from './supervisor';
import { SupervisorServer } from './supervisor-server';

/** Defaults matching the DaemonSet layout. */
export const DEFAULT_SUPERVISOR_FLAGS = {
  socket: '/run/cinder-csi/fuse-supervisor.sock',
  stateDir: '/var/lib/cinder-csi/fuse',
  kubeletDir: '/var/lib/kubelet',
  logLevel: 'info' as LogLevel,
};

export type SupervisorFlags = typeof DEFAULT_SUPERVISOR_FLAGS;

/** Parses the subcommand's flags (`--name value` or `--name=value`). Throws UsageError naming the flag. */
export function parseSupervisorFlags(argv: readonly string[]): SupervisorFlags {
  const names: Record<string, keyof SupervisorFlags> = {
    '--socket': 'socket',
    '--state-dir': 'stateDir',
    '--kubelet-dir': 'kubeletDir',
    '--log-level': 'logLevel',
  };
  const out = { ...DEFAULT_SUPERVISOR_FLAGS };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const key = names[flag];
    if (!key) throw new UsageError(`fuse-supervisor: unknown flag ${flag}`);
    const value = inline ?? argv[++i];
    if (!value) throw new UsageError(`fuse-supervisor: ${flag} needs a value`);
    (out as Record<string, string>)[key] = value;
  }
  return out;
}

/** Runs the supervisor until SIGTERM/SIGINT; resolves with the exit code. */
export async function runFuseSupervisorCommand(argv: string[]): Promise<number> {
  const flags = parseSupervisorFlags(argv);
  const log = createLogger({ level: flags.logLevel }).child({ component: 'fuse-supervisor' });
  const supervisor = new FuseSupervisor({ stateDir: flags.stateDir, kubeletDir: flags.kubeletDir, log });
  await supervisor.start();
  const server = new SupervisorServer({ supervisor, socketPath: flags.socket, log });
  await server.listen();
  log.info(
    { socket: flags.socket, stateDir: flags.stateDir, mounts: supervisor.list().length },
    'FUSE supervisor ready',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  supervisor.stop();
  await server.close();
  log.info('FUSE supervisor stopped; mounts left running');
  return 0;
}
