/**
 * The `cinder-csi-plugin` command: with no subcommand it is the CSI plugin (reference-compatible flags);
 * subcommands are tools around it. Usage errors print one line naming the flag and exit 2.
 */
import { basename } from 'node:path';
import { parseFlags, UsageError } from './config/flags';
import { ConfigError } from './config/cloud-conf';
import { runPlugin } from './main';
import { VERSION } from './version';

const USAGE = `Usage: cinder-csi-plugin [flags]            run the CSI plugin (controller and/or node)
       cinder-csi-plugin simulator [options]  run the OpenStack simulator on 127.0.0.1
       cinder-csi-plugin demo [options]       run the whole volume lifecycle on this machine
       cinder-csi-plugin doctor [options]     check this node and its cloud
       cinder-csi-plugin fuse-supervisor [options]  own the FUSE mounts of object volumes (node)
       cinder-csi-plugin version

Plugin flags (reference-compatible): --endpoint, --cloud-config (repeatable), --cloud-name (repeatable),
  --with-topology, --additional-topology key=value (repeatable), --cluster, --http-endpoint,
  --provide-controller-service, --provide-node-service, --pvc-annotations, --user-agent (repeatable), --v
Own flags: --log-level, --log-format json|text, --kubelet-dir, --by-id-dir, --node-id, --metadata-url,
  --fuse-supervisor-socket, --fuse-supervisor-pod, --fuse-state-dir`;

type Subcommand = (argv: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, Subcommand> = {
  version: async () => {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  },
  help: async () => {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  },
  simulator: async (argv) => (await import('./simulator/cli')).runSimulatorCommand(argv),
  'fuse-supervisor': async (argv) => (await import('./fuse/supervisor-cli')).runFuseSupervisorCommand(argv),
  demo: async (argv) => (await import('./demo/demo')).runDemo(argv),
  doctor: async (argv) => (await import('./doctor/doctor-command')).runDoctorCommand(argv),
};

/**
 * The reference image has no ENTRYPOINT, only `CMD ["/bin/cinder-csi-plugin"]`, so its manifests start the plugin
 * with `args: [/bin/cinder-csi-plugin, --endpoint=..., ...]`. Our image has an ENTRYPOINT, and kubelet appends
 * those args to it: the program's own path arrives as the first argument. Dropping it (and only a first argument
 * naming this program) lets the reference's manifests run this image unchanged.
 */
export function withoutReferenceProgramPath(argv: string[]): string[] {
  return argv.length > 0 && basename(argv[0]) === 'cinder-csi-plugin' ? argv.slice(1) : argv;
}

/** Entry point; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const args = withoutReferenceProgramPath(argv);
  const [first, ...rest] = args;
  try {
    if (first === '--help' || first === '-h') return await SUBCOMMANDS.help([]);
    if (first !== undefined && !first.startsWith('-')) {
      const sub = SUBCOMMANDS[first];
      if (!sub) throw new UsageError(`unknown command "${first}" (try: cinder-csi-plugin help)`);
      return await sub(rest);
    }
    return await runPlugin(parseFlags(args));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`cinder-csi-plugin: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`cinder-csi-plugin: configuration error: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`cinder-csi-plugin: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}
