/**
 * The object bench's probes: trace parsing on lines in the kernel's fuse tracepoint format, and the /proc readers
 * on a real child process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonPidOf, parseTrace, processCpuMs, processPeakRssMiB, reapedChildrenCpuMs } from '../../bench/fuse-probe';

describe('parseTrace', () => {
  it('pairs reads with their replies and sums the write payloads', () => {
    const text = [
      '# tracer: nop',
      '     node-100 [001] ..... 10.000001: fuse_request_send: connection 58 req 10 opcode 15 (FUSE_READ) len 80 ',
      '     node-101 [000] ..... 10.000002: fuse_request_send: connection 58 req 12 opcode 15 (FUSE_READ) len 80 ',
      '   rclone-200 [000] ..... 10.000003: fuse_request_end: connection 58 req 10 len 131088 error 0',
      '   rclone-200 [001] ..... 10.000004: fuse_request_end: connection 58 req 11 len 16 error 0',
      // A failed read counts as a request but carries no bytes.
      '   rclone-200 [001] ..... 10.000005: fuse_request_end: connection 58 req 12 len 16 error -5',
      '     node-100 [001] ..... 10.000006: fuse_request_send: connection 58 req 14 opcode 16 (FUSE_WRITE) len 131152 ',
      '     node-100 [001] ..... 10.000007: fuse_request_send: connection 58 req 16 opcode 16 (FUSE_WRITE) len 65616 ',
    ].join('\n');
    expect(parseTrace(text)).toEqual({ reads: 2, readBytes: 131072, writes: 2, writeBytes: 131072 + 65536 });
  });

  it('counts nothing in an empty trace', () => {
    expect(parseTrace('# tracer: nop\n#\n')).toEqual({ reads: 0, readBytes: 0, writes: 0, writeBytes: 0 });
  });
});

describe('process probes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fuse-probe-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds a process by an argument, reads its CPU and peak RSS, and counts its CPU once reaped', async () => {
    const marker = join(dir, 'target');
    // Busy for ~300 ms, then idle until killed: the argv carries the marker as one argument, as a daemon's mountpoint.
    const child = spawn(process.execPath, [
      '-e',
      'const e=Date.now()+300;while(Date.now()<e);setInterval(()=>{},1000)',
      marker,
    ]);
    try {
      await new Promise((r) => setTimeout(r, 600));
      expect(daemonPidOf(marker)).toBe(child.pid);
      expect(daemonPidOf(`${marker}-other`)).toBeUndefined();
      expect(processCpuMs(child.pid!)).toBeGreaterThanOrEqual(200);
      expect(processPeakRssMiB(child.pid!)).toBeGreaterThan(10);
    } finally {
      const before = reapedChildrenCpuMs();
      const exited = new Promise((r) => child.on('exit', r));
      child.kill();
      await exited;
      expect(reapedChildrenCpuMs() - before).toBeGreaterThanOrEqual(200);
    }
    expect(processCpuMs(child.pid!)).toBeUndefined();
  });
});
