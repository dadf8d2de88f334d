/**
 * Builds the FuseMountService the node plugin is given (NodeDeps.fuse): a client of the separate supervisor
 * when `--fuse-supervisor-socket` is set (the DaemonSet), else a supervisor inside the plugin process (demo
 * and single-process runs, where mounts do not survive a plugin restart). The composition root calls this.
 */
import type { Logger } from '../log';
import { FuseSupervisor } from './supervisor';
import { InProcessFuseMounts, SupervisorClient, type FuseMountService } from './supervisor-client';

/** State dir of the in-process fallback when none is given. */
export const DEFAULT_IN_PROCESS_STATE_DIR = '/var/lib/cinder-csi/fuse';

export interface FuseMountsOptions {
  /** Path of the supervisor's unix socket; when set, no supervisor runs in this process. */
  supervisorSocket?: string;
  kubeletDir: string;
  stateDir?: string;
  log: Logger;
}

/** The service plus a stop() for shutdown (stops the in-process liveness loop; mounts are left alone). */
export interface FuseMounts {
  service: FuseMountService;
  stop(): void;
}

/** Connects to, or starts, the FUSE supervisor. The in-process one adopts what its state dir records. */
export async function createFuseMounts(opts: FuseMountsOptions): Promise<FuseMounts> {
  if (opts.supervisorSocket) return { service: new SupervisorClient(opts.supervisorSocket), stop: () => undefined };
  const supervisor = new FuseSupervisor({
    stateDir: opts.stateDir ?? DEFAULT_IN_PROCESS_STATE_DIR,
    kubeletDir: opts.kubeletDir,
    log: opts.log.child({ component: 'fuse-supervisor' }),
  });
  await supervisor.start();
  opts.log.warn(
    'FUSE supervisor runs inside the node plugin: object-volume mounts die with the plugin container (its PID namespace)',
  );
  return { service: new InProcessFuseMounts(supervisor), stop: () => supervisor.stop() };
}
