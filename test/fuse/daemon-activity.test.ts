/**
 * Hung or busy: the /proc readings the supervisor takes around a statfs that timed out, on real processes
 * (a stopped one, an idle one, one burning CPU, one moving bytes) and on a /proc tree written here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWorking, readActivity, type DaemonActivity } from '../../src/fuse/daemon-activity';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function start(cmd: string, args: string[]): number {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two readings `ms` apart, as the supervisor takes them around a probe. */
async function around(pid: number, ms = 1_000): Promise<[DaemonActivity | undefined, DaemonActivity | undefined]> {
  const before = await readActivity(pid);
  await sleep(ms);
  return [before, await readActivity(pid)];
}

describe('daemon activity', () => {
  it('a stopped process is not working, even one that was busy', async () => {
    const pid = start(process.execPath, ['-e', 'for(;;){}']);
    await sleep(200);
    process.kill(pid, 'SIGSTOP');
    await sleep(100);
    const [before, after] = await around(pid);
    expect(after).toMatchObject({ stopped: true });
    expect(after!.cpuTicks).toBe(before!.cpuTicks);
    expect(isWorking(before, after)).toBe(false);
  });

  it('an idle process (a deadlock looks the same) is not working', async () => {
    const pid = start('sleep', ['60']);
    await sleep(200);
    const [before, after] = await around(pid);
    expect(after).toMatchObject({ stopped: false });
    expect(isWorking(before, after)).toBe(false);
  });

  it('a process spending CPU is working', async () => {
    const pid = start(process.execPath, ['-e', 'for(;;){}']);
    const [before, after] = await around(pid);
    expect(after!.cpuTicks - before!.cpuTicks).toBeGreaterThan(50);
    expect(isWorking(before, after)).toBe(true);
  });

  it('a process moving bytes is working (rchar/wchar)', async () => {
    const pid = start('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=64k']);
    const [before, after] = await around(pid, 300);
    expect(after!.ioBytes).toBeGreaterThan(before!.ioBytes);
    expect(isWorking(before, { ...after!, cpuTicks: before!.cpuTicks })).toBe(true);
  });

  it('a process that is gone reads as unknown, which counts as not working', async () => {
    const c = spawn('true');
    await new Promise((r) => c.once('exit', r));
    expect(await readActivity(c.pid!)).toBeUndefined();
    expect(isWorking(undefined, undefined)).toBe(false);
  });

  it('sums the threads and reads past a command name with spaces and parentheses', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'proc-'));
    try {
      const stat = (state: string, utime: number, stime: number) =>
        `7 (s3fs (x) y) ${state} 1 7 7 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 2 0 100 0 0\n`;
      for (const [tid, state, u, s] of [
        ['7', 'S', 10, 5],
        ['8', 'T', 3, 1],
      ] as const) {
        mkdirSync(join(proc, '7', 'task', tid), { recursive: true });
        writeFileSync(join(proc, '7', 'task', tid, 'stat'), stat(state, u, s));
      }
      writeFileSync(join(proc, '7', 'io'), 'rchar: 1000\nwchar: 24\nsyscr: 3\n');
      expect(await readActivity(7, proc)).toEqual({ stopped: false, cpuTicks: 19, ioBytes: 1024 });
      writeFileSync(join(proc, '7', 'task', '7', 'stat'), stat('t', 10, 5));
      expect(await readActivity(7, proc)).toMatchObject({ stopped: true });
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});
