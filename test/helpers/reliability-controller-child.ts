/**
 * The Controller plugin as production starts it (startPlugin with real flags), alone in its own process so
 * the load test can measure its heap and prove it survived. argv: <endpoint> <cloud.conf path>. Prints
 * `READY` once serving; on SIGUSR2 it collects garbage and prints `HEAP <n> <heapUsed> <rss>` (bytes).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseFlags } from '../../src/config/flags';
import { createLogger } from '../../src/log';
import { startPlugin } from '../../src/main';

// The test runner cannot pass --expose-gc to this child; a fresh context created after the flag is set has gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function main(): Promise<void> {
  const [endpoint, cloudConf] = process.argv.slice(2);
  const flags = parseFlags([
    '--endpoint',
    endpoint,
    '--cloud-config',
    cloudConf,
    '--provide-node-service=false',
    '--log-level',
    'error',
  ]);
  await startPlugin(flags, createLogger({ level: 'error' }));
  let n = 0;
  process.on('SIGUSR2', () => {
    // Ten passes: later ones free what earlier ones only finalized, and V8 flushes the bytecode of functions
    // unused for several major GCs (the TypeScript loader), which would otherwise fall out of a later reading.
    for (let i = 0; i < 10; i++) gc();
    const m = process.memoryUsage();
    n += 1;
    process.stdout.write(`HEAP ${n} ${m.heapUsed} ${m.rss}\n`);
  });
  process.stdout.write('READY\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`controller child failed: ${String(err)}\n`);
  process.exit(1);
});
