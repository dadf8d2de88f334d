/**
 * Keystone v3 as far as a CSI driver uses it: POST /auth/tokens with the password, application_credential
 * and token methods and project or OS-TRUST:trust scope; GET/HEAD (validate) and DELETE (revoke) of
 * tokens; version discovery. Bodies, headers and 401s follow the identity API reference.
 */
import { ApiError, header, type RequestContext, type Reply, type Route } from './http-util';
import type { SimEnv } from './env';
import { DOMAIN, hexId, keystoneTime, type TokenRecord, type UserRecord } from './state';

const UNAUTHORIZED = 'The request you have made requires authentication.';
const ROLES = [
  { id: hexId(), name: 'member' },
  { id: hexId(), name: 'reader' },
];
const SERVICES = [
  { type: 'identity', name: 'keystone', path: () => '/identity/v3' },
  { type: 'volumev3', name: 'cinderv3', path: (p: string) => `/volume/v3/${p}` },
  { type: 'block-storage', name: 'cinder', path: (p: string) => `/volume/v3/${p}` },
  { type: 'compute', name: 'nova', path: () => '/compute/v2.1' },
] as const;
/** Non-public interfaces live under a prefix, so the server can count which one a client picked. */
const INTERFACES = [
  { iface: 'public', prefix: '' },
  { iface: 'internal', prefix: '/internal' },
  { iface: 'admin', prefix: '/admin' },
] as const;

const unauthorized = (m = UNAUTHORIZED): ApiError => new ApiError(401, m);

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The catalog of a project-scoped token: every service on public, internal and admin interfaces. */
export function buildCatalog(env: SimEnv, projectId: string): unknown[] {
  return SERVICES.map((svc, i) => ({
    id: `${i}`.padStart(32, '0'),
    type: svc.type,
    name: svc.name,
    endpoints: INTERFACES.map((it, j) => ({
      id: `${i}${j}`.padStart(32, '0'),
      interface: it.iface,
      region: env.region,
      region_id: env.region,
      url: `${env.baseUrl}${it.prefix}${svc.path(projectId)}`,
    })),
  }));
}

function tokenBody(env: SimEnv, t: TokenRecord, withCatalog: boolean): unknown {
  const { state } = env;
  const user = state.users.get(t.userId) as UserRecord;
  const body: Record<string, unknown> = {
    methods: t.methods,
    user: { domain: { ...DOMAIN }, id: user.id, name: user.name, password_expires_at: null },
    audit_ids: [t.auditId],
    expires_at: keystoneTime(t.expiresAt),
    issued_at: keystoneTime(t.issuedAt),
  };
  if (t.projectId) {
    body.project = { domain: { ...DOMAIN }, id: state.project.id, name: state.project.name };
    body.is_domain = false;
    body.roles = ROLES.map((r) => ({ ...r }));
    if (withCatalog) body.catalog = buildCatalog(env, t.projectId);
  }
  if (t.appCredId) body.application_credential = { id: state.appCred.id, name: state.appCred.name, restricted: true };
  if (t.trustId) {
    body['OS-TRUST:trust'] = {
      id: state.trust.id,
      impersonation: state.trust.impersonation,
      trustee_user: { id: state.trust.trusteeId },
      trustor_user: { id: state.trust.trustorId },
    };
  }
  return { token: body };
}

/** A user named by id, or by name within a domain given by id or name. */
function findUser(env: SimEnv, ref: Record<string, unknown> | undefined): UserRecord | undefined {
  if (!ref) return undefined;
  const users = [...env.state.users.values()];
  if (typeof ref.id === 'string') return users.find((u) => u.id === ref.id);
  const domain = obj(ref.domain);
  const inDefault = domain && (domain.id === DOMAIN.id || domain.name === DOMAIN.name);
  if (typeof ref.name !== 'string' || !inDefault) return undefined;
  return users.find((u) => u.name === ref.name);
}

function authenticate(
  env: SimEnv,
  identity: Record<string, unknown>,
): { user: UserRecord; base?: TokenRecord; appCred?: boolean } {
  const { state } = env;
  const methods = identity.methods;
  if (!Array.isArray(methods) || methods.length === 0)
    throw new ApiError(
      400,
      'Expecting to find methods in identity - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
    );
  const method = methods[0];
  const data = obj(identity[method]);
  if (!data) throw new ApiError(400, `Expecting to find ${method} in identity.`);
  switch (method) {
    case 'password': {
      const ref = obj(data.user);
      const user = findUser(env, ref);
      if (!user || ref?.password !== user.password) throw unauthorized();
      return { user };
    }
    case 'application_credential': {
      const ac = state.appCred;
      const byId = data.id === ac.id;
      const byName = data.name === ac.name && findUser(env, obj(data.user))?.id === ac.userId;
      if (!(byId || byName) || data.secret !== ac.secret) throw unauthorized();
      return { user: state.users.get(ac.userId) as UserRecord, appCred: true };
    }
    case 'token': {
      const base = state.liveToken(typeof data.id === 'string' ? data.id : undefined);
      if (!base) throw unauthorized();
      return { user: state.users.get(base.userId) as UserRecord, base };
    }
    default:
      throw unauthorized('Attempted to authenticate with an unsupported method.');
  }
}

function createToken(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const auth = obj(obj(ctx.body)?.auth);
  const identity = obj(auth?.identity);
  if (!auth || !identity)
    throw new ApiError(
      400,
      'Expecting to find identity in auth - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
    );
  const { user, base, appCred } = authenticate(env, identity);
  const methods = (identity.methods as string[]).slice(0, 1);
  const scope = obj(auth.scope);
  const project = obj(scope?.project);
  const trustRef = obj(scope?.['OS-TRUST:trust']);
  // Only users whose default project is the demo project hold a role on it (the trustee holds none).
  const hasProjectRole = (u: UserRecord) => u.defaultProjectId === state.project.id;
  let projectId: string | null;
  const extra: Partial<TokenRecord> = {};

  if (appCred) {
    // An application credential carries its own project scope; asking for another one is refused.
    if (scope) throw unauthorized('Application credentials cannot request a scope.');
    projectId = state.project.id;
    extra.appCredId = state.appCred.id;
  } else if (trustRef) {
    if (trustRef.id !== state.trust.id) throw unauthorized(`Could not find trust: ${String(trustRef.id)}.`);
    if (user.id !== state.trust.trusteeId) throw new ApiError(403, 'User is not a trustee.');
    projectId = state.project.id;
    extra.trustId = state.trust.id;
  } else if (project) {
    const domain = obj(project.domain);
    const byId = project.id === state.project.id;
    const byName = project.name === state.project.name && (domain?.id === DOMAIN.id || domain?.name === DOMAIN.name);
    // Keystone 22 gives no reason for an unknown project or a missing role, only the generic 401
    // (observed on openstack-loopback (Cinder 21/Nova 26)).
    if (!byId && !byName) throw unauthorized();
    if (!hasProjectRole(user)) throw unauthorized();
    projectId = state.project.id;
  } else if (scope) {
    throw unauthorized('Only project and trust scopes are supported.');
  } else if (base) {
    projectId = base.projectId;
    if (base.appCredId) extra.appCredId = base.appCredId;
    if (base.trustId) extra.trustId = base.trustId;
  } else {
    projectId = user.defaultProjectId;
  }
  // Keystone keeps the original expiry when a token is exchanged for another one.
  if (base) extra.expiresAt = base.expiresAt;
  const token = state.issueToken(user.id, projectId, methods, extra);
  const withCatalog = !ctx.query.has('nocatalog');
  return { status: 201, headers: { 'X-Subject-Token': token.id }, body: tokenBody(env, token, withCatalog) };
}

function validateToken(env: SimEnv, ctx: RequestContext): Reply {
  if (!env.state.liveToken(header(ctx, 'x-auth-token'))) throw unauthorized();
  const subject = env.state.liveToken(header(ctx, 'x-subject-token'));
  if (!subject) throw new ApiError(404, 'Failed to validate token');
  const body = ctx.method === 'HEAD' ? undefined : tokenBody(env, subject, !ctx.query.has('nocatalog'));
  return { status: 200, headers: { 'X-Subject-Token': subject.id }, body };
}

function revokeToken(env: SimEnv, ctx: RequestContext): Reply {
  if (!env.state.liveToken(header(ctx, 'x-auth-token'))) throw unauthorized();
  const subject = env.state.liveToken(header(ctx, 'x-subject-token'));
  if (!subject) throw new ApiError(404, 'Failed to validate token');
  subject.revoked = true;
  return { status: 204 };
}

function v3Version(env: SimEnv): unknown {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${env.baseUrl}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export function keystoneRoutes(env: SimEnv): Route[] {
  const versions = (status: number) => (): Reply =>
    status === 300
      ? { status, body: { versions: { values: [v3Version(env)] } } }
      : { status, body: { version: v3Version(env) } };
  return [
    { method: 'GET', pattern: /^\/?$/, op: 'keystone.versions', auth: false, handle: versions(300) },
    { method: 'GET', pattern: /^\/v3\/?$/, op: 'keystone.versions', auth: false, handle: versions(200) },
    {
      method: 'POST',
      pattern: /^\/v3\/auth\/tokens$/,
      op: 'keystone.token.create',
      auth: false,
      handle: (c) => createToken(env, c),
    },
    {
      method: 'GET',
      pattern: /^\/v3\/auth\/tokens$/,
      op: 'keystone.token.validate',
      auth: false,
      handle: (c) => validateToken(env, c),
    },
    {
      method: 'HEAD',
      pattern: /^\/v3\/auth\/tokens$/,
      op: 'keystone.token.validate',
      auth: false,
      handle: (c) => validateToken(env, c),
    },
    {
      method: 'DELETE',
      pattern: /^\/v3\/auth\/tokens$/,
      op: 'keystone.token.revoke',
      auth: false,
      handle: (c) => revokeToken(env, c),
    },
  ];
}
