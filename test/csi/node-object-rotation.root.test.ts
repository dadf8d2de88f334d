/**
 * Key rotation on a staged object volume, against the real Keystone and Swift of openstack-loopback: the
 * volume is staged with key A, a pod writes continuously, kubelet republishes (a new pod, or a pod sync with the CSIDriver's requiresRepublish)
 * with node-publish secrets holding key B, the supervisor replaces the daemon, key A is deleted in Keystone
 * (real revocation), and the pod's writes go on. s3fs through Swift's S3 API with EC2 credentials, rclone
 * through the native API with application credentials. The pod may see at most one failed, retried write.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import {
  describeOpenStack,
  itName,
  loopbackAuth,
  swiftSession,
  type SwiftSession,
} from '../helpers/openstack-loopback';
import { waitUntil } from '../helpers/fuse-procs';
import { objCap, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';

/** The loopback's S3 API (Swift s3api), path-style, region us-east-1 (its README). */
const S3_ENDPOINT = 'http://127.0.0.1:8080';
/** How long a pod waits before retrying a failed write, as a client with backoff does. */
const POD_RETRY_MS = 1_000;

/** A key pair that can be revoked: an EC2 credential (S3) or an application credential (Swift). */
interface Key {
  secrets: Record<string, string>;
  revoke(): Promise<void>;
  /** Whether Keystone still knows it. */
  exists(): Promise<boolean>;
}

async function api(s: SwiftSession, method: string, path: string, body?: object): Promise<Response> {
  const a = loopbackAuth();
  return fetch(`${a.authUrl.replace(/\/$/, '')}${path}`, {
    method,
    headers: { 'X-Auth-Token': s.token, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
}

async function newEc2Key(s: SwiftSession): Promise<Key> {
  const a = loopbackAuth();
  const res = await api(s, 'POST', `/users/${s.userId}/credentials/OS-EC2`, { tenant_id: a.projectId });
  if (res.status !== 201) throw new Error(`EC2 credential: ${res.status}`);
  const { credential } = (await res.json()) as { credential: { access: string; secret: string } };
  const path = `/users/${s.userId}/credentials/OS-EC2/${credential.access}`;
  return {
    secrets: { accessKeyID: credential.access, secretAccessKey: credential.secret },
    revoke: async () => void (await api(s, 'DELETE', path)),
    exists: async () => (await api(s, 'GET', path)).ok,
  };
}

async function newAppCred(s: SwiftSession, name: string): Promise<Key> {
  const a = loopbackAuth();
  const res = await api(s, 'POST', `/users/${s.userId}/application_credentials`, { application_credential: { name } });
  if (res.status !== 201) throw new Error(`application credential: ${res.status}`);
  const { application_credential: c } = (await res.json()) as {
    application_credential: { id: string; secret: string };
  };
  const path = `/users/${s.userId}/application_credentials/${c.id}`;
  return {
    secrets: {
      'auth-url': a.authUrl,
      region: a.region ?? 'RegionOne',
      'application-credential-id': c.id,
      'application-credential-secret': c.secret,
    },
    revoke: async () => void (await api(s, 'DELETE', path)),
    exists: async () => (await api(s, 'GET', path)).ok,
  };
}

describeOpenStack('object volume key rotation (openstack-loopback Keystone + Swift)', () => {
  describeIf(
    'through the FUSE supervisor',
    { root: true, fuse: true, commands: ['s3fs', 'rclone', 'fusermount'] },
    () => {
      let w: FuseWorld;
      let s: SwiftSession;
      const made: { containers: string[]; keys: Key[] } = { containers: [], keys: [] };
      beforeAll(async () => {
        w = await startFuseWorld([]);
        s = await swiftSession();
      }, 60_000);
      afterAll(async () => {
        await w?.close();
        for (const k of made.keys) await k.revoke().catch(() => undefined);
        for (const c of made.containers) {
          const list = await fetch(`${s.url}/${c}`, { headers: { 'X-Auth-Token': s.token } }).then((r) =>
            r.ok ? r.text() : '',
          );
          for (const o of list.split('\n').filter(Boolean))
            await fetch(`${s.url}/${c}/${o}`, { method: 'DELETE', headers: { 'X-Auth-Token': s.token } });
          await fetch(`${s.url}/${c}`, { method: 'DELETE', headers: { 'X-Auth-Token': s.token } });
        }
      }, 60_000);

      it.each(['s3fs', 'rclone'] as const)(
        '%s: new keys in the node-publish secret replace the daemon; the old key is revoked; writes go on',
        async (mounter) => {
          const container = itName('rot', mounter);
          await fetch(`${s.url}/${container}`, { method: 'PUT', headers: { 'X-Auth-Token': s.token } });
          made.containers.push(container);
          const newKey = () => (mounter === 's3fs' ? newEc2Key(s) : newAppCred(s, itName('rot', 'key')));
          const keyA = await newKey();
          made.keys.push(keyA);
          const keyB = await newKey();
          made.keys.push(keyB);

          const provider = mounter === 's3fs' ? 's3' : 'swift';
          const volume_id = `obj1:${provider}:${container}:`;
          const staging = w.path(`plugins/rot-${mounter}/globalmount`);
          const pod = w.path(`pods/rot-${mounter}/volumes/v/mount`);
          const volume_context = {
            backend: 'object',
            provider,
            bucket: container,
            prefix: '',
            mounter,
            ...(mounter === 's3fs'
              ? { endpoint: S3_ENDPOINT, region: 'us-east-1' }
              : { mountOptions: 'vfs-write-back=0s' }),
          };
          const base = { volume_id, staging_target_path: staging, volume_capability: objCap(), volume_context };
          await w.call('NodeStageVolume', { ...base, secrets: keyA.secrets });
          await w.call('NodePublishVolume', { ...base, target_path: pod, readonly: false });
          const [before] = (await w.supervisor.client.list()).filter((m) => m.target === staging);

          // The pod: one small file after another, a failed write retried once after a pause.
          let stop = false;
          const failures: string[] = [];
          const written: string[] = [];
          const writer = (async () => {
            for (let i = 0; !stop; i++) {
              const name = `w-${i}.txt`;
              for (let attempt = 0; ; attempt++) {
                try {
                  await writeFile(join(pod, name), `${mounter} ${i}`);
                  written.push(name);
                  break;
                } catch (e) {
                  failures.push(`${name}: ${(e as Error).message}`);
                  if (attempt >= 3) throw e;
                  await new Promise((r) => setTimeout(r, POD_RETRY_MS));
                }
              }
              await new Promise((r) => setTimeout(r, 50));
            }
          })();
          await waitUntil('the pod writing', () => (written.length >= 5 ? true : undefined));

          // kubelet's periodic republish, with the rotated node-publish secret.
          const t0 = Date.now();
          await w.call('NodePublishVolume', { ...base, target_path: pod, readonly: false, secrets: keyB.secrets });
          const rotateMs = Date.now() - t0;
          const [after] = (await w.supervisor.client.list()).filter((m) => m.target === staging);
          expect(after).toMatchObject({ state: 'alive', restarts: before.restarts + 1 });
          expect(after.pid).not.toBe(before.pid);
          expect(await readFile(w.supervisorLog, 'utf8')).toContain('credentials changed; replacing the FUSE daemon');
          // The new daemon's 0600 credential file carries key B only (compared here, never printed).
          const creds = await readFile(
            join(w.stateDir, 'credentials', createHash('sha256').update(staging).digest('hex').slice(0, 24)),
            'utf8',
          );
          const idOf = (k: Key) => k.secrets.accessKeyID ?? k.secrets['application-credential-id'];
          expect([creds.includes(idOf(keyB)), creds.includes(idOf(keyA))]).toEqual([true, false]);

          // The same secret again changes nothing.
          await w.call('NodePublishVolume', { ...base, target_path: pod, readonly: false, secrets: keyB.secrets });
          expect((await w.supervisor.client.list()).find((m) => m.target === staging)?.pid).toBe(after.pid);

          await keyA.revoke();
          expect(await keyA.exists()).toBe(false);
          const n = written.length;
          await waitUntil('writes after the revocation', () => (written.length >= n + 10 ? true : undefined), 20_000);
          stop = true;
          await writer;

          // Every file the pod wrote is in Swift, read back through the native API.
          for (const name of [written[0], written[n - 1], written[written.length - 1]]) {
            const got = await waitUntil(
              `${name} in Swift`,
              async () => {
                const r = await fetch(`${s.url}/${container}/${name}`, { headers: { 'X-Auth-Token': s.token } });
                return r.ok ? r.text() : undefined;
              },
              20_000,
            );
            expect(got).toBe(`${mounter} ${name.replace(/^w-|\.txt$/g, '')}`);
          }
          const listed = await waitUntil(
            'all objects listed',
            async () => {
              const names = (
                await fetch(`${s.url}/${container}`, { headers: { 'X-Auth-Token': s.token } }).then((r) => r.text())
              )
                .split('\n')
                .filter(Boolean);
              return written.every((x) => names.includes(x)) ? names : undefined;
            },
            20_000,
          );
          expect(listed.length).toBeGreaterThanOrEqual(written.length);

          console.log(
            `${mounter} key rotation: republish with new keys took ${rotateMs} ms; pod wrote ${written.length} files, ` +
              `${failures.length} failed write(s) retried: ${JSON.stringify(failures)}`,
          );
          expect(failures.length).toBeLessThanOrEqual(1);

          await w.call('NodeUnpublishVolume', { volume_id, target_path: pod });
          await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
        },
        120_000,
      );
    },
  );
});
