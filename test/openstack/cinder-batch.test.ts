/**
 * Coalesced volume reads (src/openstack/cinder-batch.ts) through the real CinderClient against the simulator:
 * many volumes read at once cost one list, a few cost GETs, and every read answers what a GET would.
 */
import { setMaxListeners } from 'node:events';
import { waitForVolume } from '../../src/block/volume-wait';
import {
  COALESCE_MIN_VOLUMES,
  LIST_DUTY_FACTOR,
  LIST_MIN_INTERVAL_MS,
  LIST_WASTE_FACTOR,
  VolumeReadBatcher,
} from '../../src/openstack/cinder-batch';
import type { CinderVolume } from '../../src/openstack/cinder';
import { isNotFound } from '../../src/openstack/errors';
import { startSimulator, type Simulator } from '../../src/simulator';
import { clientsFor, passwordAuth, type TestClients } from './sim-clients';

describe('CinderClient.getVolume coalescing', () => {
  let sim: Simulator;
  let c: TestClients;
  let ids: string[];

  beforeEach(async () => {
    sim = await startSimulator();
    c = clientsFor(passwordAuth(sim));
    ids = [];
    for (let i = 0; i < COALESCE_MIN_VOLUMES + 8; i++)
      ids.push((await c.cinder.createVolume({ name: `v${i}`, size: 1 })).id);
    sim.resetCounters();
  });
  afterEach(() => sim.stop());

  const reads = () => {
    const n = sim.counters();
    return { get: n['cinder.volume.get'] ?? 0, list: n['cinder.volume.list'] ?? 0 };
  };

  it('reads a few volumes with one GET each', async () => {
    const few = ids.slice(0, 5);
    const got = await Promise.all(few.map((id) => c.cinder.getVolume(id)));
    expect(got.map((v) => v.id)).toEqual(few);
    expect(reads()).toEqual({ get: 5, list: 0 });
  });

  it('answers dozens of concurrent reads from lists, each with the volume a GET returns', async () => {
    // The first COALESCE_MIN_VOLUMES - 1 reads are GETs; the rest share lists.
    const got = await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(got.map((v) => v.id)).toEqual(ids);
    for (const v of got) expect(v).toEqual(await c.cinder.getVolume(v.id));
    sim.resetCounters();
    const again = await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(again.map((v) => v.status)).toEqual(ids.map(() => 'available'));
    const r = reads();
    expect(r.get).toBe(0);
    expect(r.list).toBeGreaterThanOrEqual(1);
    expect(r.list).toBeLessThanOrEqual(2);
  });

  it('never answers from a list sent before the read: a status change is seen at once', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.setVolumeStatus(ids[3], 'error');
    const got = await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(got[3].status).toBe('error');
  });

  it('answers NOT_FOUND without a GET for a listed volume missing from the next complete list', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    await c.cinder.deleteVolume(ids[0]);
    sim.resetCounters();
    const results = await Promise.allSettled(ids.map((id) => c.cinder.getVolume(id)));
    expect(results[0].status).toBe('rejected');
    expect(isNotFound((results[0] as PromiseRejectedResult).reason)).toBe(true);
    expect(results.slice(1).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(reads().get).toBe(0);
  });

  it("reads a volume no list has shown with its own GET, so its answer is the GET's (found or NOT_FOUND)", async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    const unknown = '00000000-0000-4000-8000-000000000000';
    sim.resetCounters();
    const results = await Promise.allSettled([...ids, unknown].map((id) => c.cinder.getVolume(id)));
    expect(isNotFound((results[ids.length] as PromiseRejectedResult).reason)).toBe(true);
    expect(reads().get).toBe(1);
  });

  it("answers dozens of concurrent by-name lookups from the shared list, as Cinder's name filter would", async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    const dup = await c.cinder.createVolume({ name: 'v1', size: 1 });
    sim.resetCounters();
    const names = ids.map((_, i) => `v${i}`).concat('nobody');
    const got = await Promise.all(names.map((n) => c.cinder.listVolumesByName(n)));
    expect(got[1].map((v) => v.id).sort()).toEqual([ids[1], dup.id].sort());
    expect(got[2].map((v) => v.id)).toEqual([ids[2]]);
    expect(got[names.length - 1]).toEqual([]);
    const n = sim.counters();
    // Two rounds at most: a read that arrives while a list is in flight waits for the next one.
    expect(n['cinder.volume.list']).toBeLessThanOrEqual(2);
    expect(n['cinder.volume.get'] ?? 0).toBe(0);
  });

  it('falls back to GETs when the list fails, so each reader sees a GET outcome', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.injectFault('cinder.volume.list', { kind: 'http-status', status: 500, times: Infinity });
    sim.resetCounters();
    const got = await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(got.map((v) => v.id)).toEqual(ids);
    expect(reads().get).toBe(ids.length);
  });

  it('goes back to GETs when a list returns far more volumes than are read', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    const wanted = ids.length;
    for (let i = 0; i < wanted * LIST_WASTE_FACTOR; i++) await c.cinder.createVolume({ name: `other${i}`, size: 1 });
    // One more batch learns the list's size; after it, the same reads are GETs.
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.resetCounters();
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(reads()).toEqual({ get: wanted, list: 0 });
  });

  it('paces readers by the lists: listed volumes read again at once, missing ones and failed lists keep their cadence', async () => {
    expect(c.cinder.readPaced(ids[1])).toBe(false);
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    expect(ids.every((id) => c.cinder.readPaced(id))).toBe(true);
    await c.cinder.deleteVolume(ids[0]);
    await Promise.allSettled(ids.map((id) => c.cinder.getVolume(id)));
    expect(c.cinder.readPaced(ids[0])).toBe(false);
    expect(c.cinder.readPaced(ids[1])).toBe(true);
    sim.injectFault('cinder.volume.list', { kind: 'http-status', status: 500, times: Infinity });
    await Promise.all(ids.slice(1).map((id) => c.cinder.getVolume(id)));
    expect(c.cinder.readPaced(ids[1])).toBe(false);
    sim.clearFaults();
    await Promise.all(ids.slice(1).map((id) => c.cinder.getVolume(id)));
    expect(c.cinder.readPaced(ids[1])).toBe(true);
  });

  it('waiters on dozens of volumes read from every list instead of sleeping, with lists spaced, not one per waiter', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.resetCounters();
    const started = Date.now();
    // Sleeping is what a waiter does between its own reads; following the lists, it never sleeps.
    const sleeps: number[] = [];
    const sleep = (ms: number) => {
      sleeps.push(ms);
      return new Promise<void>((r) => setTimeout(r, ms));
    };
    const waits = ids.map((id) => waitForVolume(c.cinder, id, (v) => v.status === 'error', { what: id, sleep }));
    setTimeout(() => ids.forEach((id) => sim.setVolumeStatus(id, 'error')), 600);
    await Promise.all(waits);
    const tookMs = Date.now() - started;
    const { get, list } = reads();
    expect(sleeps).toEqual([]);
    expect(get).toBe(0);
    // One list per spacing at most, whatever the number of waiters.
    expect(list).toBeLessThanOrEqual(Math.ceil(tookMs / LIST_MIN_INTERVAL_MS) + 1);
  });

  it('waiters watch the lists: one wake-up per wait, not one per list, and failOn still sees every state', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.resetCounters();
    let watches = 0;
    let gets = 0;
    const counted = {
      getVolume: (id: string, s?: AbortSignal) => (gets++, c.cinder.getVolume(id, s)),
      readPaced: (id: string) => c.cinder.readPaced(id),
      watchVolume: (id: string, stop: (v: CinderVolume) => boolean, s?: AbortSignal) => (
        watches++,
        c.cinder.watchVolume(id, stop, s)
      ),
    };
    const seen = new Map<string, string[]>(ids.map((id) => [id, []]));
    const waits = ids.map((id) =>
      waitForVolume(counted, id, (v) => v.status === 'in-use', {
        what: id,
        failOn: (v) => {
          const statuses = seen.get(id)!;
          if (statuses[statuses.length - 1] !== v.status) statuses.push(v.status);
          return undefined;
        },
      }),
    );
    setTimeout(() => ids.forEach((id) => sim.setVolumeStatus(id, 'attaching')), 300);
    setTimeout(() => ids.forEach((id) => sim.setVolumeStatus(id, 'in-use')), 600);
    await Promise.all(waits);
    const lists = sim.counters()['cinder.volume.list'];
    expect(lists).toBeGreaterThanOrEqual(8);
    expect(gets).toBe(ids.length);
    // At most two watches per waiter (one that ends on a failOn-visible state is followed by another).
    expect(watches).toBeLessThanOrEqual(2 * ids.length);
    for (const id of ids) expect(seen.get(id)).toEqual(['available', 'attaching']);
  });

  it('a watched volume that is deleted ends the watch with NOT_FOUND, and a cancelled watch stops being served', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    sim.resetCounters();
    const quitter = new AbortController();
    const rest = new AbortController();
    // One signal for every other watcher here (a CSI call has its own, with one or two listeners).
    setMaxListeners(ids.length, rest.signal);
    let stopsAfterAbort = 0;
    const watches = Promise.allSettled(
      ids.map((id, i) =>
        c.cinder.watchVolume(
          id,
          () => {
            if (quitter.signal.aborted && i === 1) stopsAfterAbort++;
            return false;
          },
          i === 1 ? quitter.signal : i > 1 ? rest.signal : undefined,
        ),
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    quitter.abort(new Error('caller gone'));
    await c.cinder.deleteVolume(ids[0]);
    await new Promise((r) => setTimeout(r, 200));
    rest.abort(new Error('test over'));
    const results = await watches;
    expect(isNotFound((results[0] as PromiseRejectedResult).reason)).toBe(true);
    expect(results[1]).toEqual({ status: 'rejected', reason: new Error('caller gone') });
    expect(results.slice(2).every((r) => r.status === 'rejected' && (r.reason as Error).message === 'test over')).toBe(
      true,
    );
    expect(stopsAfterAbort).toBe(0);
    expect(sim.counters()['cinder.volume.get'] ?? 0).toBe(0);
  });

  it('rejects a reader whose signal fires while its batch is pending, and serves the others', async () => {
    await Promise.all(ids.map((id) => c.cinder.getVolume(id)));
    const ac = new AbortController();
    const reasons = new Error('caller gone');
    const pending = ids.map((id, i) => c.cinder.getVolume(id, i === 0 ? ac.signal : undefined));
    ac.abort(reasons);
    const results = await Promise.allSettled(pending);
    expect(results[0]).toEqual({ status: 'rejected', reason: reasons });
    expect(results.slice(1).every((r) => r.status === 'fulfilled')).toBe(true);
  });
});

describe('VolumeReadBatcher with a list that has a next page', () => {
  type V = { id: string; name: string };
  const many = Array.from({ length: COALESCE_MIN_VOLUMES + 4 }, (_, i) => ({ id: `id-${i}`, name: `n-${i}` }));

  function batcher(complete: boolean, listMs = 0) {
    const calls = { get: 0, getByName: 0, list: 0, listStarts: [] as number[] };
    let listed = many;
    const b = new VolumeReadBatcher<V>({
      get: async (id) => {
        calls.get++;
        const v = many.find((x) => x.id === id);
        if (!v) throw new Error(`404 ${id}`);
        return v;
      },
      getByName: async (name) => {
        calls.getByName++;
        return many.filter((v) => v.name === name);
      },
      list: async () => {
        calls.list++;
        calls.listStarts.push(performance.now());
        if (listMs) await new Promise((r) => setTimeout(r, listMs));
        return { items: listed, complete };
      },
      absent: (id) => new Error(`absent ${id}`),
    });
    return { b, calls, drop: (id: string) => (listed = listed.filter((v) => v.id !== id)) };
  }

  it('proves nothing by absence: a missing volume and every by-name lookup get their own request', async () => {
    const { b, calls, drop } = batcher(false);
    await Promise.all(many.map((v) => b.read(v.id)));
    drop('id-0');
    calls.get = 0;
    const [first] = await Promise.all(many.map((v) => b.read(v.id)));
    expect(first).toEqual(many[0]);
    expect(calls.get).toBe(1);
    const named = await Promise.all(many.map((v) => b.readByName(v.name)));
    expect(named[3]).toEqual([many[3]]);
    expect(calls.getByName).toBeGreaterThanOrEqual(many.length - COALESCE_MIN_VOLUMES);
  });

  it('with a complete list, a listed volume that drops out is absent without a GET', async () => {
    const { b, calls, drop } = batcher(true);
    await Promise.all(many.map((v) => b.read(v.id)));
    drop('id-0');
    calls.get = 0;
    const results = await Promise.allSettled(many.map((v) => b.read(v.id)));
    expect(results[0]).toEqual({ status: 'rejected', reason: new Error('absent id-0') });
    expect(calls.get).toBe(0);
  });

  it('spaces lists LIST_DUTY_FACTOR times as far apart as a list takes, when that is more than LIST_MIN_INTERVAL_MS', async () => {
    const listMs = 4 * LIST_MIN_INTERVAL_MS;
    const { b, calls } = batcher(true, listMs);
    for (const end = performance.now() + 6 * listMs * LIST_DUTY_FACTOR; performance.now() < end;)
      await Promise.all(many.map((v) => b.read(v.id)));
    const gaps = calls.listStarts.slice(1).map((t, i) => t - calls.listStarts[i]);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    // Timers may fire a millisecond early; never a list sooner than the duty factor allows.
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(LIST_DUTY_FACTOR * listMs - 5);
  });
});
