/**
 * Times the demo's steps: a progress line per step as it ends, and the final table of step, duration and
 * OpenStack calls (the difference of the simulator's request counters across the step).
 */

interface StepRow {
  name: string;
  ms: number;
  calls: number;
  ok: boolean;
  note: string;
}

export class StepRecorder {
  private readonly rows: StepRow[] = [];

  constructor(private readonly counters: () => Record<string, number>) {}

  /** Runs one step, prints its line, records it; rethrows its error after recording it as failed. */
  async step(name: string, fn: () => Promise<string | void>): Promise<void> {
    const before = this.callCount();
    const start = Date.now();
    try {
      const note = (await fn()) ?? '';
      this.record({ name, ms: Date.now() - start, calls: this.callCount() - before, ok: true, note });
    } catch (e) {
      this.record({
        name,
        ms: Date.now() - start,
        calls: this.callCount() - before,
        ok: false,
        note: (e as Error).message ?? String(e),
      });
      throw e;
    }
  }

  printTable(): void {
    const total = this.rows.reduce((a, r) => a + r.ms, 0);
    const calls = this.rows.reduce((a, r) => a + r.calls, 0);
    const w = Math.max(...this.rows.map((r) => r.name.length), 10) + 2;
    const line = (a: string, b: string, c: string) => `${a.padEnd(w)}${b.padStart(10)}${c.padStart(18)}\n`;
    process.stdout.write(`\n${line('step', 'duration', 'OpenStack calls')}`);
    for (const r of this.rows)
      process.stdout.write(line(`${r.ok ? ' ' : '✗'} ${r.name}`, seconds(r.ms), String(r.calls)));
    process.stdout.write(line('  total', seconds(total), String(calls)));
  }

  private record(row: StepRow): void {
    this.rows.push(row);
    process.stdout.write(`${row.ok ? '✓' : '✗'} ${row.name.padEnd(48)} ${seconds(row.ms).padStart(7)}  ${row.note}\n`);
  }

  private callCount(): number {
    // interface.* counters count the same requests again by catalog interface.
    return Object.entries(this.counters())
      .filter(([k]) => !k.startsWith('interface.'))
      .reduce((a, [, v]) => a + v, 0);
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}
