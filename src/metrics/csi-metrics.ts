/**
 * The driver's own metrics: CSI calls by method and gRPC code (fed by CsiServer's `observer` hook), calls in
 * flight, attach/detach status waits (fed by volume-wait.ts's `onWaitFinished`), and FUSE mounts by state,
 * read at scrape time from a source main.ts plugs in (the FUSE supervisor's `list`). Labels are RPC names,
 * status names and fixed words only; volume ids never become labels.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CallObserver } from './call-observer';
import type { WaitEvent } from '../block/volume-wait';

/** CSI calls span a GET (milliseconds) to an attach wait (minutes), in seconds. */
export const CSI_DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Attach/detach waits: Nova and the hypervisor take seconds to minutes, in seconds. */
export const WAIT_DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

/** CSI call and status-wait metrics on one registry. */
export class CsiMetrics implements CallObserver {
  private readonly duration: Histogram<'method' | 'grpc_code'>;
  private readonly errors: Counter<'method' | 'grpc_code'>;
  private readonly inFlight: Gauge<'method'>;
  private readonly waits: Histogram<'kind' | 'outcome'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'cinder_csi_operation_duration_seconds',
      help: 'Latency of a CSI call, by method and gRPC status code',
      labelNames: ['method', 'grpc_code'],
      buckets: CSI_DURATION_BUCKETS,
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'cinder_csi_operation_errors_total',
      help: 'CSI calls that ended with a status other than OK, by method and gRPC status code',
      labelNames: ['method', 'grpc_code'],
      registers: [registry],
    });
    this.inFlight = new Gauge({
      name: 'cinder_csi_operations_in_flight',
      help: 'CSI calls being handled now, by method',
      labelNames: ['method'],
      registers: [registry],
    });
    this.waits = new Histogram({
      name: 'cinder_csi_volume_wait_duration_seconds',
      help: 'Time spent waiting for Cinder to finish an attach or detach, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: WAIT_DURATION_BUCKETS,
      registers: [registry],
    });
  }

  callStarted(rpc: string): void {
    this.inFlight.inc({ method: rpc });
  }

  callFinished(rpc: string, code: string, durationMs: number): void {
    this.inFlight.dec({ method: rpc });
    this.duration.observe({ method: rpc, grpc_code: code }, durationMs / 1000);
    if (code !== 'OK') this.errors.inc({ method: rpc, grpc_code: code });
  }

  /** Records attach and detach waits; other waits (create, delete, snapshots) are covered by the call latency. */
  waitFinished(e: WaitEvent): void {
    if (e.kind === 'other') return;
    this.waits.observe({ kind: e.kind, outcome: e.outcome }, e.durationMs / 1000);
  }
}

/** The supervisor's view of one mount; nothing that identifies the volume. */
export interface FuseMountSample {
  state: FuseMountState;
  /** Times the supervisor restarted this mount's daemon since it was first mounted. */
  restarts: number;
  /** Of those, replacements of a hung daemon (statfs unanswered). */
  hangs?: number;
}

export type FuseMountState = 'alive' | 'dead' | 'restarting';
export const FUSE_MOUNT_STATES: readonly FuseMountState[] = ['alive', 'dead', 'restarting'];

/** Called at each scrape; may be async. A throwing source leaves the gauges at zero for that scrape. */
export type FuseMountSource = () => Iterable<FuseMountSample> | Promise<Iterable<FuseMountSample>>;

/** `cinder_csi_fuse_mounts{state}` and `cinder_csi_fuse_mount_restarts`. */
export class FuseMetrics {
  private source?: FuseMountSource;

  constructor(registry: Registry) {
    // Both gauges read the same list; each collect() asks the source once per scrape and gauge. collect() runs
    // with `this` bound to its gauge, so the samples are reached through this arrow.
    const samples = () => this.samples();
    new Gauge({
      name: 'cinder_csi_fuse_mounts',
      help: 'FUSE-backed object-storage mounts on this node, by supervisor state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const counts = new Map<FuseMountState, number>(FUSE_MOUNT_STATES.map((s) => [s, 0]));
        for (const m of await samples()) {
          if (counts.has(m.state)) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
        }
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'cinder_csi_fuse_mount_restarts',
      help: 'Restarts of the FUSE daemons of the mounts on this node now (a gauge: it drops when a mount goes away)',
      registers: [registry],
      async collect() {
        let total = 0;
        for (const m of await samples()) total += Number.isFinite(m.restarts) ? m.restarts : 0;
        this.set(total);
      },
    });
    new Gauge({
      name: 'cinder_csi_fuse_mount_hangs',
      help: 'Hung FUSE daemons (statfs unanswered) replaced, over the mounts on this node now (part of the restarts)',
      registers: [registry],
      async collect() {
        let total = 0;
        for (const m of await samples()) total += Number.isFinite(m.hangs) ? m.hangs! : 0;
        this.set(total);
      },
    });
  }

  /** Plugs in (or, with undefined, removes) the source of mount states; without one the gauges read zero. */
  setSource(source: FuseMountSource | undefined): void {
    this.source = source;
  }

  private async samples(): Promise<FuseMountSample[]> {
    if (!this.source) return [];
    try {
      return [...(await this.source())];
    } catch {
      // A scrape must not fail because the supervisor is restarting; the gauges read zero meanwhile.
      return [];
    }
  }
}
