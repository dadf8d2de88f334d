import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CsiServer, removeStaleSocket, type CallContext } from '../../src/csi/server';
import { loadCsiProto, stripSecrets } from '../../src/csi/proto';
import { identityHandlers } from '../../src/csi/identity';
import { notFound } from '../../src/csi/errors';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const proto = loadCsiProto();
const identity = {
  definition: proto.IdentityService,
  handlers: identityHandlers({ version: '1.0.0', controller: true, topology: true, readinessProblems: async () => [] }),
};

/** A controller whose handlers exercise the server wrapper, not any storage. */
function testController(seen: CallContext[] = []) {
  return {
    definition: proto.ControllerService,
    handlers: {
      async CreateVolume(req: { name: string; parameters: Record<string, string> }, ctx: CallContext) {
        seen.push(ctx);
        if (req.parameters.sleep) await sleep(Number(req.parameters.sleep));
        if (req.parameters.throw === 'untyped') throw new TypeError('boom');
        if (req.parameters.wait === 'signal') {
          await new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        }
        return { volume: { volume_id: `id-${req.name}`, capacity_bytes: '1073741824' } };
      },
      async DeleteVolume() {
        throw notFound('no such volume');
      },
    },
  };
}

describe('CSI server', () => {
  let h: CsiHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('maps a typed error to its gRPC code and an untyped one to INTERNAL without dying', async () => {
    h = await startHarness([identity, testController()]);
    await expect(h.call('Controller', 'DeleteVolume', { volume_id: 'v' })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    await expect(
      h.call('Controller', 'CreateVolume', { name: 'a', parameters: { throw: 'untyped' } }),
    ).rejects.toMatchObject({
      code: status.INTERNAL,
      details: expect.stringContaining('boom'),
    });
    expect(await h.call('Identity', 'Probe')).toEqual({ ready: { value: true } });
  });

  it('answers a second concurrent operation on the same volume name with ABORTED', async () => {
    h = await startHarness([identity, testController()]);
    const first = h.call('Controller', 'CreateVolume', { name: 'same', parameters: { sleep: '300' } });
    await sleep(50);
    await expect(h.call('Controller', 'CreateVolume', { name: 'same' })).rejects.toMatchObject({
      code: status.ABORTED,
    });
    await expect(h.call('Controller', 'CreateVolume', { name: 'other' })).resolves.toBeDefined();
    await expect(first).resolves.toMatchObject({ volume: { volume_id: 'id-same' } });
    await expect(h.call('Controller', 'CreateVolume', { name: 'same' })).resolves.toBeDefined();
  });

  it("gives handlers a signal that aborts at the caller's deadline", async () => {
    const seen: CallContext[] = [];
    h = await startHarness([identity, testController(seen)]);
    const t0 = Date.now();
    await expect(
      h.call('Controller', 'CreateVolume', { name: 'd', parameters: { wait: 'signal' } }, 300),
    ).rejects.toMatchObject({
      code: status.DEADLINE_EXCEEDED,
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(seen[0].deadline).toBeGreaterThan(t0);
    await sleep(50);
    expect(seen[0].signal.aborted).toBe(true);
  });

  it('answers undecodable request bytes with INVALID_ARGUMENT', async () => {
    h = await startHarness([identity, testController()]);
    const raw = new grpc.Client(`unix://${h.socket}`, grpc.credentials.createInsecure());
    const send = (bytes: Buffer) =>
      new Promise((resolve, reject) =>
        raw.makeUnaryRequest(
          '/csi.v1.Controller/CreateVolume',
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      );
    // A tag with no value after it; then capacity_range whose embedded varint runs off the end.
    await expect(send(Buffer.from([0x0a]))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(send(Buffer.from([0x12, 0x03, 0x08, 0x80]))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    raw.close();
    expect(await h.call('Identity', 'Probe')).toEqual({ ready: { value: true } });
  });

  it('answers a huge string with INVALID_ARGUMENT naming the field, and a message over 4 MiB with RESOURCE_EXHAUSTED', async () => {
    h = await startHarness([identity, testController()]);
    await expect(h.call('Controller', 'CreateVolume', { name: 'x'.repeat(100_000) })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^name is longer than/),
    });
    await expect(
      h.call('Controller', 'CreateVolume', { name: 'p', parameters: { big: 'y'.repeat(300 * 1024) } }),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/^parameters is larger/) });
    await expect(h.call('Controller', 'CreateVolume', { name: 'z'.repeat(5 * 1024 * 1024) })).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
    });
    expect(await h.call('Identity', 'Probe')).toEqual({ ready: { value: true } });
  });

  it('logs method, volume, duration and code but never the secrets', async () => {
    h = await startHarness([identity, testController()]);
    await h.call('Controller', 'CreateVolume', {
      name: 'pvc-1',
      parameters: { type: 'ssd' },
      secrets: { password: 'hunter2-secret', cloud: 'c1' },
    });
    const line = h.sink.lines.find((l) => l.rpc === 'CreateVolume' && l.code === 'OK')!;
    expect(line).toMatchObject({ name: 'pvc-1', callId: expect.any(String), durationMs: expect.any(Number) });
    expect((line.request as { parameters: object }).parameters).toEqual({ type: 'ssd' });
    expect(h.sink.text()).not.toContain('hunter2-secret');
  });

  it('lets in-flight calls finish on shutdown and then refuses new ones', async () => {
    h = await startHarness([identity, testController()]);
    const slow = h.call('Controller', 'CreateVolume', { name: 'slow', parameters: { sleep: '400' } });
    await sleep(50);
    const stopped = h.server.stop(5000);
    await expect(slow).resolves.toMatchObject({ volume: { volume_id: 'id-slow' } });
    await stopped;
    expect(existsSync(h.socket)).toBe(false);
    await expect(h.call('Identity', 'Probe', {}, 1000)).rejects.toMatchObject({ code: expect.any(Number) });
  });
});

describe('stale socket handling', () => {
  const dir = mkdtempSync(join(tmpdir(), 'csi-stale-'));

  it('removes a socket file left by a dead process and serves on it', async () => {
    const path = join(dir, 'dead.sock');
    // A process that dies by SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const server = new CsiServer({
      endpoint: `unix://${path}`,
      log: logSink().log,
      services: [identity],
      stripSecrets,
    });
    await server.start();
    await server.stop(100);
  });

  it('refuses a socket a live process still serves', async () => {
    const path = join(dir, 'live.sock');
    const s = createServer();
    await new Promise<void>((r) => s.listen(path, r));
    await expect(removeStaleSocket(path)).rejects.toThrow(/in use by another live process/);
    const server = new CsiServer({
      endpoint: `unix://${path}`,
      log: logSink().log,
      services: [identity],
      stripSecrets,
    });
    await expect(server.start()).rejects.toThrow(/in use by another live process/);
    await new Promise((r) => s.close(r));
  });

  it('refuses to delete a path that is not a socket', async () => {
    const path = join(dir, 'file.sock');
    writeFileSync(path, 'not a socket');
    await expect(removeStaleSocket(path)).rejects.toThrow(/is not a socket/);
    expect(existsSync(path)).toBe(true);
  });
});
