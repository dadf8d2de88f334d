import { Status } from '../../src/errors';
import { errorFromResponse, isNotFound, parseServiceFault } from '../../src/openstack/errors';

const ctx = { service: 'cinder', operation: 'volume.create', method: 'POST', path: '/volume/v3/p/volumes' };

describe('OpenStack error classification', () => {
  it.each([
    [404, { itemNotFound: { message: 'Volume abc could not be found.', code: 404 } }, Status.NOT_FOUND, 'not-found'],
    [
      413,
      {
        overLimit: {
          message: 'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota.',
          code: 413,
        },
      },
      Status.RESOURCE_EXHAUSTED,
      'over-limit',
    ],
    [
      400,
      { badRequest: { message: 'Invalid input for field/attribute size.', code: 400 } },
      Status.INVALID_ARGUMENT,
      'bad-request',
    ],
    [
      400,
      { badRequest: { message: 'Invalid volume: Volume status must be available or error.', code: 400 } },
      Status.FAILED_PRECONDITION,
      'invalid-state',
    ],
    [
      403,
      { forbidden: { message: "Policy doesn't allow volume:create to be performed.", code: 403 } },
      Status.PERMISSION_DENIED,
      'forbidden',
    ],
    [
      403,
      {
        forbidden: {
          message: 'The maximum allowed number of disk devices (26) to attach to a single instance has been exceeded.',
          code: 403,
        },
      },
      Status.RESOURCE_EXHAUSTED,
      'over-limit',
    ],
    [
      409,
      {
        conflictingRequest: {
          message: "Cannot 'attach_volume' instance while it is in task_state deleting",
          code: 409,
        },
      },
      Status.FAILED_PRECONDITION,
      'conflict',
    ],
    [
      401,
      { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } },
      Status.UNAUTHENTICATED,
      'unauthorized',
    ],
    [429, { overLimit: { message: 'Rate limited' } }, Status.UNAVAILABLE, 'rate-limited'],
    [429, {}, Status.UNAVAILABLE, 'rate-limited'],
    [503, '<html><body><h1>503 Service Unavailable</h1></body></html>', Status.UNAVAILABLE, 'unavailable'],
    [406, { computeFault: { message: 'Version 3.99 is not supported by the API.' } }, Status.INTERNAL, 'unexpected'],
  ])('maps HTTP %i %j to gRPC code %i', (status, body, code, kind) => {
    const e = errorFromResponse(ctx, status, body, 'req-1');
    expect(e.code).toBe(code);
    expect(e.kind).toBe(kind);
    expect(e.status).toBe(status);
    expect(e.message).toContain('cinder volume.create (POST /volume/v3/p/volumes)');
    expect(e.message).toContain('req-1');
  });

  it('keeps the service message of Cinder, Nova and Keystone fault bodies', () => {
    expect(parseServiceFault({ itemNotFound: { message: 'gone', code: 404 } })).toEqual({
      fault: 'itemNotFound',
      message: 'gone',
    });
    expect(parseServiceFault({ error: { message: 'nope', code: 401, title: 'Unauthorized' } })).toEqual({
      fault: 'error',
      message: 'nope',
    });
    expect(parseServiceFault('<h1>Bad  Gateway</h1>')).toEqual({ message: 'Bad Gateway' });
    expect(parseServiceFault(undefined)).toEqual({});
  });

  it('recognizes a 404 from any service as not found', () => {
    expect(isNotFound(errorFromResponse(ctx, 404, {}))).toBe(true);
    expect(isNotFound(errorFromResponse(ctx, 400, {}))).toBe(false);
    expect(isNotFound(new Error('404'))).toBe(false);
  });
});
