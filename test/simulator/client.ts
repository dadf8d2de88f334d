/**
 * A minimal fetch-based client for the simulator tests: token issue, JSON requests against Cinder and Nova
 * URLs built the way a catalog-driven client builds them, and a bounded wait for an observed condition.
 */
import type { Simulator } from '../../src/simulator';

export interface Answer<T = any> {
  status: number;
  headers: Headers;
  json: T;
}

export async function call<T = any>(
  method: string,
  url: string,
  opts: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const res = await fetch(url, {
    method,
    headers: {
      Accept: 'application/json',
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...opts.headers,
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

export function passwordAuth(sim: Simulator): unknown {
  const c = sim.credentials;
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } },
      },
      scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
    },
  };
}

export async function issueToken(sim: Simulator, body: unknown = passwordAuth(sim)): Promise<string> {
  const r = await call('POST', `${sim.keystoneUrl}/auth/tokens`, { body });
  if (r.status !== 201) throw new Error(`token: ${r.status} ${JSON.stringify(r.json)}`);
  return r.headers.get('x-subject-token') as string;
}

/** Cinder and Nova calls with one token and optional microversions. */
export class Api {
  constructor(
    readonly sim: Simulator,
    public token: string,
  ) {}

  static async login(sim: Simulator): Promise<Api> {
    return new Api(sim, await issueToken(sim));
  }

  cinder<T = any>(method: string, path: string, body?: unknown, microversion?: string): Promise<Answer<T>> {
    const headers: Record<string, string> = { 'X-Auth-Token': this.token };
    if (microversion) headers['OpenStack-API-Version'] = `volume ${microversion}`;
    return call<T>(method, `${this.sim.url}/volume/v3/${this.sim.credentials.projectId}${path}`, { body, headers });
  }

  nova<T = any>(method: string, path: string, body?: unknown, microversion?: string): Promise<Answer<T>> {
    const headers: Record<string, string> = { 'X-Auth-Token': this.token };
    if (microversion) headers['X-OpenStack-Nova-API-Version'] = microversion;
    return call<T>(method, `${this.sim.url}/compute/v2.1${path}`, { body, headers });
  }

  async createVolume(volume: Record<string, unknown>, microversion?: string): Promise<string> {
    const r = await this.cinder('POST', '/volumes', { volume: { size: 1, ...volume } }, microversion);
    if (r.status !== 202) throw new Error(`create: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json.volume.id as string;
  }

  /** Polls the simulator's own state (no HTTP) until the volume has the status; fails after timeoutMs. */
  async volumeStatus(id: string, status: string, timeoutMs = 3000): Promise<void> {
    await waitFor(
      () => this.sim.getVolume(id)?.status === status,
      timeoutMs,
      `volume ${id} to be ${status} (is ${this.sim.getVolume(id)?.status})`,
    );
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
