/**
 * Child process of the crash tests: the real plugin entry point (src/cli.ts main, the code bin/ runs) with
 * the flags given as a JSON array, so a test can SIGKILL the whole driver process, not an in-process server.
 */
import { main } from '../../src/cli';

const argv = JSON.parse(process.argv[process.argv.length - 1]) as string[];

main(argv).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`error:${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
