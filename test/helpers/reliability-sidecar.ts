/**
 * What the reliability suites share: retrying a CSI call the way the external sidecars do (ABORTED,
 * DEADLINE_EXCEEDED and UNAVAILABLE are retried with a short backoff, anything else ends the retries), and
 * reading the simulator's volumes by name and Nova's attachments for the "exactly one" assertions.
 */
import { status } from '@grpc/grpc-js';
import type { Simulator, SimVolume } from '../../src/simulator';
import { Api } from '../simulator/client';

/** Codes external-provisioner/-attacher treat as "try again" rather than a final answer. */
export const RETRIED_CODES: ReadonlySet<number> = new Set([
  status.ABORTED,
  status.DEADLINE_EXCEEDED,
  status.UNAVAILABLE,
]);

export interface SidecarRetry {
  /** Attempts in all, the first included; default 20. */
  attempts?: number;
  /** Pause between attempts, ms, or a function giving it (jitter); default 100 (the sidecars start at 1 s). */
  pauseMs?: number | (() => number);
  /** Codes retried; default RETRIED_CODES. */
  codes?: ReadonlySet<number>;
  /** Told the gRPC code of every retried failure. */
  onRetry?: (code: number) => void;
}

/** Calls `fn` until it succeeds; rethrows a non-retried failure at once and the last failure when out of attempts. */
export async function retryLikeSidecar<T>(fn: () => Promise<T>, o: SidecarRetry = {}): Promise<T> {
  const attempts = o.attempts ?? 20;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code === undefined || !(o.codes ?? RETRIED_CODES).has(code) || i >= attempts) throw e;
      o.onRetry?.(code);
      const pause = typeof o.pauseMs === 'function' ? o.pauseMs() : (o.pauseMs ?? 100);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

export function volumesNamed(sim: Simulator, name: string): SimVolume[] {
  return sim.listVolumes().filter((v) => v.name === name);
}

/** Volume ids Nova maps on `serverId`, asked of Nova itself with a fresh token (never the driver's). */
export async function novaVolumesOn(sim: Simulator, serverId: string): Promise<string[]> {
  const r = await (await Api.login(sim)).nova('GET', `/servers/${serverId}/os-volume_attachments`);
  if (r.status !== 200) throw new Error(`Nova answered ${r.status} listing the attachments of ${serverId}`);
  return (r.json.volumeAttachments as Array<{ volumeId: string }>).map((a) => a.volumeId).sort();
}
