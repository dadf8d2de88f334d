/** Awaits a client call that must fail and returns its OpenStackError, so tests can assert kind, code and message. */
import { OpenStackError } from '../../src/openstack/errors';

export async function openStackFailure(p: Promise<unknown>): Promise<OpenStackError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(OpenStackError);
    return e as OpenStackError;
  }
  throw new Error('expected a failure');
}
