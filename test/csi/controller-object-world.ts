/**
 * A controller world for object volumes: the real Controller handlers with no Cinder cloud at all (so
 * nothing can reach Nova), on a real gRPC socket, with a log sink to grep for secrets, plus a minio
 * client for looking at the S3 server behind them.
 */
import * as Minio from 'minio';
import { type Readable } from 'node:stream';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import type { ObjectControllerOptions } from '../../src/object/object-stores';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink, type LogSink } from '../helpers/log-sink';

export const MOUNT_RWX = { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
export const GIB = 1024 ** 3;

export interface ObjectWorld {
  h: CsiHarness;
  sink: LogSink;

  call<T = any>(rpc: string, req?: object, deadlineMs?: number): Promise<T>;
  /** Every log line of the handlers and the server wrapper. */
  logText(): string;
  close(): Promise<void>;
}

/** Starts the Controller service with only object-storage options configured. */
export async function startObjectWorld(object: ObjectControllerOptions = {}): Promise<ObjectWorld> {
  const sink = logSink('debug');
  const h = await startHarness([
    {
      definition: loadCsiProto().ControllerService,
      handlers: controllerHandlers({
        clouds: new Map(),
        blockStorage: { rescanOnResize: false, ignoreVolumeAz: false, ignoreVolumeMicroversion: false },
        cluster: 'test-cluster',
        withTopology: false,
        pvcAnnotations: false,
        log: sink.log,
        object,
      }),
    },
  ]);
  return {
    h,
    sink,
    call: (rpc, req = {}, deadlineMs = 20_000) => h.call('Controller', rpc, req, deadlineMs),
    logText: () => `${sink.text()}\n${h.sink.text()}`,
    close: () => h.close(),
  };
}

/** A path-style minio client for an endpoint. */
export function s3Client(endpoint: string, accessKey: string, secretKey: string, region = 'us-east-1'): Minio.Client {
  const u = new URL(endpoint);
  return new Minio.Client({
    endPoint: u.hostname,
    port: Number(u.port),
    useSSL: false,
    accessKey,
    secretKey,
    pathStyle: true,
    region,
  });
}

/** Every key in a bucket under a prefix. */
export async function listKeys(c: Minio.Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of c.listObjectsV2(bucket, prefix, true)) if (o.name) keys.push(o.name);
  return keys.sort();
}

/** An object's text. */
export async function readText(c: Minio.Client, bucket: string, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const ch of (await c.getObject(bucket, key)) as Readable) chunks.push(ch as Buffer);
  return Buffer.concat(chunks).toString();
}

/** A CreateVolume request for an object volume. */
export function objectReq(
  name: string,
  parameters: Record<string, string>,
  secrets: Record<string, string>,
  gib = 1,
): Record<string, unknown> {
  return {
    name,
    capacity_range: { required_bytes: String(gib * GIB) },
    volume_capabilities: [MOUNT_RWX],
    parameters: { backend: 'object', ...parameters },
    secrets,
  };
}
