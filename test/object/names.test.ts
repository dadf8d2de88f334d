/** Bucket names and prefixes derived from PV names: valid for S3, stable, collision-free. */
import { bucketNameFor, bucketNameProblem, prefixFor } from '../../src/object/names';

describe('bucketNameFor', () => {
  it('keeps a valid Kubernetes PV name as is', () => {
    expect(bucketNameFor('pvc-0a1b2c3d-1111-2222-3333-444455556666')).toBe('pvc-0a1b2c3d-1111-2222-3333-444455556666');
  });

  it.each(['PVC_Upper', `pvc-${'a'.repeat(100)}`, 'a', '..', 'pvc.with.dots', '-x-'])(
    'makes %s valid and stable',
    (name) => {
      const b = bucketNameFor(name);
      expect(bucketNameProblem(b)).toBeUndefined();
      expect(b).not.toContain(':');
      expect(b).not.toContain('.');
      expect(bucketNameFor(name)).toBe(b);
    },
  );

  it('gives names that differ only in case or truncated tail different buckets', () => {
    expect(bucketNameFor('PVC-a')).not.toBe(bucketNameFor('pvc-A'));
    expect(bucketNameFor(`pvc-${'a'.repeat(80)}1`)).not.toBe(bucketNameFor(`pvc-${'a'.repeat(80)}2`));
  });
});

describe('bucketNameProblem', () => {
  it.each(['ab', 'Bad_Bucket', 'x'.repeat(64), '-start', 'end-', '192.168.1.1', 'a..b', 'has:colon'])(
    'refuses %s',
    (n) => {
      expect(bucketNameProblem(n)).toBeDefined();
    },
  );
  it.each(['abc', 'my.bucket', 'shared-1'])('accepts %s', (n) => expect(bucketNameProblem(n)).toBeUndefined());
});

describe('prefixFor', () => {
  it('is the PV name and one slash', () => expect(prefixFor('pvc-1')).toBe('pvc-1/'));
});
