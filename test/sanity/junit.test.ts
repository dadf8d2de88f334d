/** The JUnit reader of test/helpers/csi-sanity.ts on Ginkgo v2's report format, so the sanity suites' counts mean what they say. */
import { connectTimedOut, parseJunit, summarize, type SanityRun, type SpecOutcome } from '../helpers/csi-sanity';

const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="1" errors="0" failures="1" time="1.5">
  <testsuite name="CSI Driver Test Suite" package="/x" tests="4" disabled="1" skipped="1" errors="0" failures="1" time="1.5">
    <testcase name="[It] Node Service should work" classname="CSI Driver Test Suite" status="passed" time="0.4"></testcase>
    <testcase name="[It] Controller Service [Controller Server] ControllerPublishVolume should fail when the volume is already published but is incompatible" classname="CSI Driver Test Suite" status="failed" time="0.2">
      <failure message="Expected an error to have occurred.  Got:&#xA;    &lt;nil&gt;: nil" type="failed">[FAILED] Expected an error</failure>
    </testcase>
    <testcase name="[It] ModifyVolume [Controller Server] should fail if no volume id is given" classname="CSI Driver Test Suite" status="skipped" time="0">
      <skipped message="skipped - ControllerModifyVolume not supported"></skipped>
    </testcase>
    <testcase name="[It] Controller Service [Controller Server] ListVolumes pagination should detect volumes added between pages" classname="CSI Driver Test Suite" status="pending" time="0">
      <skipped message="pending"></skipped>
    </testcase>
  </testsuite>
</testsuites>`;

describe('parseJunit', () => {
  it('reads one outcome per spec with its message, entities decoded, pending apart from skipped', () => {
    const specs = parseJunit(REPORT);
    expect(specs.map((s) => s.status)).toEqual(['passed', 'failed', 'skipped', 'pending']);
    expect(specs[1].message).toBe('Expected an error to have occurred.  Got:\n    <nil>: nil');
    expect(specs[2].message).toBe('skipped - ControllerModifyVolume not supported');
    const s = summarize({ seed: 1, exitCode: 1, specs, output: '', wallMs: 0 });
    expect({
      ran: s.ran,
      passed: s.passed,
      failed: s.failed.length,
      skipped: s.skipped,
      pending: s.pending.length,
    }).toEqual({
      ran: 2,
      passed: 1,
      failed: 1,
      skipped: ['[It] ModifyVolume [Controller Server] should fail if no volume id is given'],
      pending: 1,
    });
    expect(s.failed[0]).toContain('already published but is incompatible');
  });
});

describe('connectTimedOut', () => {
  const spec = (status: SpecOutcome['status'], message = ''): SpecOutcome => ({ name: '[It] x', status, message });
  const run = (specs: SpecOutcome[]): SanityRun => ({ seed: 1, exitCode: 1, specs, output: '', wallMs: 0 });
  // As csi-sanity v5.4.0 reported it in CI, the first spec of the run failing in its Setup.
  const CONNECT =
    'Unexpected error:\n    <*errors.errorString | 0xc00004a870>: \n    Connection timed out\n    {\n        s: "Connection timed out",\n    }';

  it("is true only when every failure is csi-sanity's own connect timing out", () => {
    expect(connectTimedOut(run([spec('failed', CONNECT), spec('passed')]))).toBe(true);
    expect(connectTimedOut(run([spec('passed'), spec('skipped')]))).toBe(false);
    expect(connectTimedOut(run([spec('failed', CONNECT), spec('failed', 'Expected an error')]))).toBe(false);
  });

  it('is false for a driver that answered with a gRPC error saying so', () => {
    const rpc =
      'Unexpected error:\n    <*status.Error | 0xc000>: \n    rpc error: code = Unavailable desc = Connection timed out';
    expect(connectTimedOut(run([spec('failed', rpc)]))).toBe(false);
  });
});
