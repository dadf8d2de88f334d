/**
 * `os-retype` and the volume types it needs, as Cinder 21 behaves (observed on openstack-loopback, pinned by
 * test/integration/retype.openstack.test.ts): the API checks the request, the type and the volume's state and
 * answers 202 with the volume `retyping`; the scheduler then either retypes it (back to its resting status
 * with the new type) or finds no way to and puts it back at rest with the old type, saying nothing: no 400, no
 * user message. A retype needs a migration when the new type's `volume_backend_name` is another backend than
 * the volume's; policy `never` ends that way, `on-demand` migrates. A backend name no backend has: no host.
 */
import type { SimEnv } from './env';
import { ApiError, badRequest, notFound, type Reply } from './http-util';
import { randomUUID, type VolumeRecord, type VolumeType } from './state';

/** The simulated Cinder's backends; the first is named like openstack-loopback's one (its types work here too). */
export const SIM_BACKENDS = ['fake', 'fake-2'] as const;
const BACKEND_KEY = 'volume_backend_name';
const POLICIES = ['on-demand', 'never'];
/** Cinder 21's refusal of a retype from a wrong state or to the same type (one text for every cause). */
const RETYPE_REFUSED =
  'Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a ' +
  'consistency group, requested type has to be different that the one from the volume, and for in-use volumes ' +
  'front-end qos specs cannot change.';
/**
 * Extra specs a project member sees in a type view; the others (volume_backend_name, driver keys) are the
 * operator's. A member GET of a type with only `volume_backend_name` shows `extra_specs: {}` on Cinder 21.
 */
const USER_VISIBLE_SPECS = new Set(['multiattach', 'replication_enabled', 'RESKEY:availability_zones']);

/** The extra specs of a type as a project member sees them. */
export function memberExtraSpecs(t: VolumeType): Record<string, string> {
  return Object.fromEntries(Object.entries(t.extraSpecs).filter(([k]) => USER_VISIBLE_SPECS.has(k)));
}

/** A type by name or id, as Cinder's `get_by_name_or_id`; 404 with Cinder's text otherwise. */
export function findVolumeType(env: SimEnv, ref: string): VolumeType {
  const t = env.state.volumeTypes.find((x) => x.name === ref || x.id === ref);
  if (!t) throw notFound(`Volume type with name ${ref} could not be found.`);
  return t;
}

/** Adds a volume type (what an admin's POST /types does on a real cloud); returns its id. Names are unique. */
export function addVolumeType(env: SimEnv, name: string, extraSpecs: Record<string, string> = {}): string {
  if (env.state.volumeTypes.some((t) => t.name === name)) throw new Error(`volume type ${name} exists`);
  const id = randomUUID();
  env.state.volumeTypes.push({ id, name, description: '', extraSpecs: { ...extraSpecs } });
  return id;
}

/** POST /types as the simulator's users (all project members) get it: Cinder's default policy is admin-only. */
export function createTypeForbidden(): Reply {
  throw new ApiError(403, "Policy doesn't allow volume_extension:type_create to be performed.");
}

/** The backend holding a volume: where it was last migrated to, else where its type puts it. */
function backendOf(env: SimEnv, v: VolumeRecord): string {
  if (v.backend) return v.backend;
  const t = env.state.volumeTypes.find((x) => x.name === v.volumeType);
  return t?.extraSpecs[BACKEND_KEY] ?? SIM_BACKENDS[0];
}

export function retype(env: SimEnv, v: VolumeRecord, args: Record<string, unknown>, raw: unknown): Reply {
  const { state } = env;
  if (typeof args.new_type !== 'string') {
    throw badRequest(
      `Invalid input for field/attribute os-retype. Value: ${pyRepr(raw)}. 'new_type' is a required property`,
    );
  }
  const policy = args.migration_policy ?? 'never';
  if (typeof policy !== 'string' || !POLICIES.includes(policy)) {
    throw badRequest(
      `Invalid input for field/attribute migration_policy. Value: ${String(policy)}. '${String(policy)}' is not one of ['on-demand', 'never']`,
    );
  }
  const type = findVolumeType(env, args.new_type);
  if ((v.status !== 'available' && v.status !== 'in-use') || type.name === v.volumeType)
    throw badRequest(RETYPE_REFUSED);
  const from = backendOf(env, v);
  const to = type.extraSpecs[BACKEND_KEY] ?? from;
  const possible = (SIM_BACKENDS as readonly string[]).includes(to) && (to === from || policy === 'on-demand');
  state.setVolumeStatus(v, 'retyping');
  state.after('volumeRetype', () => {
    if (state.volumes.get(v.id) !== v || v.status !== 'retyping') return;
    if (possible) {
      v.volumeType = type.name;
      v.backend = to;
      v.multiattach = type.extraSpecs.multiattach === '<is> True';
    }
    state.setVolumeStatus(v, v.attachments.length > 0 ? 'in-use' : 'available');
  });
  return { status: 202 };
}

/** Python's repr of a small JSON value, as Cinder's schema errors quote the offending value. */
function pyRepr(x: unknown): string {
  if (x && typeof x === 'object' && !Array.isArray(x)) {
    return `{${Object.entries(x)
      .map(([k, val]) => `'${k}': ${pyRepr(val)}`)
      .join(', ')}}`;
  }
  return typeof x === 'string' ? `'${x}'` : String(x);
}
