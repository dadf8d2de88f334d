/**
 * Child process of the crash-safety tests: waits for a volume's device and stages it with stageFilesystem,
 * recording every command to a file and, when told, stopping for good right after one of them so the
 * parent can SIGKILL it at that point. Argument: JSON { volumeId, byIdDir, stagingPath, callsFile, pauseAfter? }.
 */
import { appendFileSync } from 'node:fs';
import { silentLogger } from '../../src/log';
import { execFile, type Exec } from '../../src/mount/exec';
import { waitForDevice } from '../../src/mount/devices';
import { stageFilesystem } from '../../src/mount/stage';

interface ChildArgs {
  volumeId: string;
  byIdDir: string;
  stagingPath: string;
  callsFile: string;
  /** 'wait' stops while waiting for the device; a command name stops right after that command ran. */
  pauseAfter?: string;
}

/** How long the child waits for the device before saying it is waiting. */
const WAIT_ANNOUNCE_MS = 300;

const args = JSON.parse(process.argv[process.argv.length - 1]) as ChildArgs;
const forever = () => new Promise<never>(() => setInterval(() => undefined, 60_000));
const pauseAt = (point: string) => {
  process.stdout.write(`paused:${point}\n`);
  return forever();
};

const exec: Exec = async (cmd, argv, opts) => {
  appendFileSync(args.callsFile, `${cmd} ${argv.join(' ')}\n`);
  const res = await execFile(cmd, argv, opts);
  if (args.pauseAfter && cmd.startsWith(args.pauseAfter)) await pauseAt(cmd);
  return res;
};

async function main(): Promise<void> {
  const deps = { exec, log: silentLogger };
  const rescanner = { rescan: async () => undefined };
  const waiting = waitForDevice(deps, args.volumeId, { byIdDir: args.byIdDir, rescanner, timeoutMs: 60_000 });
  // Announced once the wait loop has run a few polls, so the kill lands inside it.
  if (args.pauseAfter === 'wait') setTimeout(() => process.stdout.write('paused:wait\n'), WAIT_ANNOUNCE_MS);
  const dev = await waiting;
  const res = await stageFilesystem(deps, { device: dev.path, stagingPath: args.stagingPath, fsType: 'ext4' });
  process.stdout.write(`done:${JSON.stringify(res)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stdout.write(`error:${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
