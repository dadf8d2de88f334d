/**
 * An object volume on OpenStack Swift through rclone, against the running openstack-loopback (Keystone +
 * Swift on 127.0.0.1): node-stage secrets with cloud.conf key names, a container made here, a file written
 * through the mount read back with the Swift API. Gated on the loopback (fails under CI=true without it).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeIf } from '../helpers/prereq';
import { describeOpenStack, itName, loopbackAuth, swiftSession } from '../helpers/openstack-loopback';
import { waitUntil } from '../helpers/fuse-procs';
import { objCap, startFuseWorld, type FuseWorld } from '../helpers/fuse-world';

describeOpenStack('object volume on Swift (rclone)', () => {
  describeIf('through the FUSE supervisor', { root: true, fuse: true, commands: ['rclone', 'fusermount'] }, () => {
    let w: FuseWorld;
    let s: { token: string; url: string };
    const container = itName('fuse', 'swift');
    beforeAll(async () => {
      w = await startFuseWorld([]);
      s = await swiftSession();
      await fetch(`${s.url}/${container}`, { method: 'PUT', headers: { 'X-Auth-Token': s.token } });
    }, 60_000);
    afterAll(async () => {
      await w?.close();
      if (s) {
        await fetch(`${s.url}/${container}/hello.txt`, {
          method: 'DELETE',
          headers: { 'X-Auth-Token': s.token },
        }).catch(() => undefined);
        await fetch(`${s.url}/${container}`, { method: 'DELETE', headers: { 'X-Auth-Token': s.token } }).catch(
          () => undefined,
        );
      }
    }, 60_000);

    it('stages with Keystone secrets, writes through the mount and the object lands in the container', async () => {
      const a = loopbackAuth();
      const volume_id = `obj1:swift:${container}:`;
      const staging = w.path('plugins/swift/globalmount');
      const secrets: Record<string, string> = {
        'auth-url': a.authUrl,
        region: a.region ?? 'RegionOne',
        username: a.username!,
        password: a.password!,
        'user-domain-name': a.userDomainName ?? 'Default',
        'project-name': a.projectName!,
        'project-domain-name': a.projectDomainName ?? 'Default',
      };
      const volume_context = {
        backend: 'object',
        provider: 'swift',
        bucket: container,
        prefix: '',
        mounter: 'rclone',
        mountOptions: 'vfs-write-back=0s',
      };
      await w.call('NodeStageVolume', {
        volume_id,
        staging_target_path: staging,
        volume_capability: objCap(),
        volume_context,
        secrets,
      });
      try {
        await writeFile(join(staging, 'hello.txt'), 'hello swift');
        expect(await readFile(join(staging, 'hello.txt'), 'utf8')).toBe('hello swift');
        const got = await waitUntil(
          'object in Swift',
          async () => {
            const r = await fetch(`${s.url}/${container}/hello.txt`, { headers: { 'X-Auth-Token': s.token } });
            return r.ok ? r.text() : undefined;
          },
          15_000,
        );
        expect(got).toBe('hello swift');
      } finally {
        await w.call('NodeUnstageVolume', { volume_id, staging_target_path: staging });
      }
    });
  });
});
