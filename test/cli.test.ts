/**
 * The built `cinder-csi-plugin` command as an operator runs it: real process, real socket, real signals.
 * Needs `npm run build` first (npm test does it).
 */
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callUnary, makeClient } from '../src/csi/proto';
import { startSimulator } from '../src/simulator';
import { freePort } from './helpers/free-port';

const BIN = join(__dirname, '..', 'bin', 'cinder-csi-plugin');
const PASSWORD = 'pa55#word;with"quote';

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Until the plugin serves on `socket`; a plugin that exits first fails at once with what it printed. */
async function waitServing(child: ChildProcess, socket: string, out: () => string): Promise<void> {
  await waitFor(() => existsSync(socket) || child.exitCode !== null || child.signalCode !== null, 20_000).catch(
    () => undefined,
  );
  if (!existsSync(socket))
    throw new Error(`the plugin did not serve on ${socket} (exit ${child.exitCode ?? child.signalCode}):\n${out()}`);
}

describe('cinder-csi-plugin command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const conf = join(dir, 'cloud.conf');
  writeFileSync(
    conf,
    `[Global]\nauth-url=http://127.0.0.1:1/v3\nusername=demo\npassword="${PASSWORD.replace(/"/g, '\\"')}"\n` +
      'user-domain-name=Default\ntenant-name=demo\n[Shiny]\nx=1\n',
  );

  it('serves the Identity service on a unix socket and stops cleanly on SIGTERM', async () => {
    const socket = join(dir, 'csi.sock');
    const port = await freePort();
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
      BIN,
      '--endpoint',
      `unix://${socket}`,
      '--cloud-config',
      conf,
      '--provide-node-service=false',
      '--v=5',
      `--http-endpoint=127.0.0.1:${port}`,
    ]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    await waitServing(child, socket, () => out);
    const client = makeClient('Identity', `unix://${socket}`);
    const info = await callUnary(client, 'GetPluginInfo', {});
    expect(info).toMatchObject({ name: 'cinder.csi.openstack.org' });
    const caps = await callUnary<{ capabilities: unknown[] }>(client, 'GetPluginCapabilities', {});
    expect(JSON.stringify(caps)).toContain('CONTROLLER_SERVICE');
    expect(await callUnary(client, 'Probe', {})).toEqual({ ready: { value: true } });
    client.close();
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok']);
    const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(scraped).toMatch(/cinder_csi_operation_duration_seconds_count\{[^}]*method="GetPluginInfo"[^}]*\} 1/);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(out).toContain('[Shiny]: unknown section ignored');
    expect(out).toContain('GetPluginInfo succeeded');
    expect(out).not.toContain('pa55');
  });

  it('authenticates each cloud as soon as it serves, so the first CreateVolume does not wait for Keystone', async () => {
    const sim = await startSimulator();
    const simConf = join(dir, 'sim.conf');
    writeFileSync(simConf, sim.cloudConf(), { mode: 0o600 });
    const socket = join(dir, 'warm.sock');
    const child = spawn(process.execPath, [
      BIN,
      '--endpoint',
      `unix://${socket}`,
      '--cloud-config',
      simConf,
      '--provide-node-service=false',
    ]);
    try {
      await waitFor(() => sim.counters()['keystone.token.create'] === 1, 10_000);
      await waitFor(() => existsSync(socket), 10_000);
      const client = makeClient('Controller', `unix://${socket}`);
      const cap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
      await callUnary(client, 'CreateVolume', {
        name: 'pvc-warm',
        capacity_range: { required_bytes: String(1024 ** 3) },
        volume_capabilities: [cap],
      });
      client.close();
      expect(sim.counters()['keystone.token.create']).toBe(1);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await sim.stop();
    }
  });

  it('logs at start that a cloud could not authenticate, without the password, and still serves', async () => {
    const socket = join(dir, 'cold.sock');
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
      BIN,
      '--endpoint',
      `unix://${socket}`,
      '--cloud-config',
      conf,
      '--provide-node-service=false',
    ]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await waitFor(() => out.includes('could not authenticate at start'), 15_000);
      const client = makeClient('Identity', `unix://${socket}`);
      expect(await callUnary(client, 'Probe', {})).toEqual({ ready: { value: true } });
      client.close();
      expect(out).toContain('ECONNREFUSED');
      expect(out).not.toContain('pa55');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('ends with one line naming an unknown flag and exit code 2', () => {
    const r = run(['--endpoint=unix:///tmp/x.sock', '--frobnicate=1']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['cinder-csi-plugin: unknown flag --frobnicate']);
  });

  it('ends with exit code 2 for a bad value', () => {
    const r = run(['--endpoint=unix:///tmp/x.sock', '--with-topology=sometimes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--with-topology');
  });

  it('refuses to start the controller without a cloud config, naming the flag', () => {
    const r = run([`--endpoint=unix://${dir}/n.sock`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--cloud-config is required');
  });

  it('names the file, section and key of a bad cloud.conf', () => {
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, '[Global]\nauth-url=http://k/v3\ntoken=t\ntls-insecure=perhaps\n');
    const r = run([`--endpoint=unix://${dir}/b.sock`, `--cloud-config=${bad}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${bad}: [Global] tls-insecure: must be a boolean`);
  });

  it("takes a first argument naming this program as the reference image's manifests pass it, and reads the flags after it", () => {
    // The full reference argument lists run in test/image (their node service would share this host's state dirs).
    expect(run(['/bin/cinder-csi-plugin', 'version'])).toMatchObject({
      status: 0,
      stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/),
    });
    const r = run(['/bin/cinder-csi-plugin', `--endpoint=unix://${dir}/p.sock`, '--frobnicate']);
    expect([r.status, r.stderr.trim()]).toEqual([2, 'cinder-csi-plugin: unknown flag --frobnicate']);
  });

  it('prints its version', () => {
    const r = run(['version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
