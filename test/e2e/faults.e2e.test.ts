/**
 * Step 7 of the scenario: faults through the real stack (kube-loopback's kubelet and kubernetes-csi sidecars,
 * the driver as host processes, the simulator's fault injection). The controller SIGKILLed while csi-attacher
 * waits on it; a Cinder create that ends in `error`; a 30 s Keystone outage during a scale-up.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { KUBE_LOOPBACK_DIR, KUBECTL, kubectl, readOrUndefined, waitUntil } from '../../bench/kube/kube';
import { REPO, startStack, type Stack } from '../../bench/kube/stack';
import { keystoneOutageStep, killDuringAttachStep, provisioningFailedStep } from './scenario-steps';

const NEEDS = {
  root: true,
  loop: true,
  commands: ['losetup', 'mkfs.ext4', 'e2fsck', 'blkid'],
  paths: [join(KUBE_LOOPBACK_DIR, 'up.sh'), KUBECTL, join(REPO, 'dist', 'src', 'cli.js')],
};
const SC = 'csi-cinder-sc-delete';
const OUTAGE_MS = 30_000;

describeIf('e2e: faults through kubelet and the kubernetes-csi sidecars', NEEDS, () => {
  let s: Stack;
  const ns = `e2e-f-${randomBytes(3).toString('hex')}`;
  const kc = (args: string[]) => kubectl(s.env.KUBECONFIG, args);

  beforeAll(async () => {
    s = await startStack({ fuse: false });
    await kc(['create', 'namespace', ns]);
    await kc([
      'delete',
      '--ignore-not-found',
      '-f',
      join(REPO, 'manifests', 'storageclasses', 'csi-cinder-sc-delete.yaml'),
    ]);
    await kc(['apply', '-f', join(REPO, 'manifests', 'storageclasses', 'csi-cinder-sc-delete.yaml')]);
  }, 240_000);

  afterAll(async () => {
    if (!s) return;
    try {
      s.sim.clearFaults();
      await kc(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
      await waitUntil(
        `namespace ${ns} and its PVs gone`,
        120_000,
        async () => {
          const left = (await s.api.core.listPersistentVolume()).items.filter(
            (pv) => pv.spec?.claimRef?.namespace === ns,
          );
          return !(await readOrUndefined(() => s.api.core.readNamespace({ name: ns }))) && left.length === 0
            ? true
            : undefined;
        },
        500,
      );
      await waitUntil('no Cinder volume', 60_000, async () => (s.sim.listVolumes().length === 0 ? true : undefined));
    } finally {
      await s.stop();
    }
  }, 240_000);

  it('the controller SIGKILLed while csi-attacher waits on ControllerPublishVolume: restarted, the pod still starts', async () => {
    await killDuringAttachStep({ ...s, ns }, SC, async () => {
      const old = s.procs.get('controller')!;
      await old.kill();
      expect(old.child.signalCode).toBe('SIGKILL');
      s.startController();
    });
  }, 180_000);

  it("a Cinder create ending in error shows as a ProvisioningFailed event with the driver's message; the retry provisions", async () => {
    await provisioningFailedStep({ ...s, ns }, SC);
  }, 240_000);

  it('a 30 s Keystone outage during a scale-up delays it and nothing more', async () => {
    await keystoneOutageStep({ ...s, ns }, SC, OUTAGE_MS);
    // The driver never restarted: its Probe does not depend on Keystone.
    for (const p of ['controller', 'node']) expect(s.procs.get(p)!.child.exitCode).toBeNull();
  }, 300_000);
});
