/** StorageClass parameters of object volumes: defaults of the contract, and each bad key named. */
import { CodedError, Status } from '../../src/errors';
import { isObjectBackend, parseObjectParameters } from '../../src/object/object-params';

function codeAndText(f: () => unknown): { code: Status; details: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof CodedError) return { code: e.code, details: e.details };
    throw e;
  }
  throw new Error('expected a CodedError');
}

describe('parseObjectParameters', () => {
  it('applies the contract defaults', () => {
    expect(parseObjectParameters({ backend: 'object' })).toEqual({
      provider: 's3',
      bucket: undefined,
      endpoint: undefined,
      region: 'us-east-1',
      pathStyle: true,
      mounter: 's3fs',
      mountOptions: undefined,
      reclaim: 'delete',
      uid: undefined,
      gid: undefined,
      umask: undefined,
    });
    expect(parseObjectParameters({ provider: 'swift' }).mounter).toBe('rclone');
  });

  it('accepts the sidecar keys', () => {
    expect(() => parseObjectParameters({ 'csi.storage.k8s.io/pv/name': 'pv-1' })).not.toThrow();
  });

  it.each([
    [{ provider: 'gcs' }, 'parameters.provider'],
    [{ bucket: 'UPPER' }, 'parameters.bucket'],
    [{ pathStyle: 'maybe' }, 'parameters.pathStyle'],
    [{ mounter: 'goofys' }, 'parameters.mounter'],
    [{ provider: 'swift', endpoint: 'http://x' }, 'parameters.endpoint'],
    [{ uid: '-1' }, 'parameters.uid'],
    [{ umask: '999' }, 'parameters.umask'],
    [{ type: 'ssd' }, 'parameters.type'],
  ])('refuses %j naming the key', (params, field) => {
    const e = codeAndText(() => parseObjectParameters(params));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.details).toContain(field);
  });
});

describe('isObjectBackend', () => {
  it.each([
    [{}, false],
    [{ backend: 'block' }, false],
    [{ backend: 'object' }, true],
  ])('%j → %s', (p, want) => {
    expect(isObjectBackend(p)).toBe(want);
  });
  it('refuses another backend naming parameters.backend', () => {
    expect(codeAndText(() => isObjectBackend({ backend: 'nfs' })).details).toContain('parameters.backend');
  });
});
