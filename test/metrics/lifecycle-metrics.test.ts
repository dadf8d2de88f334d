/**
 * /metrics during a volume lifecycle against the simulator: the reference's OpenStack API metrics agree with
 * the simulator's own request counters, CSI calls are counted by method and code, attach/detach waits are
 * timed, and no volume id or secret reaches a label.
 */
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { PluginMetrics } from '../../src/metrics/registry';
import { type MetricsHttpServer, startMetricsServer } from '../../src/metrics/http-server';
import { createClouds } from '../../src/openstack/clients';
import { startSimulator, type Simulator } from '../../src/simulator';
import { type CsiHarness, startHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import { MOUNT_RWO, codeOf, createReq } from '../helpers/sim-controller';
import { valueOf } from './scrape';

let sim: Simulator;
let h: CsiHarness;
let metrics: PluginMetrics;
let http: MetricsHttpServer;
let serving: boolean;

beforeEach(async () => {
  sim = await startSimulator({ devicePlane: false, delays: { attach: 40, detach: 40 } });
  const conf = parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true });
  metrics = new PluginMetrics({ processMetrics: false });
  const clouds = createClouds(conf.clouds, [''], {
    onRequest: metrics.onRequest,
    http: { retry: { initialMs: 1, maxDelayMs: 5 } },
  });
  const handlers = controllerHandlers({
    clouds,
    blockStorage: { rescanOnResize: false, ignoreVolumeAz: false, ignoreVolumeMicroversion: false },
    cluster: 'test-cluster',
    withTopology: true,
    pvcAnnotations: false,
    waitOptions: { onWaitFinished: metrics.onWaitFinished },
    log: logSink('info').log,
  });
  h = await startHarness([{ definition: loadCsiProto().ControllerService, handlers }], {
    observer: metrics.callObserver,
  });
  serving = true;
  http = await startMetricsServer({ endpoint: '127.0.0.1:0', metrics, isServing: () => serving });
});

afterEach(async () => {
  await http.stop();
  await h.close();
  await sim.stop();
});

const call = (rpc: string, req: object) => h.call('Controller', rpc, req, 20_000) as Promise<Record<string, any>>;
const scrape = async () => (await fetch(`${http.url}/metrics`)).text();
const simCount = (op: string) => sim.counters()[op] ?? 0;

async function lifecycle(): Promise<string> {
  const volumeId = (await call('CreateVolume', createReq('pvc-metrics'))).volume.volume_id as string;
  const node = sim.localServerId;
  await call('ControllerPublishVolume', { volume_id: volumeId, node_id: node, volume_capability: MOUNT_RWO });
  await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: node });
  await call('DeleteVolume', { volume_id: volumeId });
  return volumeId;
}

describe('OpenStack API metrics', () => {
  it("uses the reference names and request labels, with counts equal to the simulator's", async () => {
    await lifecycle();
    const text = await scrape();
    for (const [request, op] of [
      ['volume_create', 'cinder.volume.create'],
      ['volume_delete', 'cinder.volume.delete'],
      ['volume_get', 'cinder.volume.get'],
      ['token_create', 'keystone.token.create'],
      ['attachment_create', 'nova.attachment.create'],
      ['attachment_delete', 'nova.attachment.delete'],
    ]) {
      expect(simCount(op)).toBeGreaterThan(0);
      expect({ request, n: valueOf(text, 'openstack_api_requests_total', { request }) }).toEqual({
        request,
        n: simCount(op),
      });
      expect(valueOf(text, 'openstack_api_request_duration_seconds_count', { request })).toBe(simCount(op));
    }
    const cloudOps = Object.entries(sim.counters()).filter(([k]) => /^(keystone|cinder|nova)\./.test(k));
    const simTotal = cloudOps.reduce((s, [, n]) => s + n, 0);
    expect(valueOf(text, 'openstack_api_requests_total')).toBe(simTotal);
    // The one error is the 404 that proves the deleted volume gone (the reference counts it the same way).
    expect(valueOf(text, 'openstack_api_request_errors_total', { request: 'volume_get' })).toBe(1);
    expect(valueOf(text, 'openstack_api_request_errors_total')).toBe(1);
  });

  it('counts a 404 and a 503 as errors of their request', async () => {
    sim.injectFault('cinder.volume.get', { kind: 'http-status', status: 503, times: 1 });
    const r = await codeOf(
      call('ControllerPublishVolume', {
        volume_id: '00000000-0000-4000-8000-000000000000',
        node_id: sim.localServerId,
        volume_capability: MOUNT_RWO,
      }),
    );
    expect(r.code).toBe('NOT_FOUND');
    const text = await scrape();
    // The 503 attempt is retried and the retry answers 404: two requests, two errors.
    expect(valueOf(text, 'openstack_api_requests_total', { request: 'volume_get' })).toBe(
      simCount('cinder.volume.get'),
    );
    expect(valueOf(text, 'openstack_api_request_errors_total', { request: 'volume_get' })).toBe(2);
  });
});

describe('CSI call metrics', () => {
  it('count calls by method and gRPC code, with none left in flight', async () => {
    await lifecycle();
    await codeOf(
      call('ControllerPublishVolume', {
        volume_id: '00000000-0000-4000-8000-000000000000',
        node_id: sim.localServerId,
        volume_capability: MOUNT_RWO,
      }),
    );
    const text = await scrape();
    const calls = (method: string, grpc_code: string) =>
      valueOf(text, 'cinder_csi_operation_duration_seconds_count', { method, grpc_code });
    expect(calls('CreateVolume', 'OK')).toBe(1);
    expect(calls('ControllerPublishVolume', 'OK')).toBe(1);
    expect(calls('ControllerPublishVolume', 'NOT_FOUND')).toBe(1);
    expect(calls('DeleteVolume', 'OK')).toBe(1);
    expect(
      valueOf(text, 'cinder_csi_operation_errors_total', { method: 'ControllerPublishVolume', grpc_code: 'NOT_FOUND' }),
    ).toBe(1);
    expect(valueOf(text, 'cinder_csi_operation_errors_total', { grpc_code: 'OK' })).toBe(0);
    expect(valueOf(text, 'cinder_csi_operations_in_flight')).toBe(0);
  });

  it('times the attach and the detach wait', async () => {
    await lifecycle();
    const text = await scrape();
    expect(valueOf(text, 'cinder_csi_volume_wait_duration_seconds_count', { kind: 'attach', outcome: 'done' })).toBe(1);
    expect(valueOf(text, 'cinder_csi_volume_wait_duration_seconds_count', { kind: 'detach', outcome: 'done' })).toBe(1);
    expect(valueOf(text, 'cinder_csi_volume_wait_duration_seconds_sum', { kind: 'attach' })).toBeGreaterThan(0.02);
  });

  it('never puts a volume id, node id or password in the exposition', async () => {
    const volumeId = await lifecycle();
    const text = await scrape();
    expect(text).not.toContain(volumeId);
    expect(text).not.toContain(sim.localServerId);
    expect(text).not.toContain(sim.credentials.password);
  });
});

describe('/healthz', () => {
  it('answers ok while serving and 503 when not, without calling the cloud', async () => {
    sim.resetCounters();
    const ok = await fetch(`${http.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('ok');
    serving = false;
    expect((await fetch(`${http.url}/healthz`)).status).toBe(503);
    expect(Object.keys(sim.counters()).filter((k) => !k.startsWith('interface.'))).toEqual([]);
  });
});
