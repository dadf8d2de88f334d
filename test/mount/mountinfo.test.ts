import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  findMountByTarget,
  isMountPoint,
  mountsAt,
  parseMountInfo,
  parseMountInfoLine,
  readMountInfo,
  splitDevT,
  unescapeMountField,
} from '../../src/mount/mountinfo';

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', name), 'utf8');

describe('mountinfo parser', () => {
  const mounts = parseMountInfo(fixture('mountinfo-node.txt'));

  it('parses every well-formed line and drops garbage and blank lines', () => {
    expect(mounts).toHaveLength(12);
    expect(mounts.map((m) => m.mountId)).not.toContain(NaN);
  });

  it('reads ids, device numbers, root, mount point, options, type, source and super options', () => {
    const m = mounts.find((x) => x.mountId === 310)!;
    expect(m).toMatchObject({
      parentId: 27,
      major: 253,
      minor: 16,
      root: '/',
      mountPoint: '/var/lib/kubelet/plugins/kubernetes.io/csi/cinder.csi.openstack.org/3f1c/globalmount',
      mountOptions: ['rw', 'relatime'],
      fsType: 'ext4',
      source: '/dev/vdb',
      superOptions: ['rw'],
    });
  });

  it('decodes octal escapes for space, tab and backslash in the mount point', () => {
    const m = mounts.find((x) => x.mountId === 340)!;
    expect(m.mountPoint).toBe('/mnt/with space\ttab\\back');
    expect(unescapeMountField('a\\012b')).toBe('a\nb');
  });

  it('reads propagation from the optional fields up to the separator', () => {
    expect(mounts.find((x) => x.mountId === 310)!.propagation).toEqual({ shared: 180, unbindable: false });
    expect(mounts.find((x) => x.mountId === 340)!.propagation).toEqual({
      master: 5,
      propagateFrom: 2,
      unbindable: false,
    });
    expect(mounts.find((x) => x.mountId === 360)!.propagation.unbindable).toBe(true);
    expect(mounts.find((x) => x.mountId === 360)!.fsType).toBe('fuse.s3fs');
  });

  it('handles zero, one and two optional fields (proc(5) examples)', () => {
    const m = parseMountInfo(fixture('mountinfo-optional-fields.txt'));
    expect(m.map((x) => x.optionalFields)).toEqual([['master:1'], ['shared:4', 'master:1'], []]);
    expect(m.map((x) => x.fsType)).toEqual(['ext3', 'ext3', 'ext3']);
    expect(m[0].root).toBe('/mnt1');
  });

  it('keeps the root of a raw block bind so the device node can be identified', () => {
    const m = mounts.find((x) => x.mountId === 330)!;
    expect(m.root).toBe('/vdc');
    expect(m.fsType).toBe('devtmpfs');
  });

  it('returns stacked mounts at one path bottom first', () => {
    expect(mountsAt(mounts, '/mnt/stacked').map((m) => m.source)).toEqual(['tmpfs', 'second']);
  });

  it('returns undefined for a line without the separator', () => {
    expect(parseMountInfoLine('36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw')).toBeUndefined();
  });

  it('splits a Linux dev_t into major and minor, including large minors', () => {
    expect(splitDevT(0x0710)).toEqual({ major: 7, minor: 16 });
    // major 259 (blkext), minor 300: minor high bits live above bit 20.
    const rdev = (300 & 0xff) | ((259 & 0xfff) << 8) | ((300 & ~0xff) << 12);
    expect(splitDevT(rdev)).toEqual({ major: 259, minor: 300 });
  });
});

describe('mountinfo lookups', () => {
  let dir: string;
  let path: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mountinfo-'));
    path = join(dir, 'mountinfo');
    writeFileSync(path, fixture('mountinfo-node.txt'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the topmost mount at a target', async () => {
    expect((await findMountByTarget('/mnt/stacked', path))?.source).toBe('second');
  });

  it('resolves a relative or dotted path before comparing', async () => {
    expect(await isMountPoint('/mnt/../mnt/stacked/', path)).toBe(true);
    expect(await isMountPoint('/mnt/elsewhere', path)).toBe(false);
  });

  it('reads the live table of this process, which always has a root mount', async () => {
    const live = await readMountInfo();
    expect(live.some((m) => m.mountPoint === '/')).toBe(true);
  });
});
