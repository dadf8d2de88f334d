/**
 * Cinder's generic group API, step by step with its refusals, as one scenario run against the simulator
 * (test/simulator/cinder-groups.test.ts) and against the real Cinder 21 of openstack-loopback
 * (test/integration/group-snapshots.openstack.test.ts): every status code and message asserted here was
 * observed on openstack-loopback, so the two runs pin the simulator to the real service.
 */
import type { CloudClients } from '../../src/openstack/clients';

export interface Raw {
  status: number;

  json: any;
}

/** Raw Cinder calls with a microversion, through the real Keystone client's token and catalog. */
export function rawCinder(c: Pick<CloudClients, 'keystone'>) {
  return async (method: string, path: string, body?: unknown, microversion = '3.25'): Promise<Raw> => {
    const base = await c.keystone.endpoint(['volumev3']);
    const res = await fetch(base + path, {
      method,
      headers: {
        'X-Auth-Token': await c.keystone.token(),
        Accept: 'application/json',
        'OpenStack-API-Version': `volume ${microversion}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
}

export type RawCinder = ReturnType<typeof rawCinder>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `path` until its `key` resource has status `want` (or is gone, for want 'gone'); returns the statuses seen. */
export async function waitRaw(
  cinder: RawCinder,
  path: string,
  key: string,
  want: string,
  timeoutMs = 30_000,
): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await cinder('GET', path);
    const status = r.status === 404 ? 'gone' : (r.json?.[key]?.status as string);
    if (seen[seen.length - 1] !== status) seen.push(status);
    if (status === want) return seen;
    if (Date.now() > until) throw new Error(`${path}: timed out waiting for ${want} (${seen.join(' -> ')})`);
    await sleep(50);
  }
}

export interface ScenarioTarget {
  cinder: RawCinder;
  /** An existing group type usable by the project (made by the admin / Simulator.addGroupType). */
  groupType: string;
  /** Two new available volumes of type __DEFAULT__, and a prefix for names. */
  volumes: [string, string];
  prefix: string;
  /** Registers what the scenario makes, so a failed run still cleans up. */
  track(kind: 'group' | 'group_snapshot', id: string): void;
}

/**
 * The scenario: jest expectations on every answer. Leaves nothing behind when it passes (the volumes are
 * the caller's).
 */
export async function groupApiScenario(t: ScenarioTarget): Promise<void> {
  const { cinder } = t;
  const [va, vb] = t.volumes;
  // Group types are the admin's; the default group type is not configured.
  expect((await cinder('POST', '/group_types', { group_type: { name: `${t.prefix}-x` } })).status).toBe(403);
  expect(await cinder('GET', '/group_types/default')).toEqual({
    status: 404,
    json: { itemNotFound: { code: 404, message: 'Default group type can not be found.' } },
  });
  expect(
    (
      await cinder('POST', '/groups', {
        group: { name: `${t.prefix}-g`, group_type: 'nope', volume_types: ['__DEFAULT__'] },
      })
    ).json,
  ).toEqual({ itemNotFound: { code: 404, message: 'Group type with name nope could not be found.' } });
  expect(
    (
      await cinder('POST', '/groups', {
        group: { name: `${t.prefix}-g`, group_type: t.groupType, volume_types: ['nope'] },
      })
    ).json,
  ).toEqual({ itemNotFound: { code: 404, message: 'Volume type with name nope could not be found.' } });
  const reserved = await cinder('POST', '/groups', {
    group: { name: `${t.prefix}-g`, group_type: 'default_cgsnapshot_type', volume_types: ['__DEFAULT__'] },
  });
  expect(reserved.status).toBe(400);
  expect(reserved.json.badRequest.message).toMatch(
    /^Group_type \S+ is reserved for migrating CGs to groups\. Migrated group can only be operated by CG APIs\.$/,
  );

  // A group: creating → available; the create answer is only the id and name.
  const created = await cinder(
    'POST',
    '/groups',
    { group: { name: `${t.prefix}-g`, description: 'd', group_type: t.groupType, volume_types: ['__DEFAULT__'] } },
    '3.13',
  );
  expect(created.status).toBe(202);
  expect(Object.keys(created.json.group).sort()).toEqual(['id', 'name']);
  const g = created.json.group.id as string;
  t.track('group', g);
  await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
  const shown = (await cinder('GET', `/groups/${g}?list_volume=True`)).json.group;
  expect(Object.keys(shown).sort()).toEqual([
    'availability_zone',
    'created_at',
    'description',
    'group_snapshot_id',
    'group_type',
    'id',
    'name',
    'source_group_id',
    'status',
    'volume_types',
    'volumes',
  ]);
  expect(shown.volumes).toEqual([]);
  expect(shown.volume_types).toHaveLength(1);
  const named = (await cinder('GET', `/groups/detail?name=${t.prefix}-g`, undefined, '3.13')).json.groups;
  expect(named.map((x: { id: string }) => x.id)).toEqual([g]);

  // Refusals of an empty group and of bad updates.
  expect(
    (await cinder('POST', '/group_snapshots', { group_snapshot: { group_id: g, name: `${t.prefix}-gs` } }, '3.14'))
      .json,
  ).toEqual({
    badRequest: {
      code: 400,
      message:
        "Invalid Group: Source group cannot be empty or in 'creating' or 'updating' state. No group snapshot will be created.",
    },
  });
  expect((await cinder('PUT', `/groups/${g}`, { group: {} })).json).toEqual({
    badRequest: {
      code: 400,
      message: 'Invalid input for field/attribute group. Value: {}. {} is not valid under any of the given schemas',
    },
  });
  const zero = '00000000-0000-0000-0000-000000000000';
  expect((await cinder('PUT', `/groups/${g}`, { group: { add_volumes: zero } })).json).toEqual({
    badRequest: {
      code: 400,
      message: `Invalid volume: Cannot add volume ${zero} to group ${g} because volume cannot be found.`,
    },
  });
  expect((await cinder('PUT', `/groups/${g}`, { group: { remove_volumes: va } })).json).toEqual({
    badRequest: {
      code: 400,
      message: `Invalid volume: Cannot remove volume ${va} from group ${g} because it is not in the group.`,
    },
  });

  // add_volumes: updating → available, then the volumes name their group (3.13) and cannot be deleted.
  expect((await cinder('PUT', `/groups/${g}`, { group: { add_volumes: `${va},${vb}` } })).status).toBe(202);
  await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
  expect((await cinder('GET', `/groups/${g}?list_volume=True`)).json.group.volumes.sort()).toEqual([va, vb].sort());
  expect((await cinder('GET', `/volumes/${va}`, undefined, '3.13')).json.volume.group_id).toBe(g);
  expect((await cinder('GET', `/volumes/${va}`, undefined, '3.12')).json.volume).not.toHaveProperty('group_id');
  const delVolume = await cinder('DELETE', `/volumes/${va}`, undefined, '3.0');
  expect(delVolume.status).toBe(400);
  expect(delVolume.json.badRequest.message).toContain('belong to a group');
  expect((await cinder('POST', `/groups/${g}/action`, { delete: { 'delete-volumes': false } })).json).toEqual({
    badRequest: {
      code: 400,
      message: `Invalid Group: Group ${g} still contains volumes. The delete-volumes flag is required to delete it.`,
    },
  });

  // A volume is in one group at a time.
  const other = await cinder('POST', '/groups', {
    group: { name: `${t.prefix}-g2`, group_type: t.groupType, volume_types: ['__DEFAULT__'] },
  });
  const g2 = other.json.group.id as string;
  t.track('group', g2);
  await waitRaw(cinder, `/groups/${g2}`, 'group', 'available');
  expect((await cinder('PUT', `/groups/${g2}`, { group: { add_volumes: va } })).json).toEqual({
    badRequest: {
      code: 400,
      message: `Invalid volume: Cannot add volume ${va} to group ${g2} because it is already in group ${g}.`,
    },
  });

  // The group snapshot: creating → available; one member snapshot per volume, named after it.
  const gsCreated = await cinder(
    'POST',
    '/group_snapshots',
    { group_snapshot: { group_id: g, name: `${t.prefix}-gs`, description: 'gd' } },
    '3.14',
  );
  expect(gsCreated.status).toBe(202);
  expect(Object.keys(gsCreated.json.group_snapshot).sort()).toEqual(['group_type_id', 'id', 'name']);
  const gs = gsCreated.json.group_snapshot.id as string;
  t.track('group_snapshot', gs);
  await waitRaw(cinder, `/group_snapshots/${gs}`, 'group_snapshot', 'available');
  const gsShown = (await cinder('GET', `/group_snapshots/${gs}`, undefined, '3.14')).json.group_snapshot;
  expect(Object.keys(gsShown).sort()).toEqual([
    'created_at',
    'description',
    'group_id',
    'group_type_id',
    'id',
    'name',
    'status',
  ]);
  expect(gsShown.group_id).toBe(g);
  const byName = (await cinder('GET', `/group_snapshots/detail?name=${t.prefix}-gs`, undefined, '3.29')).json
    .group_snapshots;
  expect(byName.map((x: { id: string }) => x.id)).toEqual([gs]);
  const members = (await cinder('GET', `/snapshots/detail?name=${t.prefix}-gs`, undefined, '3.14')).json
    .snapshots as Array<Record<string, string>>;
  expect(members.map((s) => s.volume_id).sort()).toEqual([va, vb].sort());
  for (const s of members) {
    expect(s).toMatchObject({ group_snapshot_id: gs, status: 'available', description: 'gd' });
  }
  expect((await cinder('GET', `/snapshots/${members[0].id}`, undefined, '3.0')).json.snapshot).not.toHaveProperty(
    'group_snapshot_id',
  );
  expect((await cinder('DELETE', `/snapshots/${members[0].id}`, undefined, '3.0')).json).toEqual({
    badRequest: {
      code: 400,
      message: 'Invalid snapshot: Snapshot status must be available or error and must not be part of a group.',
    },
  });

  // The volumes may leave the group while its snapshot lives; the group itself may not go.
  expect((await cinder('POST', `/groups/${g}/action`, { delete: { 'delete-volumes': false } })).json).toEqual({
    badRequest: { code: 400, message: 'Invalid Group: Group has existing snapshots.' },
  });
  expect((await cinder('PUT', `/groups/${g}`, { group: { remove_volumes: `${va},${vb}` } })).status).toBe(202);
  await waitRaw(cinder, `/groups/${g}`, 'group', 'available');
  expect((await cinder('GET', `/groups/${g}?list_volume=True`)).json.group.volumes).toEqual([]);
  expect((await cinder('GET', `/volumes/${va}`, undefined, '3.13')).json.volume.group_id).toBeNull();

  // Deleting the group snapshot takes its members; then the empty groups go.
  expect((await cinder('DELETE', `/group_snapshots/${gs}`, undefined, '3.14')).status).toBe(202);
  const gsGone = await waitRaw(cinder, `/group_snapshots/${gs}`, 'group_snapshot', 'gone');
  expect(gsGone[gsGone.length - 1]).toBe('gone');
  expect((await cinder('GET', `/group_snapshots/${gs}`, undefined, '3.14')).json).toEqual({
    itemNotFound: { code: 404, message: `GroupSnapshot ${gs} could not be found.` },
  });
  for (const s of members) expect((await cinder('GET', `/snapshots/${s.id}`, undefined, '3.0')).status).toBe(404);
  for (const id of [g, g2]) {
    expect((await cinder('POST', `/groups/${id}/action`, { delete: { 'delete-volumes': false } })).status).toBe(202);
    await waitRaw(cinder, `/groups/${id}`, 'group', 'gone');
    expect((await cinder('GET', `/groups/${id}`)).json).toEqual({
      itemNotFound: { code: 404, message: `Group ${id} could not be found.` },
    });
  }
}
