/**
 * The CSI gRPC server: binds the unix socket (or TCP), adapts our `async (request, ctx) => response`
 * handlers to grpc-js, and is the one interceptor layer every call goes through: call id, child logger,
 * AbortSignal from the deadline, per-volume lock, a log line without secrets, and the mapping of thrown
 * errors to gRPC statuses (CodedError keeps its code; anything else is INTERNAL, never a crash).
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { lstat, unlink, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { CodedError, Status, messageOf } from '../errors';
import type { Logger } from '../log';
import { parseEndpoint } from '../config/flags';
import { VolumeLocks } from './volume-locks';
import { lockKeysFor, subjectOf } from './lock-keys';
import { checkRequestSizes } from './request-limits';
import type { CallObserver } from '../metrics/call-observer';

export type { CallObserver } from '../metrics/call-observer';

/** How long SIGTERM waits for in-flight calls before cancelling them. */
export const SHUTDOWN_GRACE_MS = 30_000;
/** A cancel this close to the deadline is the deadline (clocks and timers are not exact). */
const DEADLINE_SLACK_MS = 50;
/** Probing a stale socket: a live server answers a connect at once. */
const SOCKET_PROBE_TIMEOUT_MS = 1_000;
/** RPCs kubelet and the sidecars call constantly; logged at debug so info stays readable. */
const ROUTINE_RPCS = new Set([
  'Probe',
  'GetPluginInfo',
  'GetPluginCapabilities',
  'ControllerGetCapabilities',
  'NodeGetCapabilities',
  'NodeGetInfo',
  'NodeGetVolumeStats',
  'ListVolumes',
  'ListSnapshots',
  'ControllerGetVolume',
  'GetCapacity',
]);
const CLIENT_ERRORS = new Set([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.FAILED_PRECONDITION,
  Status.ABORTED,
  Status.OUT_OF_RANGE,
  Status.UNIMPLEMENTED,
  Status.RESOURCE_EXHAUSTED,
]);

/** What every handler receives besides the request. */
export interface CallContext {
  readonly rpc: string;
  readonly callId: string;
  readonly log: Logger;
  /** Aborted when the caller's deadline passes or the caller cancels. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds of the caller's deadline, if it set one. */
  readonly deadline?: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type UnaryHandler = (request: any, ctx: CallContext) => Promise<object>;
/** A CSI service implementation keyed by RPC name as in the proto (`CreateVolume`). */
export type ServiceHandlers = Record<string, UnaryHandler>;

export interface ServiceBinding {
  definition: grpc.ServiceDefinition;
  handlers: ServiceHandlers;
}

export interface CsiServerOptions {
  endpoint: string;
  log: Logger;
  services: readonly ServiceBinding[];
  /** Returns a copy of a request with its csi_secret fields removed, for the log line. */
  stripSecrets: (methodPath: string, request: unknown) => unknown;
  locks?: VolumeLocks;
  /** Told when each call starts and ends (metrics); `code` is the gRPC status name ('OK', 'NOT_FOUND'). */
  observer?: CallObserver;
}

/** Marker a wrapped deserializer returns for bytes that are not a valid message. */
const MALFORMED = Symbol('malformed-request');
interface Malformed {
  [MALFORMED]: string;
}

export class CsiServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  private readonly locks: VolumeLocks;
  private readonly callPrefix = randomBytes(3).toString('hex');
  private callSeq = 0;
  private socketPath?: string;
  private inFlight = 0;

  constructor(private readonly opts: CsiServerOptions) {
    this.locks = opts.locks ?? new VolumeLocks();
    for (const svc of opts.services) this.addService(svc);
  }

  /** Binds the endpoint. Removes a stale unix socket; refuses one a live process still serves. */
  async start(): Promise<string> {
    const ep = parseEndpoint(this.opts.endpoint);
    let address: string;
    if (ep.kind === 'unix') {
      await mkdir(dirname(ep.path), { recursive: true });
      await removeStaleSocket(ep.path);
      this.socketPath = ep.path;
      address = `unix://${ep.path}`;
    } else {
      address = `${ep.host}:${ep.port}`;
    }
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const bound = ep.kind === 'unix' ? address : `tcp://${ep.host}:${port}`;
    this.opts.log.info({ endpoint: bound }, 'CSI server listening');
    return bound;
  }

  /** Stops accepting calls, lets in-flight ones finish for up to graceMs, then cancels the rest. */
  async stop(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    this.opts.log.info({ inFlight: this.inFlight, graceMs }, 'CSI server shutting down');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.log.warn({ inFlight: this.inFlight }, 'grace period over; cancelling in-flight calls');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.socketPath) await unlink(this.socketPath).catch(() => undefined);
  }

  get inFlightCalls(): number {
    return this.inFlight;
  }

  private addService({ definition, handlers }: ServiceBinding): void {
    const wrappedDefinition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(definition)) {
      const rpc = method.path.slice(method.path.lastIndexOf('/') + 1);
      wrappedDefinition[key] = { ...method, requestDeserialize: safeDeserializer(method.requestDeserialize) };
      const handler = handlers[rpc];
      impl[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        void this.handle(method.path, rpc, handler, call, callback);
      };
    }
    this.server.addService(wrappedDefinition, impl);
  }

  private async handle(
    path: string,
    rpc: string,
    handler: UnaryHandler | undefined,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ): Promise<void> {
    const started = process.hrtime.bigint();
    const callId = `${this.callPrefix}-${++this.callSeq}`;
    const request = call.request;
    // Made on first use: a pino child serializes (and redacts) its bindings when created, ~0.5 ms that most
    // calls would spend for nothing when no line of theirs passes the log level.
    let callLog: Logger | undefined;
    const log = () => (callLog ??= this.opts.log.child({ rpc, callId, ...subjectOf(request) }));
    const { signal, deadline, dispose } = abortSignalFor(call);
    this.inFlight++;
    this.opts.observer?.callStarted(rpc);
    let release: (() => void) | undefined;
    let response: object | undefined;
    let error: CodedError | undefined;
    try {
      if (isMalformed(request))
        throw new CodedError(Status.INVALID_ARGUMENT, `malformed request: ${request[MALFORMED]}`);
      if (!handler) throw new CodedError(Status.UNIMPLEMENTED, `${rpc} is not implemented by this plugin`);
      checkRequestSizes(request);
      release = this.locks.acquire(lockKeysFor(rpc, request), `${rpc} ${callId}`);
      response = await handler(request, {
        rpc,
        callId,
        signal,
        deadline,
        get log() {
          return log();
        },
      });
    } catch (e) {
      error = toCodedError(e, signal);
      if (!(e instanceof CodedError)) log().error({ err: e }, 'unexpected error');
    } finally {
      release?.();
      dispose();
      this.inFlight--;
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const code = error ? error.code : Status.OK;
    this.opts.observer?.callFinished(rpc, Status[code], durationMs);
    const level = !error
      ? ROUTINE_RPCS.has(rpc)
        ? 'debug'
        : 'info'
      : CLIENT_ERRORS.has(error.code)
        ? 'warn'
        : 'error';
    if (this.opts.log.isLevelEnabled(level)) {
      const line = {
        durationMs: Math.round(durationMs * 10) / 10,
        code: Status[code],
        request: isMalformed(request) ? undefined : this.opts.stripSecrets(path, request),
        ...(error ? { error: error.details } : {}),
      };
      log()[level](line, error ? `${rpc} failed` : `${rpc} succeeded`);
    }
    if (error) callback({ code: error.code, details: error.details, metadata: new grpc.Metadata() });
    else callback(null, response);
  }
}

function toCodedError(e: unknown, signal: AbortSignal): CodedError {
  if (e instanceof CodedError) return e;
  if (signal.aborted) {
    return new CodedError(Status.DEADLINE_EXCEEDED, `deadline exceeded: ${messageOf(signal.reason ?? e)}`);
  }
  return new CodedError(Status.INTERNAL, `internal error: ${messageOf(e)}`);
}

function isMalformed(r: unknown): r is Malformed {
  return typeof r === 'object' && r !== null && MALFORMED in r;
}

/** Protobuf decode failures become a marker the handler answers with INVALID_ARGUMENT (grpc-js would say INTERNAL). */
function safeDeserializer(inner: grpc.deserialize<unknown>): grpc.deserialize<unknown> {
  return (bytes: Buffer) => {
    try {
      return inner(bytes);
    } catch (e) {
      return { [MALFORMED]: messageOf(e) } satisfies Malformed;
    }
  };
}

function abortSignalFor(call: grpc.ServerUnaryCall<unknown, unknown>): {
  signal: AbortSignal;
  deadline?: number;
  dispose: () => void;
} {
  const controller = new AbortController();
  const d = call.getDeadline();
  const deadline = d instanceof Date ? d.getTime() : Number.isFinite(d) ? Number(d) : undefined;
  let timer: NodeJS.Timeout | undefined;
  if (deadline !== undefined) {
    timer = setTimeout(
      () => controller.abort(new CodedError(Status.DEADLINE_EXCEEDED, "the caller's deadline passed")),
      Math.max(0, deadline - Date.now()),
    );
  }
  // grpc-js often reports an expired client deadline as a cancellation before our timer fires.
  const onCancel = () =>
    controller.abort(
      deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS
        ? new CodedError(Status.DEADLINE_EXCEEDED, "the caller's deadline passed")
        : new CodedError(Status.CANCELLED, 'the caller cancelled the call'),
    );
  call.on('cancelled', onCancel);
  return {
    signal: controller.signal,
    deadline,
    dispose: () => {
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    },
  };
}

/**
 * A socket file left by a dead plugin blocks bind; remove it. A socket a live process answers on is not
 * ours to take (two node plugins on one node would fight over volumes), and a path that is not a socket
 * is not ours to delete.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to remove it`);
  const alive = await new Promise<boolean>((resolve) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(true);
    }, SOCKET_PROBE_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (alive) throw new Error(`${path} is in use by another live process; refusing to start a second plugin on it`);
  await unlink(path);
}
