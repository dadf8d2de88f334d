/**
 * The doctor's cloud checks, per configured cloud: Keystone authentication, Cinder v3 and Nova in the
 * catalog, their version documents and microversions against what the plugin uses, and whether this node's
 * instance exists in Nova. Builds its own short-retry clients; parsing cloud.conf is doctor-command.ts's job.
 */
import type { CloudAuth } from '../config/types';
import { messageOf } from '../errors';
import { HttpClient, type HttpOptions } from '../openstack/http';
import { COMPUTE_SERVICE_TYPES, KeystoneClient, VOLUME_SERVICE_TYPES } from '../openstack/keystone';
import { NovaClient } from '../openstack/nova';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { CINDER_MICROVERSION_BACKUP, CINDER_MICROVERSION_EXTEND_IN_USE } from '../openstack/cinder';
import { NOVA_MICROVERSION_MULTIATTACH } from '../openstack/nova';
import { type CheckResult, result } from './check';

/** One attempt plus one retry: the doctor reports a flaky cloud rather than hiding it behind backoff. */
const DOCTOR_HTTP: Pick<HttpOptions, 'timeoutMs' | 'retry'> = { timeoutMs: 10_000, retry: { maxRetries: 1 } };

/** HTTP overrides for tests (shorter retries); TLS always comes from the cloud's section. */
export type DoctorHttpOptions = Omit<HttpOptions, 'caFile' | 'tlsInsecure' | 'certFile' | 'keyFile'>;

/** The clients the cloud checks use for one cloud. */
export interface DoctorCloud {
  auth: CloudAuth;
  http: HttpClient;
  keystone: KeystoneClient;
  nova: NovaClient;
}

/** Builds the doctor's clients for one cloud. Throws when a ca/cert/key file cannot be read. */
export function doctorCloud(auth: CloudAuth, http: DoctorHttpOptions = {}): DoctorCloud {
  const client = new HttpClient({
    ...DOCTOR_HTTP,
    ...http,
    caFile: auth.caFile,
    tlsInsecure: auth.tlsInsecure,
    certFile: auth.certFile,
    keyFile: auth.keyFile,
  });
  const keystone = new KeystoneClient({ auth, http: client });
  return { auth, http: client, keystone, nova: new NovaClient({ keystone, http: client }) };
}

/**
 * Keystone, catalog and both services' versions for one cloud, in that order; a failed step skips the ones
 * that need it (a catalog cannot be read without a token). `usable` is true when nothing failed, so the
 * caller knows the instance check can run against this cloud.
 */
export async function checkCloud(c: DoctorCloud): Promise<{ results: CheckResult[]; usable: boolean }> {
  const name = c.auth.name;
  const out: CheckResult[] = [];
  try {
    await c.keystone.token();
    const project = await c.keystone.projectId();
    out.push(
      result(
        'cloud.keystone',
        'pass',
        `authenticated at ${c.auth.authUrl}${project ? ` (project ${project})` : ''}`,
        undefined,
        name,
      ),
    );
  } catch (e) {
    out.push(
      result(
        'cloud.keystone',
        'fail',
        `authentication at ${c.auth.authUrl} failed: ${messageOf(e)}`,
        keystoneHint(e),
        name,
      ),
    );
    return { results: out, usable: false };
  }
  let cinderUrl: string;
  let novaUrl: string;
  try {
    cinderUrl = await c.keystone.endpoint(VOLUME_SERVICE_TYPES);
    novaUrl = await c.keystone.endpoint(COMPUTE_SERVICE_TYPES);
    out.push(result('cloud.catalog', 'pass', `Cinder v3 at ${cinderUrl}, Nova at ${novaUrl}`, undefined, name));
  } catch (e) {
    out.push(
      result(
        'cloud.catalog',
        'fail',
        messageOf(e),
        "the token's catalog must list volumev3 (or block-storage) and compute for the configured region and endpoint type (cloud.conf region, os-endpoint-type)",
        name,
      ),
    );
    return { results: out, usable: false };
  }
  out.push(await checkService(c, 'cinder', cinderUrl));
  out.push(await checkService(c, 'nova', novaUrl));
  return { results: out, usable: out.every((r) => r.status !== 'fail') };
}

function keystoneHint(e: unknown): string {
  if (isOpenStackError(e, 'unauthorized')) {
    return 'Keystone rejected the credentials: check username/user-id and password (or the application credential id/secret), the domain keys and tenant-name/tenant-id in cloud.conf';
  }
  if (isOpenStackError(e, 'unavailable') || isOpenStackError(e, 'deadline')) {
    return 'Keystone did not answer: check auth-url, DNS, HTTP(S)_PROXY/NO_PROXY and the network path from this node';
  }
  if (isOpenStackError(e, 'not-found')) return 'auth-url must be the Keystone v3 URL (ending in /v3)';
  return 'check the credentials, auth-url and ca-file in cloud.conf';
}

/** What the plugin needs of each service's microversions, and what is lost without them. */
const NEEDS: Record<'cinder' | 'nova', Array<{ version: string; feature: string }>> = {
  cinder: [
    { version: CINDER_MICROVERSION_EXTEND_IN_USE, feature: 'online extend of attached volumes' },
    { version: CINDER_MICROVERSION_BACKUP, feature: 'backups as snapshots (type=backup) with metadata' },
  ],
  nova: [{ version: NOVA_MICROVERSION_MULTIATTACH, feature: 'multiattach volumes' }],
};

async function checkService(c: DoctorCloud, service: 'cinder' | 'nova', endpointUrl: string): Promise<CheckResult> {
  const id = `cloud.${service}`;
  const label = service === 'cinder' ? 'Cinder' : 'Nova';
  let doc: VersionDoc;
  try {
    doc = await fetchVersion(c.http, c.keystone, service, endpointUrl);
  } catch (e) {
    return result(
      id,
      'fail',
      `${label} does not answer: ${messageOf(e)}`,
      `GET ${versionRoot(service, endpointUrl)} must answer its version document; check that ${label} is up and reachable from here`,
      c.auth.name,
    );
  }
  const max = doc.version || doc.min_version || '';
  const missing = NEEDS[service].filter((n) => !max || compareMicroversions(max, n.version) < 0);
  const what = `${label} ${doc.id ?? ''} answers, microversions up to ${max || 'none'}`.replace('  ', ' ');
  if (missing.length === 0) return result(id, 'pass', what, undefined, c.auth.name);
  const lost = missing.map((m) => `${m.feature} needs ${m.version}`).join('; ');
  return result(id, 'warn', `${what}: ${lost}`, `upgrade ${label}, or expect those features to fail`, c.auth.name);
}

interface VersionDoc {
  id?: string;
  version?: string;
  min_version?: string;
}

/** The versioned root of a service endpoint: Cinder's `.../v3/{project}` → `.../v3/`, Nova's `.../v2.1` → `.../v2.1/`. */
export function versionRoot(service: 'cinder' | 'nova', endpointUrl: string): string {
  const re = service === 'cinder' ? /^(.*\/v3)(\/.*)?$/ : /^(.*\/v2(?:\.1)?)(\/.*)?$/;
  const m = re.exec(endpointUrl);
  return `${m ? m[1] : endpointUrl.replace(/\/+$/, '')}/`;
}

async function fetchVersion(
  http: HttpClient,
  keystone: KeystoneClient,
  service: 'cinder' | 'nova',
  endpointUrl: string,
): Promise<VersionDoc> {
  // Real Cinder keeps only `/` public; its `/v3/` version document needs a token (Nova's `/v2.1/` does not mind one).
  const res = await http.request<{ version?: VersionDoc; versions?: VersionDoc[] }>({
    service,
    operation: 'versions',
    method: 'GET',
    url: versionRoot(service, endpointUrl),
    auth: keystone,
  });
  const prefix = service === 'cinder' ? 'v3' : 'v2.1';
  const doc = res.data?.version ?? res.data?.versions?.find((v) => v.id?.startsWith(prefix)) ?? res.data?.versions?.[0];
  if (!doc) throw new Error('the answer is not a version document');
  return doc;
}

/** Compares `3.42` with `3.9` as microversions (numerically per part); negative when a < b. */
export function compareMicroversions(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 !== b1 ? a1 - b1 : (a2 || 0) - (b2 || 0);
}

/** Whether `nodeId` is a server in one of the clouds. Fails naming the id when no cloud has it. */
export async function checkInstance(
  clouds: readonly DoctorCloud[],
  nodeId: string,
  from: string,
): Promise<CheckResult> {
  const problems: string[] = [];
  for (const c of clouds) {
    try {
      const s = await c.nova.getServer(nodeId);
      return result(
        'cloud.instance',
        'pass',
        `instance ${nodeId} (${s.name}, from ${from}) exists in Nova`,
        undefined,
        c.auth.name,
      );
    } catch (e) {
      if (!isNotFound(e)) problems.push(`${c.auth.name || 'Global'}: ${messageOf(e)}`);
    }
  }
  if (problems.length) {
    return result(
      'cloud.instance',
      'fail',
      `cannot look up instance ${nodeId} in Nova: ${problems.join('; ')}`,
      'fix the cloud checks above first',
    );
  }
  return result(
    'cloud.instance',
    'fail',
    `instance ${nodeId} (from ${from}) not found in Nova`,
    "the node id must be this VM's Nova server UUID in the configured cloud and project: check --node-id, the metadata service and cloud.conf region/project",
  );
}
