/** volume-wait.ts's onWaitFinished hook, which feeds the attach/detach wait histogram: kind and outcome. */
import { pollUntil, type WaitEvent } from '../../src/block/volume-wait';
import { CodedError, Status } from '../../src/errors';

const noSleep = async (_ms: number, signal?: AbortSignal) => {
  if (signal?.aborted) throw new Error('aborted');
};

describe('pollUntil onWaitFinished', () => {
  it('reports an attach wait as done, with the kind inferred from what is awaited', async () => {
    const events: WaitEvent[] = [];
    let n = 0;
    await pollUntil(
      async () => ++n,
      (x) => x >= 3,
      String,
      { what: 'volume v1 to be attached to s1', sleep: noSleep, onWaitFinished: (e) => events.push(e) },
    );
    expect(events).toEqual([{ kind: 'attach', outcome: 'done', durationMs: expect.any(Number) }]);
  });

  it('reports a failed detach and a timed-out wait, and rethrows', async () => {
    const events: WaitEvent[] = [];
    const onWaitFinished = (e: WaitEvent) => events.push(e);
    const fail = new CodedError(Status.INTERNAL, 'error state');
    await expect(
      pollUntil(
        async () => 1,
        () => false,
        String,
        { what: 'volume v1 to be detached from s1', sleep: noSleep, failOn: () => fail, onWaitFinished },
      ),
    ).rejects.toBe(fail);
    const ac = new AbortController();
    ac.abort();
    await expect(
      pollUntil(
        async () => 1,
        () => false,
        String,
        { kind: 'attach', signal: ac.signal, sleep: noSleep, onWaitFinished },
      ),
    ).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(events.map((e) => [e.kind, e.outcome])).toEqual([
      ['detach', 'failed'],
      ['attach', 'timeout'],
    ]);
  });

  it('is not disturbed by a throwing observer', async () => {
    const r = await pollUntil(
      async () => 5,
      () => true,
      String,
      {
        onWaitFinished: () => {
          throw new Error('broken');
        },
      },
    );
    expect(r).toBe(5);
  });
});
