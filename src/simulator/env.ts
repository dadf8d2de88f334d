/**
 * What every service module receives: the shared state, the address the server ended up on, the region,
 * the local server's id, the logger and (when active) the device plane. Built once by index.ts.
 */
import type { Logger } from '../log';
import type { DevicePlane } from './device-plane';
import type { SimState } from './state';

export interface SimEnv {
  readonly state: SimState;
  readonly region: string;
  /** http(s)://host:port, known once the server listens */
  baseUrl: string;
  readonly localServerId: string;
  readonly log: Logger;
  readonly device: DevicePlane | null;
}
