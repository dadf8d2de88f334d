/**
 * `doctor` against the simulator: a healthy cloud passes every check, and each fault (wrong password, Cinder
 * down, an unknown node id, an unreachable metadata service) turns into a fail with a hint, without ever
 * printing a secret. Node checks read a temp kubelet dir, a canned mountinfo and a stubbed PATH.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { type CheckResult, formatText } from '../../src/doctor/check';
import { type DoctorDeps, type DoctorOptions, runDoctor, runDoctorCommand } from '../../src/doctor/doctor-command';
import { startSimulator, type Simulator } from '../../src/simulator';

let sim: Simulator;
let dir: string;
let confFile: string;
let deps: DoctorDeps;

beforeEach(async () => {
  sim = await startSimulator({ devicePlane: false });
  dir = mkdtempSync(join(tmpdir(), 'doctor-'));
  confFile = join(dir, 'cloud.conf');
  writeFileSync(confFile, sim.cloudConf());
  const mountinfo = join(dir, 'mountinfo');
  writeFileSync(mountinfo, '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n');
  const fuse = join(dir, 'fuse');
  writeFileSync(fuse, '');
  deps = {
    http: { retry: { maxRetries: 1, initialMs: 1, maxDelayMs: 5 } },
    commandExists: async () => true,
    mountInfoPath: mountinfo,
    fuseDevice: fuse,
  };
});

afterEach(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});

function options(over: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    cloudConfig: [confFile],
    cloudNames: [''],
    metadataUrl: sim.metadataUrl,
    byIdDir: dir,
    kubeletDir: dir,
    json: false,
    skipNode: false,
    skipCloud: false,
    ...over,
  };
}

const byId = (results: CheckResult[], id: string) => results.find((r) => r.id === id);

describe('doctor against a healthy simulator', () => {
  it('passes every check, the instance found through the metadata service', async () => {
    const results = await runDoctor(options(), deps);
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(results.map((r) => r.id)).toEqual([
      'config',
      'cloud.keystone',
      'cloud.catalog',
      'cloud.cinder',
      'cloud.nova',
      'node.metadata',
      'node.tools.required',
      'node.tools.optional',
      'node.by-id',
      'node.fuse',
      'node.kubelet-dir',
      'cloud.instance',
    ]);
    expect(byId(results, 'node.metadata')?.message).toContain(sim.localServerId);
    expect(byId(results, 'cloud.instance')?.message).toContain(sim.localServerId);
    expect(byId(results, 'cloud.cinder')?.message).toMatch(/microversions up to 3\.\d+/);
  });

  it('prints a JSON array with id, status and message, and exits 0', async () => {
    let out = '';
    const code = await runDoctorCommand(
      [
        '--cloud-config',
        confFile,
        '--metadata-url',
        sim.metadataUrl,
        `--by-id-dir=${dir}`,
        `--kubelet-dir=${dir}`,
        '--json',
      ],
      { stdout: (t) => (out += t) },
      deps,
    );
    expect(code).toBe(0);
    const parsed = JSON.parse(out) as Array<Record<string, unknown>>;
    expect(Array.isArray(parsed)).toBe(true);
    for (const r of parsed) {
      expect(Object.keys(r).sort()).toEqual(expect.arrayContaining(['id', 'message', 'status']));
      expect(['pass', 'warn', 'fail']).toContain(r.status);
    }
    expect(out).not.toContain(sim.credentials.password);
  });

  it('skips node checks with --skip-node and checks the --node-id instance', async () => {
    const results = await runDoctor(options({ skipNode: true, nodeId: sim.localServerId }), deps);
    expect(results.some((r) => r.id.startsWith('node.'))).toBe(false);
    expect(byId(results, 'cloud.instance')).toMatchObject({ status: 'pass' });
  });

  it('warns on unknown cloud.conf keys', async () => {
    writeFileSync(confFile, sim.cloudConf().replace('[Global]', '[Global]\nno-such-key = 1'));
    const results = await runDoctor(options({ skipNode: true }), deps);
    expect(byId(results, 'config')).toMatchObject({ status: 'warn', message: expect.stringContaining('no-such-key') });
  });
});

describe('doctor with faults', () => {
  it('fails Keystone with a credentials hint on a wrong password, and never prints either password', async () => {
    const wrong = 'not-the-password-123';
    writeFileSync(confFile, sim.cloudConf().split(sim.credentials.password).join(wrong));
    let out = '';
    const code = await runDoctorCommand(
      ['--cloud-config', confFile, '--skip-node'],
      { stdout: (t) => (out += t) },
      deps,
    );
    expect(code).toBe(1);
    expect(out).toMatch(/^FAIL\s+cloud\.keystone/m);
    expect(out).toMatch(/hint: Keystone rejected the credentials/);
    expect(out).not.toContain(wrong);
    expect(out).not.toContain(sim.credentials.password);
  });

  it('fails the Cinder check when its version document answers 503', async () => {
    sim.injectFault('cinder.versions', { kind: 'http-status', status: 503, times: Infinity });
    const results = await runDoctor(options({ skipNode: true }), deps);
    expect(byId(results, 'cloud.cinder')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('503'),
      hint: expect.any(String),
    });
    expect(byId(results, 'cloud.nova')?.status).toBe('pass');
  });

  it('fails the Nova check when Nova does not answer', async () => {
    sim.injectFault('nova.versions', { kind: 'http-status', status: 502, times: Infinity });
    const results = await runDoctor(options({ skipNode: true }), deps);
    expect(byId(results, 'cloud.nova')?.status).toBe('fail');
  });

  it('fails with "instance not found in Nova" for an unknown --node-id', async () => {
    const results = await runDoctor(options({ skipNode: true, nodeId: randomUUID() }), deps);
    expect(byId(results, 'cloud.instance')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('not found in Nova'),
    });
  });

  it('fails the metadata check when the metadata service is unreachable', async () => {
    const results = await runDoctor(options({ metadataUrl: 'http://127.0.0.1:1' }), deps);
    expect(byId(results, 'node.metadata')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('--node-id'),
    });
    expect(byId(results, 'cloud.instance')).toBeUndefined();
  });

  it('only warns about metadata when --node-id stands in for it', async () => {
    const results = await runDoctor(options({ metadataUrl: 'http://127.0.0.1:1', nodeId: sim.localServerId }), deps);
    expect(byId(results, 'node.metadata')?.status).toBe('warn');
    expect(byId(results, 'cloud.instance')?.status).toBe('pass');
  });

  it('fails when no cloud.conf is given, and when it cannot be read', async () => {
    expect(byId(await runDoctor(options({ cloudConfig: [], skipNode: true }), deps), 'config')?.status).toBe('fail');
    const missing = await runDoctor(options({ cloudConfig: [join(dir, 'absent.conf')], skipNode: true }), deps);
    expect(byId(missing, 'config')).toMatchObject({ status: 'fail', message: expect.stringContaining('absent.conf') });
  });

  it('fails a --cloud-name without a section', async () => {
    const results = await runDoctor(options({ cloudNames: ['', 'other'], skipNode: true }), deps);
    expect(results.find((r) => r.id === 'config.cloud-name')).toMatchObject({ status: 'fail', cloud: 'other' });
    expect(byId(results, 'cloud.keystone')?.status).toBe('pass');
  });

  it('text output has one line per check and a summary', async () => {
    const results = await runDoctor(options({ skipNode: true, nodeId: randomUUID() }), deps);
    const text = formatText(results);
    expect(
      text
        .trim()
        .split('\n')
        .filter((l) => /^(PASS|WARN|FAIL) /.test(l)),
    ).toHaveLength(results.length);
    expect(text).toMatch(/\d+ passed, \d+ warnings, 1 failed\n$/);
  });
});
