/**
 * The upstream conformance suite, whole: csi-sanity (no focus, no skip) against the built plugin
 * (`node bin/cinder-csi-plugin`, one process serving Controller and Node) and the OpenStack simulator with its
 * device plane on loop devices; the node reads its instance id and zone from the simulator's metadata service.
 * Every failed spec is named; every skipped spec must be one whose capability the driver does not advertise
 * yet. The seed is printed (CSI_SANITY_SEED=<n> reruns the same order).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { csiSanityPath, runCsiSanity, summarize, type SanityRun } from '../helpers/csi-sanity';
import { startDeviceWorld, type DeviceWorld } from '../../bench/device-world';
import { probeUntilReady, spawnPlugin, type PluginProcess } from '../../bench/process-helpers';
import { SANITY_PENDING, SANITY_TOTAL_SPECS, unexpectedPending, unexpectedSkips } from './expected';

/** The node's attach limit, small so the attach-limit spec attaches a handful of loop devices, not 256. */
const ATTACH_LIMIT = 3;
/** The whole suite takes about a minute here; the rest is margin for a loaded CI machine. */
const SUITE_TIMEOUT_MS = 12 * 60_000;

const missingTool = csiSanityPath() ? [] : ['csi-sanity (../shared/tools)'];

describeIf(
  'csi-sanity v5.4.0, whole suite, against the plugin and the simulator',
  { root: true, loop: true, commands: ['mkfs.ext4', 'blkid', ...missingTool] },
  () => {
    let world: DeviceWorld;
    let plugin: PluginProcess;
    let run: SanityRun;

    beforeAll(async () => {
      world = await startDeviceWorld('csi-sanity-', {});
      // The Nova server refuses the attachment past the limit as a real hypervisor does (403), and the node
      // advertises the same number, so the attach-limit spec meets both.
      world.sim.setServerMaxVolumes(world.sim.localServerId, ATTACH_LIMIT);
      const conf = join(world.dir, 'cloud.conf');
      writeFileSync(conf, `${world.sim.cloudConf()}\n[BlockStorage]\nnode-volume-attach-limit = ${ATTACH_LIMIT}\n`, {
        mode: 0o600,
      });
      const socket = join(world.dir, 'csi.sock');
      plugin = spawnPlugin([
        '--endpoint',
        `unix://${socket}`,
        '--cloud-config',
        conf,
        '--kubelet-dir',
        world.kubeletDir,
        '--by-id-dir',
        world.byIdDir,
        '--metadata-url',
        world.sim.metadataUrl,
        '--cluster',
        'sanity',
        '--fuse-state-dir',
        join(world.dir, 'fuse-state'),
      ]);
      await probeUntilReady(plugin, socket);
      // csi-sanity makes its staging and mount dirs itself, under parents that must exist.
      mkdirSync(join(world.kubeletDir, 'plugins'));
      mkdirSync(join(world.kubeletDir, 'pods'));
      const params = join(world.dir, 'volume-parameters.yaml');
      // A non-default Cinder volume type: every created volume goes through the type lookup.
      writeFileSync(params, 'type: multiattach\n');
      // ModifyVolume specs then retype for real: multiattach -> __DEFAULT__.
      const mutable = join(world.dir, 'mutable-parameters.yaml');
      writeFileSync(mutable, 'type: __DEFAULT__\n');
      run = await runCsiSanity({
        endpoint: `unix://${socket}`,
        stagingDir: join(world.kubeletDir, 'plugins', 'sanity-stage'),
        mountDir: join(world.kubeletDir, 'pods', 'sanity-mount'),
        args: [
          '--csi.testnodevolumeattachlimit',
          `--csi.testvolumeparameters=${params}`,
          `--csi.testvolumemutableparameters=${mutable}`,
        ],
        reportFile: join(world.dir, 'junit.xml'),
        timeoutMs: SUITE_TIMEOUT_MS,
        onSeed: (seed) =>
          process.stdout.write(`csi-sanity -ginkgo.seed=${seed} (rerun with CSI_SANITY_SEED=${seed})\n`),
      });
      const s = summarize(run);
      for (const sp of run.specs.filter((x) => x.status === 'skipped'))
        process.stdout.write(`  skipped: ${sp.name}: ${sp.message}\n`);
      process.stdout.write(
        `csi-sanity: ${run.specs.length} specs, ${s.ran} ran, ${s.passed} passed, ${s.failed.length} failed, ${s.skipped.length} skipped, ${s.pending.length} pending in ${(run.wallMs / 1000).toFixed(1)} s (seed ${run.seed})\n`,
      );
    }, SUITE_TIMEOUT_MS + 60_000);

    afterAll(async () => {
      await plugin?.stop(5000);
      await world?.sim.stop();
      if (world) {
        const { readMountInfo } = await import('../../src/mount/mountinfo');
        const { execFile } = await import('../../src/mount/exec');
        for (const m of (await readMountInfo()).filter((x) => x.mountPoint.startsWith(world.dir + '/')).reverse()) {
          await execFile('umount', ['-l', m.mountPoint]).catch(() => undefined);
        }
        rmSync(world.dir, { recursive: true, force: true });
      }
    }, 60_000);

    it('produced a report of every spec', () => {
      if (run.specs.length === 0)
        throw new Error(`no JUnit report (exit ${run.exitCode}); output:\n${run.output.slice(-4000)}`);
      expect(run.specs.length).toBe(SANITY_TOTAL_SPECS);
    });

    it('has no failed spec', () => {
      expect(summarize(run).failed).toEqual([]);
    });

    it("skips no spec (every capability is advertised) and leaves only upstream's pending spec unrun", () => {
      const { ran, passed, skipped, pending } = summarize(run);
      expect(unexpectedSkips(skipped)).toEqual([]);
      expect(unexpectedPending(pending)).toEqual([]);
      expect(pending).toHaveLength(SANITY_PENDING.length);
      // Everything else ran and passed: 91 ran / 0 skipped once every capability is advertised.
      expect({ ran, passed }).toEqual({
        ran: SANITY_TOTAL_SPECS - SANITY_PENDING.length - skipped.length,
        passed: ran,
      });
    });

    it('exits 0', () => {
      expect(run.exitCode).toBe(0);
    });
  },
);
