/**
 * `cinder-csi-plugin simulator`: runs the OpenStack simulator in the foreground until SIGINT/SIGTERM,
 * printing its URL and (with --cloud-conf-out) writing a 0600 cloud.conf that points at it. The lead
 * wires runSimulatorCommand into the main CLI; this module only parses its own flags.
 */
import { mkdtemp, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../log';
import { startSimulator, type SimulatorOptions } from './index';

const USAGE = `Usage: cinder-csi-plugin simulator [options]
  --port N                 listen port on 127.0.0.1 (default: ephemeral)
  --state-dir DIR          backing files of volumes (device plane; default: a temp dir)
  --by-id-dir DIR          enable the device plane (root + loop devices): by-id links go here
  --delay-scale X          multiply every status-transition delay (default 1)
  --instance-id UUID       id of the local Nova server (default: random)
  --availability-zone AZ   the AZ of Cinder, Nova and the local server (default nova)
  --cloud-conf-out PATH    write a cloud.conf for this simulator (mode 0600)
  --log-level LEVEL        trace|debug|info|warn|error|silent (default info)
`;
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Delays of a demo run, before --delay-scale: slow enough to watch, fast enough not to bore. */
export const DEMO_DELAYS = {
  volumeCreate: 500,
  volumeDelete: 300,
  volumeExtend: 500,
  attach: 800,
  detach: 500,
  volumeRetype: 500,
  deviceLink: 200,
  snapshotCreate: 500,
  snapshotDelete: 300,
  backupCreate: 800,
  backupDelete: 300,
};

function parse(argv: string[]): SimulatorOptions & { cloudConfOut?: string; help?: boolean; logLevel: LogLevel } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      'state-dir': { type: 'string' },
      'by-id-dir': { type: 'string' },
      'delay-scale': { type: 'string' },
      'instance-id': { type: 'string' },
      'availability-zone': { type: 'string' },
      'cloud-conf-out': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a number >= 0, got '${v}'`);
    return n;
  };
  const port = num('port', values.port);
  if (port !== undefined && (!Number.isInteger(port) || port > 65535))
    throw new Error(`--port must be an integer 0-65535, got '${values.port}'`);
  const az = values['availability-zone'];
  const logLevel = (values['log-level'] ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`);
  return {
    logLevel,
    help: values.help,
    port,
    delays: DEMO_DELAYS,
    delayScale: num('delay-scale', values['delay-scale']),
    availabilityZones: az ? [az] : undefined,
    localServer: { id: values['instance-id'], az },
    devicePlane: values['by-id-dir'] ? { byIdDir: values['by-id-dir'], stateDir: values['state-dir'] ?? '' } : false,
    cloudConfOut: values['cloud-conf-out'],
  };
}

/** Runs the simulator until SIGINT or SIGTERM; resolves with the exit code (2 for bad flags). */
export async function runSimulatorCommand(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parse>;
  try {
    opts = parse(argv);
  } catch (e) {
    process.stderr.write(`simulator: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.devicePlane && !opts.devicePlane.stateDir)
    opts.devicePlane.stateDir = await mkdtemp(join(tmpdir(), 'cinder-csi-sim-'));
  const log = createLogger({ level: opts.logLevel, pretty: process.stdout.isTTY });
  const { cloudConfOut, logLevel: _level, help: _help, ...simOpts } = opts;
  // Listen for the signals first: one that arrives while starting still stops the simulator cleanly.
  let onSignal = (): void => undefined;
  const signalled = new Promise<void>((resolve) => {
    onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  let sim: Awaited<ReturnType<typeof startSimulator>> | undefined;
  try {
    try {
      sim = await startSimulator({ ...simOpts, logger: log });
    } catch (e) {
      process.stderr.write(`simulator: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    process.stdout.write(`simulator: ${sim.url}\nauth-url: ${sim.keystoneUrl}\nlocal server: ${sim.localServerId}\n`);
    if (cloudConfOut) {
      await writeFile(cloudConfOut, sim.cloudConf(), { mode: 0o600 });
      await chmod(cloudConfOut, 0o600); // writeFile's mode applies only when it creates the file
      process.stdout.write(`cloud.conf: ${cloudConfOut}\n`);
    }
    await signalled;
    return 0;
  } finally {
    onSignal();
    await sim?.stop();
  }
}
