/** The object volume id contract shared with the node side: `obj1:<provider>:<bucket>:<prefix>`. */
import { encodeObjectVolumeId, isObjectVolumeId, parseObjectVolumeId } from '../../src/object/volume-id';

describe('object volume ids', () => {
  it.each([
    [{ provider: 's3' as const, bucket: 'pvc-1234', prefix: '' }, 'obj1:s3:pvc-1234:'],
    [{ provider: 's3' as const, bucket: 'shared', prefix: 'pvc-1234/' }, 'obj1:s3:shared:pvc-1234/'],
    [{ provider: 'swift' as const, bucket: 'c1', prefix: 'a:b/' }, 'obj1:swift:c1:a:b/'],
  ])('round-trips %j as %s', (ref, id) => {
    expect(encodeObjectVolumeId(ref)).toBe(id);
    expect(parseObjectVolumeId(id)).toEqual(ref);
    expect(isObjectVolumeId(id)).toBe(true);
  });

  it.each([
    ['a Cinder UUID', '6f1c9e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b'],
    ['an unknown provider', 'obj1:gcs:b:'],
    ['an empty bucket', 'obj1:s3::'],
    ['a missing prefix separator', 'obj1:s3:bucket'],
    ['a prefix without a trailing slash', 'obj1:s3:bucket:pvc'],
    ['another version', 'obj2:s3:bucket:'],
  ])('parses %s as not an object volume', (_what, id) => {
    expect(parseObjectVolumeId(id)).toBeUndefined();
    expect(isObjectVolumeId(id)).toBe(false);
  });

  it('refuses to encode a bucket holding ":"', () => {
    expect(() => encodeObjectVolumeId({ provider: 's3', bucket: 'a:b', prefix: '' })).toThrow(/bucket/);
  });
});
