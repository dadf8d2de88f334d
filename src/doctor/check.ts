/**
 * The doctor's vocabulary: a check result (pass/warn/fail, a message, a fix hint), how results print as text
 * or JSON, and the last line of defence against printing a secret. The checks themselves live in
 * cloud-checks.ts and node-checks.ts; doctor-command.ts runs them.
 */
import { messageOf } from '../errors';

export type CheckStatus = 'pass' | 'warn' | 'fail';

/** One line of the doctor's report. */
export interface CheckResult {
  /** Stable dotted id, e.g. `cloud.keystone`, `node.tools.required`. */
  id: string;
  status: CheckStatus;
  /** What was found, one sentence. */
  message: string;
  /** How to fix it; present on warn and fail. */
  hint?: string;
  /** The cloud (`[Global "name"]`) a cloud check is about; '' for `[Global]`. */
  cloud?: string;
}

/** Builds a result; `hint` is dropped on pass. */
export function result(id: string, status: CheckStatus, message: string, hint?: string, cloud?: string): CheckResult {
  return {
    id,
    status,
    message,
    ...(status !== 'pass' && hint ? { hint } : {}),
    ...(cloud !== undefined ? { cloud } : {}),
  };
}

/** Runs a check body; an unexpected throw becomes a fail naming the check rather than a crash. */
export async function guarded(
  id: string,
  hint: string,
  body: () => Promise<CheckResult[]>,
  cloud?: string,
): Promise<CheckResult[]> {
  try {
    return await body();
  } catch (e) {
    return [result(id, 'fail', messageOf(e), hint, cloud)];
  }
}

/** Secret strings (passwords, credential secrets, tokens) to blank out of anything printed. */
export class SecretFilter {
  private readonly secrets = new Set<string>();

  add(...values: Array<string | undefined>): void {
    // Very short values would blank ordinary words; cloud.conf secrets are never that short in practice.
    for (const v of values) if (v && v.length >= 4) this.secrets.add(v);
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('[redacted]');
    return out;
  }

  scrubResult(r: CheckResult): CheckResult {
    return { ...r, message: this.scrub(r.message), ...(r.hint !== undefined ? { hint: this.scrub(r.hint) } : {}) };
  }
}

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

/** Human-readable report: one line per check, the hint indented under it, and a summary line. */
export function formatText(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => displayId(r).length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${LABEL[r.status]}  ${displayId(r).padEnd(width)}  ${r.message}`);
    if (r.hint) lines.push(`${' '.repeat(width + 8)}hint: ${r.hint}`);
  }
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  lines.push(`${count('pass')} passed, ${count('warn')} warnings, ${count('fail')} failed`);
  return `${lines.join('\n')}\n`;
}

/** Machine-readable report: a JSON array of CheckResult. */
export function formatJson(results: readonly CheckResult[]): string {
  return `${JSON.stringify(results, null, 2)}\n`;
}

function displayId(r: CheckResult): string {
  return r.cloud ? `${r.id}[${r.cloud}]` : r.id;
}
