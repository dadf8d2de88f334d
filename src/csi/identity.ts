/**
 * CSI Identity service. Probe answers whether this process can serve (configuration loaded, node tools
 * present); it deliberately does not call the cloud: a Keystone outage must not make the liveness probe
 * restart every controller pod. Cloud reachability is `doctor`'s and the metrics' business.
 */
import { failedPrecondition } from './errors';
import type { ServiceHandlers } from './server';

export const DRIVER_NAME = 'cinder.csi.openstack.org';

export interface IdentityOptions {
  version: string;
  controller: boolean;
  /** The GroupController service (volume group snapshots) is served. */
  groupController?: boolean;
  topology: boolean;
  /** Returns what keeps this process from serving (missing tools ...); empty when ready. */
  readinessProblems: () => Promise<string[]>;
}

export function identityHandlers(opts: IdentityOptions): ServiceHandlers {
  return {
    async GetPluginInfo() {
      return { name: DRIVER_NAME, vendor_version: opts.version, manifest: {} };
    },

    async GetPluginCapabilities() {
      const capabilities: object[] = [];
      if (opts.controller) capabilities.push({ service: { type: 'CONTROLLER_SERVICE' } });
      if (opts.groupController) capabilities.push({ service: { type: 'GROUP_CONTROLLER_SERVICE' } });
      if (opts.topology) capabilities.push({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
      capabilities.push({ volume_expansion: { type: 'ONLINE' } }, { volume_expansion: { type: 'OFFLINE' } });
      return { capabilities };
    },

    async Probe() {
      const problems = await opts.readinessProblems();
      // CSI: a plugin that is not healthy answers FAILED_PRECONDITION; the message says why.
      if (problems.length > 0) throw failedPrecondition(`not ready: ${problems.join('; ')}`);
      return { ready: { value: true } };
    },
  };
}
