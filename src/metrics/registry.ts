/**
 * The plugin's metrics, one registry per process built by main.ts (never prom-client's global default
 * registry): the reference driver's OpenStack API metrics (cloud-provider-openstack `pkg/metrics/metrics_api.go`:
 * same names, one `request` label such as `volume_create`), the driver's own metrics (csi-metrics.ts) and Node's
 * process metrics. Hooks for the HTTP layer, CsiServer and the waits are exposed as plain functions.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { RequestEvent } from '../openstack/http';
import type { CallObserver } from './call-observer';
import type { WaitEvent } from '../block/volume-wait';
import { CsiMetrics, FuseMetrics, type FuseMountSource } from './csi-metrics';

export type { FuseMountSample, FuseMountSource, FuseMountState } from './csi-metrics';

/**
 * Buckets of client_golang's DefBuckets, which the reference's histogram uses (it sets none of its own),
 * in seconds.
 */
export const OPENSTACK_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The reference's `request` label for an operation of ours: `volume.create` → `volume_create`. */
export function requestLabel(operation: string): string {
  // Operation names are code constants (`volume.update-metadata`), never ids, so the label stays bounded.
  return operation.replace(/[^A-Za-z0-9_]/g, '_');
}

/** `openstack_api_request_duration_seconds`, `openstack_api_requests_total`, `openstack_api_request_errors_total`. */
export class OpenStackApiMetrics {
  private readonly duration: Histogram<'request'>;
  private readonly total: Counter<'request'>;
  private readonly errors: Counter<'request'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'openstack_api_request_duration_seconds',
      help: 'Latency of an OpenStack API call',
      labelNames: ['request'],
      buckets: OPENSTACK_DURATION_BUCKETS,
      registers: [registry],
    });
    this.total = new Counter({
      name: 'openstack_api_requests_total',
      help: 'Total number of OpenStack API calls',
      labelNames: ['request'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'openstack_api_request_errors_total',
      help: 'Total number of errors for an OpenStack API call',
      labelNames: ['request'],
      registers: [registry],
    });
  }

  /**
   * Records one attempt. Unlike the reference, which measures a gophercloud call as a whole, every retry is
   * its own request here: that is what the cloud saw, and what its rate limits count.
   */
  observe(e: RequestEvent): void {
    const labels = { request: requestLabel(e.operation) };
    this.duration.observe(labels, e.durationMs / 1000);
    this.total.inc(labels);
    if (e.error !== undefined) this.errors.inc(labels);
  }
}

export interface PluginMetricsOptions {
  /** Node's process metrics (`process_*`, `nodejs_*`); default true. Tests turn them off for speed. */
  processMetrics?: boolean;
}

/** Everything /metrics shows. Construct once in the composition root and pass its hooks down. */
export class PluginMetrics {
  readonly registry = new Registry();
  private readonly openstack: OpenStackApiMetrics;
  private readonly csi: CsiMetrics;
  private readonly fuse: FuseMetrics;

  constructor(opts: PluginMetricsOptions = {}) {
    this.openstack = new OpenStackApiMetrics(this.registry);
    this.csi = new CsiMetrics(this.registry);
    this.fuse = new FuseMetrics(this.registry);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** For `createClouds(..., { onRequest })`: one observation per HTTP attempt. */
  readonly onRequest = (e: RequestEvent): void => this.openstack.observe(e);

  /** For `new CsiServer({ ..., observer })`. */
  get callObserver(): CallObserver {
    return this.csi;
  }

  /** For `controllerHandlers({ waitOptions: { onWaitFinished } })`. */
  readonly onWaitFinished = (e: WaitEvent): void => this.csi.waitFinished(e);

  /** Where the FUSE gauges read mount states at scrape time; undefined removes the source. */
  setFuseMountSource(source: FuseMountSource | undefined): void {
    this.fuse.setSource(source);
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
