/**
 * Child process of the reliability suites: exactly what bin/cinder-csi-plugin does, but on the TypeScript
 * sources (through the transpile-on-load hook), so the suites test the code in the tree rather than a
 * possibly stale dist/. Arguments are the plugin's command line.
 */
import { main } from '../../src/cli';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`cinder-csi-plugin: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
