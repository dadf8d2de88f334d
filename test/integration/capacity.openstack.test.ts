/**
 * GetCapacity against the real Cinder 21 of openstack-loopback: the shapes of `GET /limits` and
 * `GET /os-quota-sets/{project}?usage=true` (per-type keys included) that src/openstack/cinder-limits.ts and the
 * simulator's cinder-quotas.ts rely on, pinned here and compared with the simulator's; and the numbers: with a
 * per-type quota the admin sets on a volume type made for this suite, capacity drops by exactly the size of a
 * volume created with that type. The project-wide quota of demo is shared with other suites and stays as it is
 * (only per_volume_gigabytes is set, to a value no other suite reaches, and restored). Everything made is
 * deleted and every quota restored in afterAll.
 */
import { loadCloudConfigFiles } from '../../src/config/cloud-conf';
import type { BlockStorageOptions } from '../../src/config/types';
import { controllerHandlers } from '../../src/csi/controller';
import { loadCsiProto } from '../../src/csi/proto';
import { createClouds } from '../../src/openstack/clients';
import type { CinderQuotaSetUsage } from '../../src/openstack/cinder-limits';
import { startSimulator } from '../../src/simulator';
import { createCloudClients } from '../../src/openstack/clients';
import { parseCloudConfig } from '../../src/config/cloud-conf';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';
import { logSink } from '../helpers/log-sink';
import {
  Cleanup,
  type CountingClients,
  describeOpenStack,
  itName,
  LOOPBACK_CLOUD_CONF,
  loopbackAuth,
  loopbackClients,
  loopbackIds,
} from '../helpers/openstack-loopback';
import { GIB, MOUNT_RWO } from '../helpers/sim-controller';

const SUITE = 'cap';
const RPC_DEADLINE_MS = 30_000;
/** A per_volume_gigabytes far above anything the suites create, so setting it disturbs no one. */
const PER_VOLUME_GIB = 5000;
const TYPE_QUOTA_GIB = 10;

/** The keys and entry fields of a quota set, with the per-type keys' type names replaced by `<type>`. */
function quotaShape(set: CinderQuotaSetUsage, types: string[]): string[] {
  const keys = new Set<string>();
  for (const [k, v] of Object.entries(set)) {
    const t = types.find((x) => k.endsWith(`_${x}`) && /^(volumes|gigabytes|snapshots)_/.test(k));
    const key = t ? k.replace(`_${t}`, '_<type>') : k;
    keys.add(typeof v === 'object' ? `${key}{${Object.keys(v).sort().join(',')}}` : `${key}:${typeof v}`);
  }
  return [...keys].sort();
}

describeOpenStack('GetCapacity on openstack-loopback', () => {
  let h: CsiHarness;
  let c: CountingClients;
  let admin: CountingClients;
  let cleanup: Cleanup;
  let typeName: string;
  let typeId: string | undefined;
  let project: string;
  let perVolumeBefore: number | undefined;

  const call = <T = any>(rpc: string, req: object = {}) => h.call<T>('Controller', rpc, req, RPC_DEADLINE_MS);
  const capacity = (parameters: Record<string, string> = {}) =>
    call('GetCapacity', {
      parameters,
      accessible_topology: { segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } },
    });

  /** Cinder's REST with the admin user's token scoped to project demo (types and quota updates are admin-only). */

  async function adminApi(
    method: string,
    path: string,
    body?: object,
  ): Promise<{ status: number; json: Record<string, any> }> {
    const base = await admin.keystone.endpoint(['volumev3']);
    const r = await fetch(`${base}${path}`, {
      method,
      headers: {
        'X-Auth-Token': await admin.keystone.token(),
        Accept: 'application/json',
        'Content-Type': 'application/json',
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : {} };
  }

  beforeAll(async () => {
    const conf = loadCloudConfigFiles([LOOPBACK_CLOUD_CONF], { requireCredentials: true });
    const blockStorage: BlockStorageOptions = {
      rescanOnResize: false,
      ignoreVolumeAz: false,
      ignoreVolumeMicroversion: false,
    };
    h = await startHarness([
      {
        definition: loadCsiProto().ControllerService,
        handlers: controllerHandlers({
          clouds: createClouds(conf.clouds),
          blockStorage,
          cluster: 'osl-it',
          withTopology: true,
          pvcAnnotations: false,
          log: logSink('info').log,
        }),
      },
    ]);
    c = loopbackClients(loopbackAuth());
    admin = loopbackClients({ ...loopbackAuth(), username: 'admin', userId: undefined });
    cleanup = new Cleanup(c);
    if ((await cleanup.adoptLeftovers(SUITE)) > 0) await cleanup.run();
    project = loopbackIds().demo_project_id;
    typeName = itName(SUITE, 'type');
    const made = await adminApi('POST', '/types', { volume_type: { name: typeName } });
    expect(made.status).toBe(200);
    typeId = made.json.volume_type.id;
    const set = await adminApi('PUT', `/os-quota-sets/${project}`, {
      quota_set: { [`gigabytes_${typeName}`]: TYPE_QUOTA_GIB },
    });
    expect(set.status).toBe(200);
  });

  afterAll(async () => {
    await h?.close();
    await cleanup?.run();
    if (perVolumeBefore !== undefined)
      await adminApi('PUT', `/os-quota-sets/${project}`, { quota_set: { per_volume_gigabytes: perVolumeBefore } });
    if (typeId) {
      await adminApi('PUT', `/os-quota-sets/${project}`, { quota_set: { [`gigabytes_${typeName}`]: -1 } });
      expect((await adminApi('DELETE', `/types/${typeId}`)).status).toBe(202);
    }
    // Nothing of this suite is left in Cinder.
    const left = (await c.cinder.listVolumes()).items.filter((v) => v.name?.startsWith(`osl-it-${SUITE}-`));
    expect(left).toEqual([]);
  });

  it('reads the limits and the quota set with usage in the shapes the client and the simulator use', async () => {
    const limits = await c.cinder.getAbsoluteLimits();
    expect(Object.keys(limits).sort()).toEqual([
      'maxTotalBackupGigabytes',
      'maxTotalBackups',
      'maxTotalSnapshots',
      'maxTotalVolumeGigabytes',
      'maxTotalVolumes',
      'totalBackupGigabytesUsed',
      'totalBackupsUsed',
      'totalGigabytesUsed',
      'totalSnapshotsUsed',
      'totalVolumesUsed',
    ]);
    const quota = await (c.cinder as unknown as { getQuotaUsage(): Promise<CinderQuotaSetUsage> }).getQuotaUsage();
    expect(quota.id).toBe(project);
    expect(quota[`gigabytes_${typeName}`]).toEqual({ limit: TYPE_QUOTA_GIB, in_use: 0, reserved: 0 });
    expect(quota.gigabytes).toEqual({
      limit: expect.any(Number),
      in_use: limits.totalGigabytesUsed,
      reserved: expect.any(Number),
    });
    const realTypes = (await adminApi('GET', '/types')).json.volume_types.map(
      (t: { name: string }) => t.name,
    ) as string[];
    // The simulator's quota set has the same keys (each type's three) and entry fields.
    const sim = await startSimulator({ devicePlane: false });
    try {
      const simCinder = createCloudClients(
        parseCloudConfig([{ file: 'sim', text: sim.cloudConf() }], { requireCredentials: true }).clouds.get('')!,
      ).cinder;
      const simQuota = await (
        simCinder as unknown as { getQuotaUsage(): Promise<CinderQuotaSetUsage> }
      ).getQuotaUsage();
      const simTypes = ['__DEFAULT__', 'multiattach'];
      expect(quotaShape(simQuota, simTypes)).toEqual(quotaShape(quota, realTypes));
      expect(Object.keys(await simCinder.getAbsoluteLimits()).sort()).toEqual(Object.keys(limits).sort());
    } finally {
      await sim.stop();
    }
  });

  it("answers the type's quota headroom and drops by exactly the size of a volume created with it", async () => {
    expect((await capacity({ type: typeName })).available_capacity).toBe(String(TYPE_QUOTA_GIB * GIB));
    const name = itName(SUITE, 'vol');
    const r = await call('CreateVolume', {
      name,
      capacity_range: { required_bytes: String(3 * GIB) },
      volume_capabilities: [MOUNT_RWO],
      parameters: { type: typeName },
    });
    cleanup.volume(r.volume.volume_id);
    expect((await capacity({ type: typeName })).available_capacity).toBe(String((TYPE_QUOTA_GIB - 3) * GIB));
    // Past the type's quota Cinder answers 413, which CreateVolume reports as RESOURCE_EXHAUSTED.
    const over = await call('CreateVolume', {
      name: itName(SUITE, 'over'),
      capacity_range: { required_bytes: String(8 * GIB) },
      volume_capabilities: [MOUNT_RWO],
      parameters: { type: typeName },
    }).then(
      () => 'OK',
      (e: { code: number }) => e.code,
    );
    expect(over).toBe(8); // RESOURCE_EXHAUSTED
  });

  it('reports per_volume_gigabytes as maximum_volume_size', async () => {
    const q = (await adminApi('GET', `/os-quota-sets/${project}`)).json.quota_set;
    perVolumeBefore = q.per_volume_gigabytes as number;
    expect(
      (await adminApi('PUT', `/os-quota-sets/${project}`, { quota_set: { per_volume_gigabytes: PER_VOLUME_GIB } }))
        .status,
    ).toBe(200);
    const res = await capacity({ type: typeName });
    expect(res.maximum_volume_size).toEqual({ value: String(PER_VOLUME_GIB * GIB) });
  });
});
