/**
 * `doctor` against the real Keystone/Cinder/Nova of openstack-loopback: the cloud checks with the generated
 * cloud.conf, and the instance check with fake-node-0's server id as --node-id. The node checks need the
 * machine of a Kubernetes node, so they are skipped (--skip-node). Creates nothing in the cloud.
 *
 * Regression: real Cinder 21 answers its versioned root (`/v3/`) only with a token (only `/` is public),
 * so the cloud.cinder check must send one; the simulator did not show this.
 */
import { parseDoctorArgs, runDoctor } from '../../src/doctor/doctor-command';
import type { CheckResult } from '../../src/doctor/check';
import { checkInstance, doctorCloud } from '../../src/doctor/cloud-checks';
import {
  describeOpenStack,
  fakeNodeId,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
  loopbackPassword,
} from '../helpers/openstack-loopback';

describeOpenStack('doctor on openstack-loopback', () => {
  let nodeId: string;
  let results: CheckResult[];

  beforeAll(async () => {
    nodeId = await fakeNodeId(loopbackClients(loopbackAuth()));
    results = await runDoctor(
      parseDoctorArgs([`--cloud-config=${LOOPBACK_CLOUD_CONF}`, '--skip-node', `--node-id=${nodeId}`]),
    );
  });

  const one = (id: string): CheckResult => {
    const found = results.filter((r) => r.id === id);
    if (found.length !== 1)
      throw new Error(
        `expected one ${id} result, got ${found.length}: ${results.map((r) => `${r.id} ${r.status}`).join(', ')}`,
      );
    return found[0];
  };
  const notPassed = () => results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.status} ${r.message}`);

  it('passes every check, the instance check for --node-id included', () => {
    expect(notPassed()).toEqual([]);
    expect(one('cloud.cinder').message).toMatch(/microversions up to 3\.\d+/);
    const instance = one('cloud.instance');
    expect(instance.status).toBe('pass');
    expect(instance.message).toContain(nodeId);
  });

  it('passes the config, Keystone, catalog and Nova checks', () => {
    expect(one('config')).toMatchObject({ status: 'pass' });
    // Not the path itself: the secret filter blanks every occurrence of a secret value, also inside the path.
    expect(one('config').message).toMatch(/cloud\.conf parsed: \[Global\]$/);
    expect(one('cloud.keystone')).toMatchObject({ status: 'pass' });
    expect(one('cloud.catalog')).toMatchObject({ status: 'pass' });
    expect(one('cloud.catalog').message).toMatch(
      /Cinder v3 at http:\/\/127\.0\.0\.1:8776\/v3\/\S+, Nova at http:\/\/127\.0\.0\.1:8774/,
    );
    expect(one('cloud.nova')).toMatchObject({ status: 'pass' });
    expect(one('cloud.nova').message).toMatch(/microversions up to 2\.\d+/);
    expect(notPassed()).toEqual([]);
  });

  it('finds fake-node-0 in the real Nova by the --node-id given (the instance check on the same cloud)', async () => {
    const r = await checkInstance([doctorCloud(loopbackAuth())], nodeId, '--node-id');
    expect(r.status).toBe('pass');
    expect(r.message).toBe(`instance ${nodeId} (fake-node-0, from --node-id) exists in Nova`);
  });

  it('fails the instance check for a server id Nova does not have', async () => {
    const r = await checkInstance([doctorCloud(loopbackAuth())], '00000000-0000-4000-8000-000000000000', '--node-id');
    expect(r.status).toBe('fail');
    expect(r.message).toContain('not found in Nova');
  });

  it('prints no secret from cloud.conf', () => {
    expect(JSON.stringify(results)).not.toContain(loopbackPassword());
  });

  it('runs no node check with --skip-node', () => {
    expect(results.filter((r) => r.id.startsWith('node.'))).toEqual([]);
  });
});
