/** The --http-endpoint listener and the registry's own parts: endpoint parsing, 404s, FUSE gauges, process metrics. */
import { PluginMetrics } from '../../src/metrics/registry';
import { parseHttpEndpoint, startMetricsServer } from '../../src/metrics/http-server';
import { requestLabel } from '../../src/metrics/registry';
import { UsageError } from '../../src/config/flags';
import type { MountStatus } from '../../src/fuse/protocol';
import { valueOf } from './scrape';

describe('parseHttpEndpoint', () => {
  it.each([
    [':9809', { host: undefined, port: 9809 }],
    ['0.0.0.0:9809', { host: '0.0.0.0', port: 9809 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9809', { host: '::1', port: 9809 }],
  ])('accepts %s', (text, want) => {
    expect(parseHttpEndpoint(text)).toEqual(want);
  });

  it.each(['9809', 'localhost', ':99999', 'http://x:1', ''])('rejects "%s" naming the flag', (text) => {
    expect(() => parseHttpEndpoint(text)).toThrow(UsageError);
    expect(() => parseHttpEndpoint(text)).toThrow(/--http-endpoint/);
  });
});

describe('requestLabel', () => {
  it.each([
    ['volume.create', 'volume_create'],
    ['volume.update-metadata', 'volume_update_metadata'],
    ['token.create', 'token_create'],
  ])('maps %s to %s', (op, label) => expect(requestLabel(op)).toBe(label));
});

describe('metrics HTTP server', () => {
  it('serves /metrics with the Prometheus content type, 404 elsewhere, and stops', async () => {
    const metrics = new PluginMetrics({ processMetrics: false });
    const s = await startMetricsServer({ endpoint: '127.0.0.1:0', metrics, isServing: () => true });
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain('# TYPE openstack_api_requests_total counter');
    expect((await fetch(`${s.url}/nope`)).status).toBe(404);
    expect((await fetch(`${s.url}/metrics`, { method: 'POST' })).status).toBe(405);
    await s.stop();
    await s.stop();
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
  });

  it('rejects when the port is taken', async () => {
    const metrics = new PluginMetrics({ processMetrics: false });
    const a = await startMetricsServer({ endpoint: '127.0.0.1:0', metrics, isServing: () => true });
    const port = new URL(a.url).port;
    await expect(startMetricsServer({ endpoint: `127.0.0.1:${port}`, metrics, isServing: () => true })).rejects.toThrow(
      /EADDRINUSE/,
    );
    await a.stop();
  });
});

describe('PluginMetrics', () => {
  it('reads FUSE mounts by state and their restarts from the source at scrape time', async () => {
    const metrics = new PluginMetrics({ processMetrics: false });
    expect(valueOf(await metrics.text(), 'cinder_csi_fuse_mounts', { state: 'alive' })).toBe(0);
    metrics.setFuseMountSource(async () => [
      { state: 'alive', restarts: 0 },
      { state: 'alive', restarts: 1 },
      { state: 'restarting', restarts: 2, hangs: 1 },
      { state: 'dead', restarts: 5 },
    ]);
    const text = await metrics.text();
    expect(valueOf(text, 'cinder_csi_fuse_mounts', { state: 'alive' })).toBe(2);
    expect(valueOf(text, 'cinder_csi_fuse_mounts', { state: 'restarting' })).toBe(1);
    expect(valueOf(text, 'cinder_csi_fuse_mounts', { state: 'dead' })).toBe(1);
    expect(valueOf(text, 'cinder_csi_fuse_mount_restarts')).toBe(8);
    expect(valueOf(text, 'cinder_csi_fuse_mount_hangs')).toBe(1);
  });

  it("takes the FUSE supervisor's list() as its source unchanged", async () => {
    const metrics = new PluginMetrics({ processMetrics: false });
    const list = async (): Promise<MountStatus[]> => [
      { volumeId: 'v', target: '/t', mounter: 's3fs', state: 'alive', restarts: 1 },
    ];
    metrics.setFuseMountSource(list);
    expect(valueOf(await metrics.text(), 'cinder_csi_fuse_mounts', { state: 'alive' })).toBe(1);
  });

  it('reads zero when the FUSE source throws, instead of failing the scrape', async () => {
    const metrics = new PluginMetrics({ processMetrics: false });
    metrics.setFuseMountSource(() => {
      throw new Error('supervisor restarting');
    });
    const text = await metrics.text();
    expect(valueOf(text, 'cinder_csi_fuse_mounts')).toBe(0);
    expect(valueOf(text, 'cinder_csi_fuse_mount_restarts')).toBe(0);
  });

  it('includes process metrics, and two instances never share a registry', async () => {
    const a = new PluginMetrics();
    const b = new PluginMetrics();
    a.onRequest({
      service: 'cinder',
      operation: 'volume.create',
      method: 'POST',
      status: 202,
      durationMs: 12,
      attempt: 0,
    });
    const textA = await a.text();
    expect(textA).toContain('process_cpu_user_seconds_total');
    expect(textA).toContain('nodejs_heap_size_used_bytes');
    expect(valueOf(textA, 'openstack_api_requests_total', { request: 'volume_create' })).toBe(1);
    expect(valueOf(await b.text(), 'openstack_api_requests_total', { request: 'volume_create' })).toBe(0);
  });
});
