import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from '../../src/errors';
import { silentLogger } from '../../src/log';
import type { Exec } from '../../src/mount/exec';
import {
  createBusRescanner,
  deviceLinkCandidates,
  findDeviceLink,
  waitForDevice,
  type BusRescanner,
} from '../../src/mount/devices';

const VOLUME_ID = 'c0ffee00-1234-4abc-9def-0123456789ab';

/** A rescanner that only counts, so waits can be driven without touching buses. */
function countingRescanner(): BusRescanner & { count: number } {
  const r = {
    count: 0,
    async rescan() {
      r.count++;
    },
  };
  return r;
}

const deps = { exec: (async () => ({ stdout: '', stderr: '', code: 0 })) as Exec, log: silentLogger };

describe('deviceLinkCandidates', () => {
  it('lists the five by-id names of the reference in its order', () => {
    expect(deviceLinkCandidates(VOLUME_ID)).toEqual([
      'virtio-c0ffee00-1234-4abc-9',
      `virtio-${VOLUME_ID}`,
      'scsi-0QEMU_QEMU_HARDDISK_c0ffee00-1234-4abc-9',
      `scsi-0QEMU_QEMU_HARDDISK_${VOLUME_ID}`,
      'wwn-0xc0ffee0012344abc9def0123456789ab',
    ]);
  });

  it('accepts an id shorter than the 20-character serial and drops the duplicate names', () => {
    expect(deviceLinkCandidates('short-id')).toEqual([
      'virtio-short-id',
      'scsi-0QEMU_QEMU_HARDDISK_short-id',
      'wwn-0xshortid',
    ]);
  });
});

describe('waitForDevice without a device', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'by-id-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('throws DEADLINE_EXCEEDED naming the volume, the directory and the candidates when no link appears', async () => {
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 250,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(err.message).toContain(VOLUME_ID);
    expect(err.message).toContain(dir);
    expect(err.message).toContain('wwn-0xc0ffee0012344abc9def0123456789ab');
  });

  it('honours an absolute deadline earlier than the timeout', async () => {
    const t0 = Date.now();
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 10_000,
      deadlineMs: t0 + 200,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('stops waiting when the caller aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      signal: ac.signal,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('returns at once when the signal was aborted before the call', async () => {
    const r = countingRescanner();
    const err = await waitForDevice(deps, VOLUME_ID, { byIdDir: dir, signal: AbortSignal.abort(), rescanner: r }).catch(
      (e) => e,
    );
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(r.count).toBe(0);
  });

  it('rescans the buses on a miss, throttled to the rescan interval', async () => {
    const r = countingRescanner();
    await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 1_050,
      rescanIntervalMs: 300,
      pollIntervalMs: 20,
      rescanner: r,
    }).catch(() => undefined);
    // At 0, 300, 600, 900 ms: four, give or take timer jitter; never one per poll (about 50).
    expect(r.count).toBeGreaterThanOrEqual(3);
    expect(r.count).toBeLessThanOrEqual(5);
  });

  it('waits for a by-id directory that does not exist yet', async () => {
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: join(dir, 'missing'),
      timeoutMs: 150,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
  });

  it('refuses a link that resolves to a regular file with FAILED_PRECONDITION', async () => {
    await writeFile(join(dir, 'not-a-disk'), 'x');
    await symlink(join(dir, 'not-a-disk'), join(dir, `virtio-${VOLUME_ID}`));
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 1_000,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(err.message).toContain(VOLUME_ID);
  });

  it('refuses a link to a character device under /dev with FAILED_PRECONDITION', async () => {
    await symlink('/dev/null', join(dir, `wwn-0x${VOLUME_ID.replace(/-/g, '')}`));
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 1_000,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(err.message).toContain('not a block device');
  });

  it('treats a dangling link as not there yet', async () => {
    await symlink(join(dir, 'gone'), join(dir, `virtio-${VOLUME_ID}`));
    expect(await findDeviceLink(VOLUME_ID, dir)).toBe(join(dir, `virtio-${VOLUME_ID}`));
    const err = await waitForDevice(deps, VOLUME_ID, {
      byIdDir: dir,
      timeoutMs: 200,
      rescanner: countingRescanner(),
    }).catch((e) => e);
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
  });
});

describe('createBusRescanner', () => {
  let sys: string;
  beforeEach(async () => {
    sys = await mkdtemp(join(tmpdir(), 'sys-'));
    for (const h of ['host0', 'host1']) {
      await mkdir(join(sys, 'class', 'scsi_host', h), { recursive: true });
      await writeFile(join(sys, 'class', 'scsi_host', h, 'scan'), '');
    }
  });
  afterEach(() => rm(sys, { recursive: true, force: true }));

  function recordingExec() {
    const calls: string[][] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push([cmd, ...args]);
      return { stdout: '', stderr: '', code: 0 };
    };
    return { exec, calls };
  }

  it('writes "- - -" to every SCSI host scan file', async () => {
    const { exec } = recordingExec();
    await createBusRescanner(
      { exec, log: silentLogger, sysDir: sys },
      { udevControlPath: join(sys, 'no-udev') },
    ).rescan();
    for (const h of ['host0', 'host1']) {
      expect(await readFile(join(sys, 'class', 'scsi_host', h, 'scan'), 'utf8')).toBe('- - -');
    }
  });

  it('runs a block-only udev trigger and a bounded settle only where udev runs', async () => {
    const without = recordingExec();
    await createBusRescanner(
      { exec: without.exec, log: silentLogger, sysDir: sys },
      { udevControlPath: join(sys, 'no-udev') },
    ).rescan();
    expect(without.calls).toEqual([]);

    await writeFile(join(sys, 'udev-control'), '');
    const withUdev = recordingExec();
    await createBusRescanner(
      { exec: withUdev.exec, log: silentLogger, sysDir: sys },
      { udevControlPath: join(sys, 'udev-control'), settleTimeoutS: 3 },
    ).rescan();
    expect(withUdev.calls).toEqual([
      ['udevadm', 'trigger', '--action=change', '--subsystem-match=block'],
      ['udevadm', 'settle', '--timeout=3'],
    ]);
  });

  it('does nothing and does not fail on a machine without SCSI hosts or udev', async () => {
    const { exec, calls } = recordingExec();
    const empty = await mkdtemp(join(tmpdir(), 'sys-empty-'));
    await expect(
      createBusRescanner({ exec, log: silentLogger, sysDir: empty }, { udevControlPath: join(empty, 'x') }).rescan(),
    ).resolves.toBeUndefined();
    expect(calls).toEqual([]);
    await rm(empty, { recursive: true });
  });
});
