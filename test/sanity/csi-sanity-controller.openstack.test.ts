/**
 * csi-sanity's Controller specs (`-ginkgo.focus=[Controller Server]`) against the real Cinder 21 and Nova 26 of
 * openstack-loopback: the built plugin as a controller-only process on the loopback's cloud.conf
 * (`--csi.controllerendpoint`), and a node-only process whose node id is the server fake-node-0
 * (`--csi.endpoint`: csi-sanity asks NodeGetInfo for the node ControllerPublish attaches to). Every volume and
 * snapshot the controller makes carries `cinder.csi.openstack.org/cluster: <this run's tag>` in its metadata;
 * afterwards none with that tag may be left in Cinder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeIf } from '../helpers/prereq';
import { csiSanityPath, runCsiSanity, summarize, type SanityRun } from '../helpers/csi-sanity';
import {
  Cleanup,
  describeOpenStack,
  fakeNodeId,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
  type CountingClients,
} from '../helpers/openstack-loopback';
import { probeUntilReady, spawnPlugin, type PluginProcess } from '../../bench/process-helpers';
import { CLUSTER_METADATA_KEY } from '../../src/csi/controller-params';
import { SANITY_ALLOWED_SKIPS, SANITY_PENDING, unexpectedPending } from './expected';

const SUITE_TIMEOUT_MS = 15 * 60_000;
/** Controller specs that need what a real cloud run leaves out: the attach-limit spec would attach 256 volumes. */
const ATTACH_LIMIT_SPEC = /should fail when publishing more volumes than the node max attach limit$/;

const NAME = 'csi-sanity v5.4.0, Controller specs, against openstack-loopback';
// Without the tool: todo locally, a failure under CI=true (prereq.ts's rule), as without the control plane.
const describeWithTool = (body: () => void) =>
  csiSanityPath()
    ? describeOpenStack(NAME, body)
    : describeIf(NAME, { commands: ['csi-sanity (../shared/tools)'] }, body);

describeWithTool(() => {
  let dir: string;
  let controller: PluginProcess;
  let node: PluginProcess;
  let c: CountingClients;
  let run: SanityRun;
  const cluster = `osl-it-sanity-${randomBytes(3).toString('hex')}`;
  const ours = (metadata: Record<string, string> | undefined) => metadata?.[CLUSTER_METADATA_KEY] === cluster;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'osl-sanity-'));
    c = loopbackClients(loopbackAuth());
    const nodeId = await fakeNodeId(c);
    const kubelet = join(dir, 'kubelet');
    for (const d of [kubelet, join(kubelet, 'plugins'), join(kubelet, 'pods'), join(dir, 'by-id')])
      mkdirSync(d, { recursive: true });
    const ctlSock = join(dir, 'controller.sock');
    const nodeSock = join(dir, 'node.sock');
    controller = spawnPlugin([
      '--endpoint',
      `unix://${ctlSock}`,
      '--cloud-config',
      LOOPBACK_CLOUD_CONF,
      '--provide-node-service=false',
      '--cluster',
      cluster,
    ]);
    node = spawnPlugin([
      '--endpoint',
      `unix://${nodeSock}`,
      '--provide-controller-service=false',
      '--node-id',
      nodeId,
      '--kubelet-dir',
      kubelet,
      '--by-id-dir',
      join(dir, 'by-id'),
      '--fuse-state-dir',
      join(dir, 'fuse-state'),
    ]);
    await Promise.all([probeUntilReady(controller, ctlSock), probeUntilReady(node, nodeSock)]);
    const params = join(dir, 'volume-parameters.yaml');
    writeFileSync(params, 'type: __DEFAULT__\n');
    run = await runCsiSanity({
      endpoint: `unix://${nodeSock}`,
      controllerEndpoint: `unix://${ctlSock}`,
      stagingDir: join(kubelet, 'plugins', 'sanity-stage'),
      mountDir: join(kubelet, 'pods', 'sanity-mount'),
      args: ['-ginkgo.focus=\\[Controller Server\\]', `--csi.testvolumeparameters=${params}`],
      reportFile: join(dir, 'junit.xml'),
      timeoutMs: SUITE_TIMEOUT_MS,
      onSeed: (seed) =>
        process.stdout.write(
          `csi-sanity (openstack-loopback) -ginkgo.seed=${seed} (rerun with CSI_SANITY_SEED=${seed})\n`,
        ),
    });
    const s = summarize(run);
    for (const sp of run.specs.filter((x) => x.status === 'skipped'))
      process.stdout.write(`  skipped: ${sp.name}: ${sp.message}\n`);
    process.stdout.write(
      `csi-sanity (openstack-loopback): ${s.ran} ran, ${s.passed} passed, ${s.failed.length} failed, ${s.skipped.length} skipped, ${s.pending.length} pending in ${(run.wallMs / 1000).toFixed(1)} s\n`,
    );
  }, SUITE_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await controller?.stop(5000);
    await node?.stop(5000);
    if (c) {
      // A failed spec may leave what it made: delete what carries this run's tag, then check nothing does.
      const cleanup = new Cleanup(c);
      for (const s of (await c.cinder.listSnapshots()).items) if (ours(s.metadata)) cleanup.snapshot(s.id);
      for (const v of (await c.cinder.listVolumes()).items) if (ours(v.metadata)) cleanup.volume(v.id);
      await cleanup.run();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 300_000);

  it('ran the Controller specs with no failure', () => {
    if (run.specs.length === 0)
      throw new Error(`no JUnit report (exit ${run.exitCode}); output:\n${run.output.slice(-4000)}`);
    expect(summarize(run).failed).toEqual([]);
  });

  it('skipped no Controller spec but the attach-limit one and those the simulator run may skip', () => {
    const { skipped, pending, ran } = summarize(run);
    // Outside the focus everything is skipped; inside it, only these.
    const controllerSkips = skipped.filter((n) => /\[Controller Server\]/.test(n));
    expect(
      controllerSkips.filter((n) => !ATTACH_LIMIT_SPEC.test(n) && !SANITY_ALLOWED_SKIPS.some((a) => a.spec.test(n))),
    ).toEqual([]);
    expect(unexpectedPending(pending)).toEqual([]);
    expect(pending.length).toBeLessThanOrEqual(SANITY_PENDING.length);
    expect(ran).toBeGreaterThan(40);
  });

  it('left nothing of this run in Cinder', async () => {
    const volumes = (await c.cinder.listVolumes()).items.filter((v) => ours(v.metadata));
    const snapshots = (await c.cinder.listSnapshots()).items.filter((s) => ours(s.metadata));
    expect({
      volumes: volumes.map((v) => `${v.id} ${v.name} ${v.status}`),
      snapshots: snapshots.map((s) => `${s.id} ${s.name}`),
    }).toEqual({ volumes: [], snapshots: [] });
  });
});
