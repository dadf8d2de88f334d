/**
 * Test harness: the OpenStack clients wired to a simulator (or any ServiceAuth), with fast retries and a
 * record of every HTTP attempt, plus a poll helper for Cinder's asynchronous statuses.
 */
import { type CloudAuth } from '../../src/config/types';
import { type Logger } from '../../src/log';
import { CinderClient } from '../../src/openstack/cinder';
import { HttpClient, type HttpOptions, type RequestEvent } from '../../src/openstack/http';
import { KeystoneClient } from '../../src/openstack/keystone';
import { NovaClient } from '../../src/openstack/nova';
import type { Simulator } from '../../src/simulator';

export const SIM_REGION = 'RegionOne';

/** Password auth by user name and project name, as the demo cloud.conf has it. */
export function passwordAuth(sim: Simulator, over: Partial<CloudAuth> = {}): CloudAuth {
  const c = sim.credentials;
  return {
    name: '',
    authUrl: sim.keystoneUrl,
    region: SIM_REGION,
    endpointType: 'public',
    username: c.username,
    password: c.password,
    userDomainName: c.userDomainName,
    projectName: c.projectName,
    projectDomainName: c.projectDomainName,
    tlsInsecure: false,
    ...over,
  };
}

export interface TestClients {
  http: HttpClient;
  keystone: KeystoneClient;
  cinder: CinderClient;
  nova: NovaClient;
  events: RequestEvent[];
}

export function clientsFor(
  auth: CloudAuth,
  o: {
    http?: HttpOptions;
    logger?: Logger;
    now?: () => number;
    expiryMarginMs?: number;
    ignoreVolumeMicroversion?: boolean;
  } = {},
): TestClients {
  const events: RequestEvent[] = [];
  const http = new HttpClient({
    retry: { initialMs: 1, maxDelayMs: 5 },
    logger: o.logger,
    onRequest: (e) => events.push(e),
    caFile: auth.caFile,
    ...o.http,
  });
  const keystone = new KeystoneClient({ auth, http, logger: o.logger, now: o.now, expiryMarginMs: o.expiryMarginMs });
  return {
    http,
    keystone,
    cinder: new CinderClient({ keystone, http, ignoreVolumeMicroversion: o.ignoreVolumeMicroversion }),
    nova: new NovaClient({ keystone, http }),
    events,
  };
}

/** Polls `get` every 10 ms until `done` holds; fails after `timeoutMs`. */
export async function waitFor<T>(get: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
