/**
 * Prerequisites of tests that need root, loop devices, FUSE or a Debian tool. Locally a missing
 * prerequisite skips the suite with the reason; under CI=true it fails it, so nothing is silently skipped.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export const IN_CI = process.env.CI === 'true';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$0"', cmd], { stdio: 'ignore', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    return true;
  } catch {
    return false;
  }
}

/** Returns the list of what is missing among the named prerequisites. */
export function missingPrereqs(needs: { root?: boolean; loop?: boolean; fuse?: boolean; commands?: string[]; paths?: string[] }): string[] {
  const missing: string[] = [];
  if (needs.root && process.getuid?.() !== 0) missing.push('root');
  if (needs.loop && !existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
  if (needs.fuse && !existsSync('/dev/fuse')) missing.push('/dev/fuse');
  for (const c of needs.commands ?? []) if (!has(c)) missing.push(c);
  for (const p of needs.paths ?? []) if (!existsSync(p)) missing.push(p);
  return missing;
}

/**
 * `describe` that runs when the prerequisites are there; otherwise skips locally and fails under CI.
 */
export function describeIf(
  name: string,
  needs: Parameters<typeof missingPrereqs>[0],
  body: () => void,
): void {
  const missing = missingPrereqs(needs);
  if (missing.length === 0) {
    describe(name, body);
  } else if (IN_CI) {
    describe(name, () => {
      it('has its prerequisites', () => {
        throw new Error(`missing prerequisites under CI=true: ${missing.join(', ')}`);
      });
    });
  } else {
    describe(`${name} [prerequisites missing: ${missing.join(', ')}]`, () => {
      it.todo(`needs ${missing.join(', ')}`);
    });
  }
}
