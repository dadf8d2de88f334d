import { status } from '@grpc/grpc-js';
import { identityHandlers, DRIVER_NAME } from '../../src/csi/identity';
import { loadCsiProto } from '../../src/csi/proto';
import { VERSION } from '../../src/version';
import { startHarness, type CsiHarness } from '../helpers/csi-harness';

function identity(opts: Partial<Parameters<typeof identityHandlers>[0]> = {}) {
  return {
    definition: loadCsiProto().IdentityService,
    handlers: identityHandlers({
      version: VERSION,
      controller: true,
      topology: true,
      readinessProblems: async () => [],
      ...opts,
    }),
  };
}

describe('Identity service over a unix socket', () => {
  let h: CsiHarness;
  afterEach(async () => h?.close());

  it('GetPluginInfo names the driver and its version', async () => {
    h = await startHarness([identity()]);
    const info = await h.call('Identity', 'GetPluginInfo');
    expect(info).toMatchObject({ name: DRIVER_NAME, vendor_version: VERSION });
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('GetPluginCapabilities lists controller, topology and both expansion modes', async () => {
    h = await startHarness([identity()]);
    const res = await h.call<{ capabilities: Array<Record<string, { type: string }>> }>(
      'Identity',
      'GetPluginCapabilities',
    );
    const caps = res.capabilities.map((c) =>
      c.service ? `service:${c.service.type}` : `expansion:${c.volume_expansion.type}`,
    );
    expect(caps.sort()).toEqual([
      'expansion:OFFLINE',
      'expansion:ONLINE',
      'service:CONTROLLER_SERVICE',
      'service:VOLUME_ACCESSIBILITY_CONSTRAINTS',
    ]);
  });

  it('GetPluginCapabilities leaves out the controller and topology when they are off', async () => {
    h = await startHarness([identity({ controller: false, topology: false })]);
    const res = await h.call<{ capabilities: Array<Record<string, unknown>> }>('Identity', 'GetPluginCapabilities');
    expect(res.capabilities.filter((c) => c.service)).toEqual([]);
    expect(res.capabilities).toHaveLength(2);
  });

  it('Probe is ready when nothing is missing', async () => {
    h = await startHarness([identity()]);
    expect(await h.call('Identity', 'Probe')).toEqual({ ready: { value: true } });
  });

  it('Probe answers FAILED_PRECONDITION saying what is missing', async () => {
    h = await startHarness([identity({ readinessProblems: async () => ['mkfs.ext4 is not installed'] })]);
    await expect(h.call('Identity', 'Probe')).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: expect.stringContaining('mkfs.ext4 is not installed'),
    });
  });

  it('answers UNIMPLEMENTED for a service this process does not serve', async () => {
    h = await startHarness([identity()]);
    await expect(h.call('Controller', 'ControllerGetCapabilities')).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
    });
  });
});
