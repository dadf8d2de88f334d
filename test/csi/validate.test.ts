import { status } from '@grpc/grpc-js';
import { requirePathUnder, sizeGiBFor, validateCapabilities, isMultiNode, GIB } from '../../src/csi/validate';
import type { VolumeCapability } from '../../src/csi/types';

const mount = (mode: string, fs_type = 'ext4') =>
  ({
    access_type: 'mount',
    mount: { fs_type, mount_flags: [], volume_mount_group: '' },
    access_mode: { mode },
  }) as VolumeCapability;
const block = (mode: string) => ({ access_type: 'block', block: {}, access_mode: { mode } }) as VolumeCapability;

describe('validate', () => {
  it.each([
    [undefined, 1],
    [{ required_bytes: '1', limit_bytes: '' }, 1],
    [{ required_bytes: String(GIB), limit_bytes: '0' }, 1],
    [{ required_bytes: String(GIB + 1), limit_bytes: '0' }, 2],
    [{ required_bytes: '0', limit_bytes: String(5 * GIB) }, 1],
    [{ required_bytes: '10995116277760', limit_bytes: '0' }, 10240],
  ])('sizes %j as %i GiB', (range, gib) => {
    expect(sizeGiBFor(range as never)).toBe(gib);
  });

  it.each([
    [{ required_bytes: '0', limit_bytes: '1000' }, status.OUT_OF_RANGE],
    [{ required_bytes: '1', limit_bytes: String(GIB - 1) }, status.OUT_OF_RANGE],
    [{ required_bytes: String(3 * GIB), limit_bytes: String(2 * GIB) }, status.INVALID_ARGUMENT],
    [{ required_bytes: '-5', limit_bytes: '0' }, status.INVALID_ARGUMENT],
    [{ required_bytes: 'lots', limit_bytes: '0' }, status.INVALID_ARGUMENT],
  ])('refuses %j', (range, code) => {
    expect(() => sizeGiBFor(range as never)).toThrow(expect.objectContaining({ code }));
  });

  it('accepts single-node modes for filesystems and multi-node modes for raw block when allowed', () => {
    expect(() =>
      validateCapabilities(
        [mount('SINGLE_NODE_WRITER'), mount('SINGLE_NODE_MULTI_WRITER', 'xfs')],
        'volume_capabilities',
      ),
    ).not.toThrow();
    expect(() =>
      validateCapabilities([block('MULTI_NODE_MULTI_WRITER')], 'volume_capabilities', { allowMultiNode: () => true }),
    ).not.toThrow();
    expect(isMultiNode([block('MULTI_NODE_READER_ONLY')])).toBe(true);
    expect(isMultiNode([mount('SINGLE_NODE_WRITER')])).toBe(false);
  });

  it.each([
    [[], 'volume_capabilities is required'],
    [[{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }], 'volume_capabilities[0].access_type is required'],
    [[mount('UNKNOWN')], 'volume_capabilities[0].access_mode is required'],
    [[mount('SINGLE_NODE_WRITER', 'ntfs')], 'volume_capabilities[0].mount.fs_type "ntfs" is not supported'],
    [
      [mount('MULTI_NODE_MULTI_WRITER')],
      'volume_capabilities[0].access_mode MULTI_NODE_MULTI_WRITER needs a raw block volume',
    ],
    [
      [mount('SINGLE_NODE_WRITER'), block('MULTI_NODE_SINGLE_WRITER')],
      'volume_capabilities[1].access_mode MULTI_NODE_SINGLE_WRITER needs a volume type with multiattach',
    ],
  ])('refuses capabilities %j naming the field', (caps, message) => {
    expect(() =>
      validateCapabilities(caps as VolumeCapability[], 'volume_capabilities', { allowMultiNode: () => false }),
    ).toThrow(expect.objectContaining({ code: status.INVALID_ARGUMENT, details: expect.stringContaining(message) }));
  });

  it('keeps node paths inside the kubelet directory', () => {
    const root = '/var/lib/kubelet';
    expect(requirePathUnder('/var/lib/kubelet/pods/x/volumes/mount/', root, 'target_path')).toBe(
      '/var/lib/kubelet/pods/x/volumes/mount',
    );
    for (const bad of [
      '/etc/passwd',
      '/var/lib/kubelet',
      '/var/lib/kubelet/../../etc',
      'relative/path',
      '/var/lib/kubeletx/a',
      '',
    ]) {
      expect(() => requirePathUnder(bad, root, 'target_path')).toThrow(
        expect.objectContaining({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/^target_path /) }),
      );
    }
  });
});
