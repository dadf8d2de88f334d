/**
 * Per-operation request counters and the fault queue. A fault armed for an operation name (exact, or a
 * prefix ending in '*') is consumed by the next `times` matching requests; the server applies it before
 * authentication, as a proxy or load balancer in front of the real service would.
 */
import type { FaultSpec } from './types';

interface ArmedFault {
  pattern: string;
  spec: FaultSpec;
  remaining: number;
}

function matches(pattern: string, op: string): boolean {
  return pattern.endsWith('*') ? op.startsWith(pattern.slice(0, -1)) : pattern === op;
}

export class FaultTable {
  private faults: ArmedFault[] = [];

  add(op: string, spec: FaultSpec): void {
    const times = spec.times ?? 1;
    if (!(times > 0)) throw new Error(`fault times must be positive, got ${times}`);
    if (spec.kind === 'http-status' && !(spec.status && spec.status >= 400 && spec.status <= 599)) {
      throw new Error(`http-status fault needs a 4xx/5xx status, got ${spec.status}`);
    }
    this.faults.push({ pattern: op, spec, remaining: times });
  }

  clear(): void {
    this.faults = [];
  }

  /** The first armed fault for this operation, consuming one use of it; undefined when none. */
  take(op: string): FaultSpec | undefined {
    const i = this.faults.findIndex((f) => matches(f.pattern, op));
    if (i < 0) return undefined;
    const f = this.faults[i];
    f.remaining -= 1;
    if (f.remaining <= 0) this.faults.splice(i, 1);
    return f.spec;
  }
}

export class Counters {
  private counts: Record<string, number> = {};

  inc(name: string): void {
    this.counts[name] = (this.counts[name] ?? 0) + 1;
  }

  snapshot(): Record<string, number> {
    return { ...this.counts };
  }

  reset(): void {
    this.counts = {};
  }
}
