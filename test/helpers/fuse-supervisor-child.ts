/**
 * Child process of the FUSE tests: the `fuse-supervisor` subcommand run from source. Arguments are the
 * subcommand's flags; it logs JSON to stdout (a file the test owns) until SIGTERM or SIGKILL.
 */
import { runFuseSupervisorCommand } from '../../src/fuse/supervisor-cli';

runFuseSupervisorCommand(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stdout.write(`fatal: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
