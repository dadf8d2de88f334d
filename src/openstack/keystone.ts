/**
 * Keystone v3 for one cloud: builds the token request from a CloudAuth (password, application credential,
 * pre-issued token, trust), caches the token until shortly before it expires, shares one in-flight
 * authentication among concurrent callers, and finds service endpoints in the token's catalog.
 * The token and the password never reach a log line or an error message.
 */
import { type CloudAuth } from '../config/types';
import { CodedError, Status } from '../errors';
import { type Logger, silentLogger } from '../log';
import { raceAbort } from './abort';
import { OpenStackError } from './errors';
import { type HttpClient, type TokenSource } from './http';

/** A token is treated as expired this long before its `expires_at`, so no request carries a dying token. */
export const TOKEN_EXPIRY_MARGIN_MS = 60_000;

/** Catalog types of the services we use; the first type present in the catalog wins. */
export const VOLUME_SERVICE_TYPES = ['volumev3', 'block-storage'] as const;
export const COMPUTE_SERVICE_TYPES = ['compute'] as const;

interface CatalogEndpoint {
  interface: string;
  region?: string;
  region_id?: string;
  url: string;
}
interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}
interface TokenBody {
  token: { expires_at: string; catalog?: CatalogEntry[]; project?: { id: string; name?: string } };
}

interface Session {
  token: string;
  expiresAt: number;
  catalog: CatalogEntry[];
  projectId?: string;
}

/** What service clients need from Keystone: a token and where their service lives. */
export interface ServiceAuth extends TokenSource {
  /**
   * URL (no trailing slash) of the first of `types` found in the catalog, for the cloud's region and interface.
   * Rejects with OpenStackError kind 'endpoint-not-found' (FAILED_PRECONDITION) naming types, region and interface.
   */
  endpoint(types: readonly string[], signal?: AbortSignal): Promise<string>;
  /** The project the token is scoped to, when the source knows it (quota sets are addressed by project). */
  projectId?(signal?: AbortSignal): Promise<string | undefined>;
}

export interface KeystoneDeps {
  auth: CloudAuth;
  http: HttpClient;
  logger?: Logger;
  now?: () => number;
  /** Default TOKEN_EXPIRY_MARGIN_MS. */
  expiryMarginMs?: number;
}

/**
 * The JSON body of POST /v3/auth/tokens for `auth`. Precedence follows gophercloud: trust scope when trust-id
 * is set (trustee-id/-password override the user), else application credential, else token, else password.
 * Throws CodedError FAILED_PRECONDITION naming the missing cloud.conf keys.
 */
export function buildAuthBody(auth: CloudAuth): { auth: Record<string, unknown> } {
  const section = auth.name ? `[Global "${auth.name}"]` : '[Global]';
  const missing = (what: string) => new CodedError(Status.FAILED_PRECONDITION, `cloud.conf ${section}: ${what}`);
  const domain = (id?: string, name?: string) => (id ? { id } : name ? { name } : undefined);
  const user = (id: string | undefined, name: string | undefined) => {
    if (id) return { id };
    const d = domain(auth.userDomainId, auth.userDomainName);
    if (name && d) return { name, domain: d };
    if (name) throw missing('username needs user-domain-name or user-domain-id (or domain-name/domain-id)');
    return undefined;
  };

  if (
    auth.applicationCredentialSecret &&
    (auth.applicationCredentialId || auth.applicationCredentialName) &&
    !auth.trustId
  ) {
    const cred: Record<string, unknown> = { secret: auth.applicationCredentialSecret };
    if (auth.applicationCredentialId) cred.id = auth.applicationCredentialId;
    else {
      const u = user(auth.userId, auth.username);
      if (!u) throw missing('application-credential-name needs user-id or username');
      Object.assign(cred, { name: auth.applicationCredentialName, user: u });
    }
    // Application credentials carry their own project scope; Keystone rejects an explicit one.
    return { auth: { identity: { methods: ['application_credential'], application_credential: cred } } };
  }

  let scope: Record<string, unknown> | undefined;
  if (auth.trustId) scope = { 'OS-TRUST:trust': { id: auth.trustId } };
  else if (auth.projectId) scope = { project: { id: auth.projectId } };
  else if (auth.projectName) {
    const d = domain(auth.projectDomainId, auth.projectDomainName) ?? domain(auth.userDomainId, auth.userDomainName);
    if (!d) throw missing('tenant-name needs tenant-domain-name or tenant-domain-id');
    scope = { project: { name: auth.projectName, domain: d } };
  }

  if (auth.token && !auth.trustId) {
    return { auth: { identity: { methods: ['token'], token: { id: auth.token } }, ...(scope && { scope }) } };
  }
  const password = auth.trustId ? (auth.trusteePassword ?? auth.password) : auth.password;
  const u = auth.trustId
    ? user(auth.trusteeId ?? auth.userId, auth.trusteeId ? undefined : auth.username)
    : user(auth.userId, auth.username);
  if (!u || !password) {
    throw missing(
      'no usable credentials: set user-id or username with password, application-credential-id/-name with -secret, or token',
    );
  }
  return {
    auth: { identity: { methods: ['password'], password: { user: { ...u, password } } }, ...(scope && { scope }) },
  };
}

export class KeystoneClient implements ServiceAuth {
  private auth: CloudAuth;
  private readonly http: HttpClient;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly marginMs: number;
  private session?: Session;
  private inflight?: Promise<Session>;
  /** Bumped by reload(); an authentication started under an older generation is not cached. */
  private generation = 0;

  constructor(deps: KeystoneDeps) {
    this.auth = deps.auth;
    this.http = deps.http;
    this.log = (deps.logger ?? silentLogger).child({ cloud: deps.auth.name });
    this.now = deps.now ?? Date.now;
    this.marginMs = deps.expiryMarginMs ?? TOKEN_EXPIRY_MARGIN_MS;
  }

  /** The cloud's section name ('' for `[Global]`). */
  get cloudName(): string {
    return this.auth.name;
  }

  /**
   * A valid token: the cached one, else a fresh authentication shared with concurrent callers. `signal` only
   * stops this caller waiting. Rejects with OpenStackError (401 → UNAUTHENTICATED for bad credentials).
   */
  async token(signal?: AbortSignal): Promise<string> {
    return (await this.currentSession(signal)).token;
  }

  /** Drops the cached token if it is `token` (or unconditionally without an argument). */
  invalidate(token?: string): void {
    if (this.session && (token === undefined || this.session.token === token)) {
      this.log.debug('keystone token invalidated');
      this.session = undefined;
    }
  }

  /** The project id the token is scoped to (from the token body); undefined for an unscoped token. */
  async projectId(signal?: AbortSignal): Promise<string | undefined> {
    return (await this.currentSession(signal)).projectId;
  }

  async endpoint(types: readonly string[], signal?: AbortSignal): Promise<string> {
    const { catalog } = await this.currentSession(signal);
    const { region, endpointType } = this.auth;
    for (const type of types) {
      const entry = catalog.find((e) => e.type === type);
      const ep = entry?.endpoints.find(
        (e) => e.interface === endpointType && (!region || e.region_id === region || e.region === region),
      );
      if (ep) return ep.url.replace(/\/+$/, '');
    }
    const where = `${region ? `region ${region}` : 'any region'}, interface ${endpointType}`;
    const present = catalog.map((e) => e.type).join(', ') || 'none';
    throw new OpenStackError({
      service: 'keystone',
      operation: 'catalog.lookup',
      method: 'GET',
      path: '/v3/auth/tokens',
      kind: 'endpoint-not-found',
      reason: `no ${types.join(' or ')} endpoint in the service catalog for ${where} (catalog has: ${present})`,
    });
  }

  /** Swaps credentials without a restart; the cached token is dropped and the next call authenticates anew. */
  reload(auth: CloudAuth): void {
    this.auth = auth;
    this.generation++;
    this.session = undefined;
    this.inflight = undefined;
    this.log.info('keystone credentials reloaded');
  }

  private currentSession(signal?: AbortSignal): Promise<Session> {
    const s = this.session;
    if (s && this.now() < s.expiresAt - this.marginMs) return Promise.resolve(s);
    if (!this.inflight) {
      const generation = this.generation;
      const p = this.authenticate().then((fresh) => {
        if (generation === this.generation) this.session = fresh;
        return fresh;
      });
      this.inflight = p;
      const clear = () => {
        if (this.inflight === p) this.inflight = undefined;
      };
      p.then(clear, clear);
    }
    return raceAbort(this.inflight, signal);
  }

  private async authenticate(): Promise<Session> {
    const body = buildAuthBody(this.auth);
    // No caller signal: several callers share this request, and one caller's deadline must not fail the others.
    const res = await this.http.request<TokenBody>({
      service: 'keystone',
      operation: 'token.create',
      method: 'POST',
      url: `${this.auth.authUrl.replace(/\/+$/, '')}/auth/tokens`,
      body,
      idempotent: true,
    });
    const token = res.headers['x-subject-token'];
    if (!token || !res.data?.token?.expires_at) {
      throw new OpenStackError({
        service: 'keystone',
        operation: 'token.create',
        method: 'POST',
        path: '/v3/auth/tokens',
        kind: 'unexpected',
        status: res.status,
        reason: 'answer lacks X-Subject-Token or token.expires_at',
      });
    }
    const expiresAt = Date.parse(res.data.token.expires_at);
    this.log.debug(
      { expiresAt: res.data.token.expires_at, projectId: res.data.token.project?.id },
      'keystone token issued',
    );
    return { token, expiresAt, catalog: res.data.token.catalog ?? [], projectId: res.data.token.project?.id };
  }
}
