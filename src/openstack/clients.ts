/**
 * Builds the OpenStack clients of one cloud (`[Global "name"]`) and of every cloud named by `--cloud-name`.
 * The composition root (main.ts) calls this; handlers receive the narrow interfaces only.
 */
import { type CloudAuth } from '../config/types';
import { type Logger, silentLogger } from '../log';
import { type CinderApi, CinderClient } from './cinder';
import { HttpClient, type HttpOptions, type RequestEvent } from './http';
import { KeystoneClient } from './keystone';
import { type NovaApi, NovaClient } from './nova';

export interface CloudClients {
  readonly name: string;
  readonly keystone: KeystoneClient;
  readonly cinder: CinderApi;
  readonly nova: NovaApi;
  /** The cloud's HTTP layer (TLS, retries, metrics), for clients built outside this module (Swift). */
  readonly http: HttpClient;
}

export interface CloudClientOptions {
  logger?: Logger;
  /** `--user-agent` values. */
  userAgentExtra?: readonly string[];
  onRequest?: (e: RequestEvent) => void;
  /** `[BlockStorage] ignore-volume-microversion`. */
  ignoreVolumeMicroversion?: boolean;
  /** Overrides of the HTTP layer (timeouts, retry policy, sleep) for all clients. */
  http?: Omit<
    HttpOptions,
    'caFile' | 'tlsInsecure' | 'certFile' | 'keyFile' | 'logger' | 'onRequest' | 'userAgentExtra'
  >;
}

/** Clients of one cloud sharing one HTTP layer (TLS from `auth`) and one token. Reads ca/cert/key files now. */
export function createCloudClients(auth: CloudAuth, opts: CloudClientOptions = {}): CloudClients {
  const logger = (opts.logger ?? silentLogger).child({ cloud: auth.name });
  const http = new HttpClient({
    ...opts.http,
    caFile: auth.caFile,
    tlsInsecure: auth.tlsInsecure,
    certFile: auth.certFile,
    keyFile: auth.keyFile,
    userAgentExtra: opts.userAgentExtra,
    onRequest: opts.onRequest,
    logger,
  });
  const keystone = new KeystoneClient({ auth, http, logger });
  return {
    name: auth.name,
    keystone,
    cinder: new CinderClient({ keystone, http, ignoreVolumeMicroversion: opts.ignoreVolumeMicroversion }),
    nova: new NovaClient({ keystone, http }),
    http,
  };
}

/**
 * One CloudClients per requested cloud name (`--cloud-name`, default `['']`). Throws when a name has no
 * `[Global "name"]` section, naming it.
 */
export function createClouds(
  clouds: ReadonlyMap<string, CloudAuth>,
  names: readonly string[] = [''],
  opts: CloudClientOptions = {},
): Map<string, CloudClients> {
  const out = new Map<string, CloudClients>();
  for (const name of names) {
    const auth = clouds.get(name);
    if (!auth)
      throw new Error(`cloud.conf has no ${name ? `[Global "${name}"]` : '[Global]'} section for --cloud-name=${name}`);
    out.set(name, createCloudClients(auth, opts));
  }
  return out;
}
