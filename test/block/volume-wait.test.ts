/** The status poller: its schedule, fail-fast, transient errors, deadlines, and its latency against the simulator. */
import { Status } from '../../src/errors';
import { OpenStackError } from '../../src/openstack/errors';
import type { CinderVolume } from '../../src/openstack/cinder';
import {
  POLL_INITIAL_MS,
  POLL_MAX_MS,
  nextPollDelay,
  pollUntil,
  waitForVolume,
  waitForVolumeGone,
} from '../../src/block/volume-wait';
import { internal } from '../../src/csi/errors';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { createClouds } from '../../src/openstack/clients';
import { startSimulator } from '../../src/simulator';

/** A fake clock whose sleep advances time instantly, recording every pause. */
function fakeTime() {
  let t = 0;
  const pauses: number[] = [];
  return {
    pauses,
    now: () => t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      pauses.push(ms);
      t += ms;
    },
  };
}

const vol = (status: string, servers: string[] = []): CinderVolume =>
  ({
    id: 'v1',
    name: 'n',
    status,
    size: 1,
    metadata: {},
    attachments: servers.map((server_id) => ({ server_id })),
  }) as CinderVolume;

function scripted(statuses: Array<string | Error>) {
  let i = 0;
  const calls: number[] = [];
  return {
    calls,
    getVolume: async () => {
      calls.push(i);
      const s = statuses[Math.min(i++, statuses.length - 1)];
      if (s instanceof Error) throw s;
      return vol(s);
    },
  };
}

const unavailable = () =>
  new OpenStackError({
    kind: 'unavailable',
    service: 'cinder',
    operation: 'volume.get',
    method: 'GET',
    path: '/v',
    status: 503,
  });

describe('nextPollDelay', () => {
  it('keeps the initial 250 ms interval for the first 5 s, then grows by 1.2 up to 2 s', () => {
    expect(nextPollDelay(0, undefined)).toBe(POLL_INITIAL_MS);
    expect(nextPollDelay(4_999, 250)).toBe(250);
    expect(nextPollDelay(5_000, 250)).toBe(300);
    expect(nextPollDelay(20_000, 1_900)).toBe(POLL_MAX_MS);
  });

  it('never goes below the initial interval', () => {
    expect(nextPollDelay(6_000, 10)).toBe(POLL_INITIAL_MS);
  });
});

describe('pollUntil', () => {
  it('makes at most one GET per 250 ms and gently backs off over a long wait', async () => {
    const time = fakeTime();
    const cinder = scripted([...Array(40).fill('creating'), 'available']);
    await waitForVolume(cinder, 'v1', (v) => v.status === 'available', { now: time.now, sleep: time.sleep });
    expect(time.pauses.every((p) => p >= 250 && p <= 2000)).toBe(true);
    expect(time.pauses.slice(0, 20).every((p) => p === 250)).toBe(true);
    expect(time.pauses[time.pauses.length - 1]).toBe(2000);
  });

  it("fails fast on a terminal state with the caller's error", async () => {
    const time = fakeTime();
    const cinder = scripted(['creating', 'error']);
    const p = waitForVolume(cinder, 'v1', (v) => v.status === 'available', {
      now: time.now,
      sleep: time.sleep,
      failOn: (v) => (v.status === 'error' ? internal('went to error') : undefined),
    });
    await expect(p).rejects.toMatchObject({ code: Status.INTERNAL, details: 'went to error' });
    expect(cinder.calls).toHaveLength(2);
  });

  it('polls through transient 5xx failures', async () => {
    const time = fakeTime();
    const cinder = scripted(['creating', unavailable(), unavailable(), 'available']);
    const v = await waitForVolume(cinder, 'v1', (x) => x.status === 'available', { now: time.now, sleep: time.sleep });
    expect(v.status).toBe('available');
  });

  it('throws other errors at once', async () => {
    const time = fakeTime();
    const gone = new OpenStackError({
      kind: 'not-found',
      service: 'cinder',
      operation: 'volume.get',
      method: 'GET',
      path: '/v',
      status: 404,
    });
    await expect(waitForVolume(scripted([gone]), 'v1', () => true, { now: time.now, sleep: time.sleep })).rejects.toBe(
      gone,
    );
  });

  it('answers DEADLINE_EXCEEDED naming what it waited for and the last status when the signal fires', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('deadline')), 120);
    const p = waitForVolume(scripted(['attaching']), 'v1', () => false, {
      signal: ctl.signal,
      initialMs: 50,
      what: 'volume v1 to attach',
    });
    await expect(p).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    await expect(p).rejects.toThrow(/volume v1 to attach: last seen status attaching/);
  });

  it('pauses first when asked to, so a fresh change is not polled at once', async () => {
    const time = fakeTime();
    await pollUntil(
      async () => 1,
      () => true,
      String,
      { now: time.now, sleep: time.sleep, startWithPause: true },
    );
    expect(time.pauses).toEqual([250]);
  });

  it('treats 404 as done when waiting for a volume to be gone', async () => {
    const time = fakeTime();
    const notFound = new OpenStackError({
      kind: 'not-found',
      service: 'cinder',
      operation: 'volume.get',
      method: 'GET',
      path: '/v',
      status: 404,
    });
    await waitForVolumeGone(scripted(['deleting', notFound]), 'v1', { now: time.now, sleep: time.sleep });
  });
});

describe('waitForVolume against the simulator', () => {
  it('ends within 300 ms of the simulated transition', async () => {
    const sim = await startSimulator({ devicePlane: false, delays: { volumeCreate: 700 } });
    try {
      const conf = parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true });
      const { cinder } = createClouds(conf.clouds, ['']).get('')!;
      const created = await cinder.createVolume({ name: 'timed', size: 1 });
      sim.resetCounters();
      await waitForVolume(cinder, created.id, (v) => v.status === 'available', { startWithPause: true });
      const doneAt = Date.now();
      const availableAt = sim.getVolume(created.id)!.statusHistory.find((h) => h.status === 'available')!.at;
      expect(doneAt - availableAt).toBeLessThanOrEqual(300);
      expect(sim.counters()['cinder.volume.get']).toBeLessThanOrEqual(4);
    } finally {
      await sim.stop();
    }
  });
});
