/**
 * The real OpenStack of /work/shared/openstack-loopback (Keystone 22, Cinder 21 fake backend, Nova 26 fake
 * driver) as a test prerequisite: detection, the generated configs and ids, clients that count their HTTP
 * attempts, a status recorder for Cinder's asynchronous transitions, and a cleanup list for afterAll.
 * Locally a missing control plane shows `it.todo`; under CI=true the suite fails instead (prereq.ts's rule).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadCloudConfigFiles } from '../../src/config/cloud-conf';
import type { CloudAuth } from '../../src/config/types';
import { createCloudClients, type CloudClients } from '../../src/openstack/clients';
import type { CinderVolume } from '../../src/openstack/cinder';
import { isNotFound } from '../../src/openstack/errors';
import type { RequestEvent } from '../../src/openstack/http';
import { IN_CI } from './prereq';

export const LOOPBACK_DIR = '/etc/openstack-loopback';
export const LOOPBACK_CLOUD_CONF = `${LOOPBACK_DIR}/cloud.conf`;
export const LOOPBACK_APPCRED_CONF = `${LOOPBACK_DIR}/cloud-appcred.conf`;
export const LOOPBACK_IDS = `${LOOPBACK_DIR}/ids.json`;
export const LOOPBACK_KEYSTONE = 'http://127.0.0.1:5000/v3';
/** Keystone must answer within this to count as running (issue #6). */
export const DETECT_TIMEOUT_MS = 2_000;
/** Every resource the suite creates is named with this prefix, so a crashed run's leftovers can be swept. */
export const RESOURCE_PREFIX = 'osl-it-';
/** The boot volume of fake-node-0: in use by the server, never touched by the suite. */
export const ROOT_VOLUME_NAME = 'fake-node-0-root';
export const FAKE_NODE_NAME = 'fake-node-0';
/** Status polling interval of the recorder, ms (the brief: every 50–100 ms). */
export const RECORD_POLL_MS = 75;

export interface LoopbackIds {
  demo_project_id: string;
  admin_project_id: string;
  demo_user_id: string;
  appcred_id: string;
  appcred_secret: string;
}

/** Why the control plane is not usable, or undefined when it is. Synchronous: describe() bodies must be. */
export function loopbackMissing(): string | undefined {
  if (!existsSync(LOOPBACK_CLOUD_CONF)) return `${LOOPBACK_CLOUD_CONF} (run sudo ../shared/openstack-loopback/up.sh)`;
  const probe = `require('http').get(${JSON.stringify(LOOPBACK_KEYSTONE)}, { timeout: ${DETECT_TIMEOUT_MS} }, (r) => process.exit(r.statusCode < 500 ? 0 : 1))
    .on('timeout', () => process.exit(2)).on('error', () => process.exit(3));`;
  const r = spawnSync(process.execPath, ['-e', probe], { timeout: DETECT_TIMEOUT_MS + 1_000, stdio: 'ignore' });
  return r.status === 0 ? undefined : `Keystone answering on ${LOOPBACK_KEYSTONE} within ${DETECT_TIMEOUT_MS} ms`;
}

/** `describe` over the real control plane; `it.todo` locally without it, a failing test under CI=true. */
export function describeOpenStack(name: string, body: () => void): void {
  const missing = loopbackMissing();
  if (missing === undefined) describe(name, body);
  else if (IN_CI) {
    describe(name, () => {
      it('has the openstack-loopback control plane', () => {
        throw new Error(`openstack-loopback missing under CI=true: ${missing}`);
      });
    });
  } else {
    describe(`${name} [openstack-loopback missing]`, () => it.todo(`needs ${missing}`));
  }
}

export function loopbackIds(): LoopbackIds {
  return JSON.parse(readFileSync(LOOPBACK_IDS, 'utf8')) as LoopbackIds;
}

/** The `[Global]` CloudAuth of a generated cloud.conf (names + tenant-id, or the application credential). */
export function loopbackAuth(file = LOOPBACK_CLOUD_CONF): CloudAuth {
  const auth = loadCloudConfigFiles([file], { requireCredentials: true }).clouds.get('');
  if (!auth) throw new Error(`${file} has no [Global] section`);
  return auth;
}

/** A project-scoped token of the generated cloud.conf's user, with its user id and the public Swift endpoint. */
export interface SwiftSession {
  token: string;
  userId: string;
  url: string;
}

/** Password auth against the loopback's Keystone, for tests that read or manage Swift and credentials directly. */
export async function swiftSession(): Promise<SwiftSession> {
  const a = loopbackAuth();
  const res = await fetch(`${a.authUrl.replace(/\/$/, '')}/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: { name: a.username, domain: { name: a.userDomainName ?? 'Default' }, password: a.password },
          },
        },
        scope: { project: { id: a.projectId } },
      },
    }),
  });
  if (!res.ok) throw new Error(`Keystone: ${res.status}`);
  const json = (await res.json()) as {
    token: {
      user: { id: string };
      catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }>;
    };
  };
  const swift = json.token.catalog
    .find((s) => s.type === 'object-store')
    ?.endpoints.find((e) => e.interface === 'public');
  if (!swift) throw new Error('no object-store endpoint in the loopback catalog');
  return { token: res.headers.get('x-subject-token')!, userId: json.token.user.id, url: swift.url };
}

/** The password of the generated cloud.conf, for tests that build their own CloudAuth. */
export function loopbackPassword(): string {
  const p = loopbackAuth().password;
  if (!p) throw new Error(`${LOOPBACK_CLOUD_CONF} has no password`);
  return p;
}

export interface CountingClients extends CloudClients {
  events: RequestEvent[];
  /** Attempts of one operation (e.g. `token.create`) since the clients were made. */
  count(operation: string): number;
}

/** Real clients for `auth` with quick retries, recording every HTTP attempt through the onRequest hook. */
export function loopbackClients(auth: CloudAuth): CountingClients {
  const events: RequestEvent[] = [];
  const c = createCloudClients(auth, {
    onRequest: (e) => events.push(e),
    http: { retry: { initialMs: 50, maxDelayMs: 500 } },
  });
  return { ...c, events, count: (op) => events.filter((e) => e.operation === op).length };
}

/** A unique resource name for this run: `osl-it-<suite>-<tag>-<random>`. */
export function itName(suite: string, tag: string): string {
  return `${RESOURCE_PREFIX}${suite}-${tag}-${randomBytes(3).toString('hex')}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the volume every RECORD_POLL_MS until `done` holds and returns every distinct status seen, in order
 * (`initial` first when given). Throws on timeout or an `error*` status, listing the sequence so far.
 */
export async function recordVolume(
  cinder: CloudClients['cinder'],
  id: string,
  done: (v: CinderVolume) => boolean,
  o: { initial?: string; timeoutMs?: number } = {},
): Promise<{ statuses: string[]; volume: CinderVolume }> {
  const statuses: string[] = o.initial ? [o.initial] : [];
  const until = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    const v = await cinder.getVolume(id);
    if (statuses[statuses.length - 1] !== v.status) statuses.push(v.status);
    if (done(v)) return { statuses, volume: v };
    if (v.status.startsWith('error')) throw new Error(`volume ${id} went to ${v.status} (${statuses.join(' -> ')})`);
    if (Date.now() > until) throw new Error(`volume ${id}: timed out (${statuses.join(' -> ')})`);
    await sleep(RECORD_POLL_MS);
  }
}

/** Polls until `get` rejects with NOT_FOUND. */
export async function waitGone(get: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await get();
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    if (Date.now() > until) throw new Error('timed out waiting for a resource to disappear');
    await sleep(RECORD_POLL_MS);
  }
}

/** The id of the ACTIVE fake-node-0 server of project demo (Nova listing; the client has no list call). */
export async function fakeNodeId(c: CloudClients): Promise<string> {
  const base = await c.keystone.endpoint(['compute']);
  const res = await fetch(`${base}/servers?name=^${FAKE_NODE_NAME}$`, {
    headers: { 'X-Auth-Token': await c.keystone.token(), Accept: 'application/json' },
  });
  const servers = ((await res.json()) as { servers: Array<{ id: string; name: string }> }).servers;
  const s = servers.find((x) => x.name === FAKE_NODE_NAME);
  if (!s) throw new Error(`no ${FAKE_NODE_NAME} server in project demo (did up.sh finish?)`);
  return s.id;
}

/**
 * Deletes what a suite made, in dependency order: detaches from every server, deletes snapshots, then
 * volumes, waiting for each to go. Only ids registered here are touched (never fake-node-0-root).
 * Errors are collected and thrown together at the end, after everything was tried.
 */
export class Cleanup {
  private readonly volumes = new Set<string>();
  private readonly snapshots = new Set<string>();

  constructor(private readonly c: CloudClients) {}

  volume(id: string): string {
    this.volumes.add(id);
    return id;
  }

  snapshot(id: string): string {
    this.snapshots.add(id);
    return id;
  }

  async run(): Promise<void> {
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        if (!isNotFound(e)) errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    const { cinder, nova } = this.c;
    for (const id of this.volumes) {
      await attempt(`detach ${id}`, async () => {
        const v = await recordVolume(
          cinder,
          id,
          (x) => !['creating', 'reserved', 'attaching', 'detaching', 'extending'].includes(x.status),
        );
        for (const a of v.volume.attachments) await nova.detachVolume(a.server_id, id).catch(() => undefined);
        if (v.volume.attachments.length > 0) await recordVolume(cinder, id, (x) => x.status === 'available');
      });
    }
    for (const id of this.snapshots) {
      await attempt(`snapshot ${id}`, async () => {
        await cinder.deleteSnapshot(id);
        await waitGone(() => cinder.getSnapshot(id));
      });
    }
    for (const id of this.volumes) {
      await attempt(`volume ${id}`, async () => {
        await cinder.deleteVolume(id);
        await waitGone(() => cinder.getVolume(id));
      });
    }
    this.volumes.clear();
    this.snapshots.clear();
    if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }

  /**
   * Registers leftovers of an earlier, crashed run of the same suite (names starting with
   * `osl-it-<suite>-`) for this run's cleanup; each suite file has its own tag, so parallel files never
   * adopt each other's volumes. Keeps a rerun within the demo project's small quota.
   */
  async adoptLeftovers(suite: string): Promise<number> {
    const { cinder } = this.c;
    const mine = (name: string | null) => name?.startsWith(`${RESOURCE_PREFIX}${suite}-`) ?? false;
    const before = this.volumes.size + this.snapshots.size;
    for (const s of (await cinder.listSnapshots()).items) if (mine(s.name)) this.snapshot(s.id);
    for (const v of (await cinder.listVolumes()).items) if (mine(v.name)) this.volume(v.id);
    return this.volumes.size + this.snapshots.size - before;
  }
}
