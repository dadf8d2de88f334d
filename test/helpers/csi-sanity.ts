/**
 * kubernetes-csi's csi-sanity (the upstream conformance suite, ../shared/tools) as a test tool: finds the
 * binary, runs it with a random printed seed and a JUnit report, and reads that report back into one
 * outcome per spec, so a jest test can name every failed or skipped spec.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';

/** The repository root (this file is test/helpers/). */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/**
 * `../shared/tools/csi-sanity` beside the checkout; a worktree one level deeper (wt/<name>) looks one more
 * level up. CSI_SANITY overrides both.
 */
export function csiSanityPath(): string | undefined {
  const candidates = [
    process.env.CSI_SANITY,
    join(REPO_ROOT, '..', 'shared', 'tools', 'csi-sanity'),
    join(REPO_ROOT, '..', '..', 'shared', 'tools', 'csi-sanity'),
  ];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export type SpecStatus = 'passed' | 'failed' | 'skipped' | 'pending';

export interface SpecOutcome {
  /** The full spec text, "[Suite] Context It". */
  name: string;
  status: SpecStatus;
  /** The failure (or skip) message, for the report. */
  message: string;
}

export interface SanityRun {
  seed: number;
  exitCode: number | null;
  specs: SpecOutcome[];
  /** The suite's stdout and stderr, for diagnosis of a run that produced no report. */
  output: string;
  wallMs: number;
  /** Set when a first run was repeated because csi-sanity could not connect (see connectTimedOut): its failures. */
  repeatedAfter?: string[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e] ?? m;
  });
}

/**
 * Ginkgo's JUnit report: one `<testcase name=... status=...>` per spec, with a `<failure>`/`<error>` or
 * `<skipped>` child. The suite-level "[BeforeSuite]"/"[AfterSuite]" nodes are specs too when they fail.
 */
export function parseJunit(xml: string): SpecOutcome[] {
  const out: SpecOutcome[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const attrs = m[1];
    const body = m[3] ?? '';
    const attr = (k: string) => unescapeXml(new RegExp(`\\b${k}="([^"]*)"`).exec(attrs)?.[1] ?? '');
    const name = attr('name');
    const declared = attr('status');
    let status: SpecStatus;
    if (
      /<(failure|error)\b/.test(body) ||
      declared === 'failed' ||
      declared === 'panicked' ||
      declared === 'interrupted' ||
      declared === 'timedout'
    )
      status = 'failed';
    else if (declared === 'pending') status = 'pending';
    else if (/<skipped\b/.test(body) || declared === 'skipped') status = 'skipped';
    else status = 'passed';
    const msg = /<(?:failure|error|skipped)\b[^>]*?message="([^"]*)"/.exec(body)?.[1] ?? '';
    out.push({ name, status, message: unescapeXml(msg) });
  }
  return out;
}

export interface SanityOptions {
  /** --csi.endpoint (unix://...). */
  endpoint: string;
  controllerEndpoint?: string;
  stagingDir: string;
  mountDir: string;
  /** Extra csi-sanity flags (e.g. -csi.testvolumeparameters=FILE, -ginkgo.focus=...). */
  args?: string[];
  reportFile: string;
  /** CSI_SANITY_SEED reproduces a run; otherwise random. */
  seed?: number;
  timeoutMs: number;
  /** Called once with the seed before the run starts (print it). */
  onSeed?: (seed: number) => void;
}

/**
 * True when every failed spec failed on csi-sanity's own gRPC connect to the driver (its Setup, before any RPC:
 * the Go error "Connection timed out", after 60 s), which happens to whichever spec runs first. Seen once in CI
 * (2026-12-04) against a driver that had answered Probe before the run and answered every later spec of the
 * same run. No answer of the driver's is involved, so such a run says nothing about the driver; it is repeated.
 */
export function connectTimedOut(run: SanityRun): boolean {
  const failed = run.specs.filter((s) => s.status === 'failed');
  return (
    failed.length > 0 &&
    failed.every((s) =>
      /^Unexpected error:\s*<\*errors\.errorString \| 0x[0-9a-f]+>:\s*Connection timed out\b/.test(s.message),
    )
  );
}

/**
 * Runs csi-sanity to completion (or the timeout, which kills it) and reads its JUnit report; once more, with the
 * same seed, when the first run's only failures are its own connect timing out (connectTimedOut).
 */
export async function runCsiSanity(o: SanityOptions): Promise<SanityRun> {
  const seed =
    o.seed ?? (process.env.CSI_SANITY_SEED ? Number(process.env.CSI_SANITY_SEED) : randomInt(1, 2 ** 31 - 1));
  o.onSeed?.(seed);
  const first = await runOnce(o, seed);
  if (!connectTimedOut(first)) return first;
  const repeatedAfter = summarize(first).failed;
  process.stdout.write(
    `csi-sanity could not connect to the driver; running it once more:\n${repeatedAfter.join('\n')}\n`,
  );
  return { ...(await runOnce(o, seed)), repeatedAfter };
}

async function runOnce(o: SanityOptions, seed: number): Promise<SanityRun> {
  const bin = csiSanityPath();
  if (!bin) throw new Error('csi-sanity not found (../shared/tools/csi-sanity or $CSI_SANITY)');
  rmSync(o.reportFile, { force: true });
  const argv = [
    `--csi.endpoint=${o.endpoint}`,
    ...(o.controllerEndpoint ? [`--csi.controllerendpoint=${o.controllerEndpoint}`] : []),
    `--csi.stagingdir=${o.stagingDir}`,
    `--csi.mountdir=${o.mountDir}`,
    `-ginkgo.seed=${seed}`,
    `-ginkgo.junit-report=${o.reportFile}`,
    '-ginkgo.no-color',
    ...(o.args ?? []),
  ];
  const started = Date.now();
  const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer) => {
    output += b.toString();
    if (output.length > 512 * 1024) output = output.slice(-256 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
  const exitCode = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  clearTimeout(timer);
  const wallMs = Date.now() - started;
  const specs = existsSync(o.reportFile) ? parseJunit(readFileSync(o.reportFile, 'utf8')) : [];
  return { seed, exitCode, specs, output, wallMs };
}

/** Counts and the names of what did not pass, for assertions that print what went wrong. */
export function summarize(run: SanityRun): {
  ran: number;
  passed: number;
  failed: string[];
  skipped: string[];
  pending: string[];
} {
  const failed = run.specs
    .filter((s) => s.status === 'failed')
    .map((s) => `${s.name}\n    ${s.message.split('\n').slice(0, 6).join('\n    ')}`);
  const skipped = run.specs.filter((s) => s.status === 'skipped').map((s) => s.name);
  const pending = run.specs.filter((s) => s.status === 'pending').map((s) => s.name);
  const ran = run.specs.filter((s) => s.status === 'passed' || s.status === 'failed').length;
  return { ran, passed: run.specs.filter((s) => s.status === 'passed').length, failed, skipped, pending };
}
