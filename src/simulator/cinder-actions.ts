/**
 * POST /volumes/{id}/action: os-extend (online only with microversion 3.42, as real Cinder gates it) and
 * the legacy attach bookkeeping Nova drives (os-reserve, os-unreserve, os-begin_detaching,
 * os-roll_detaching, os-attach, os-detach), plus os-reset_status and os-set_bootable.
 */
import type { SimEnv } from './env';
import { atLeast, badRequest, boolish, type Reply, type RequestContext } from './http-util';
import { checkQuota } from './cinder-views';
import { checkTypeQuota } from './cinder-quotas';
import { findVolume } from './cinder-volumes';
import { retype } from './cinder-retype';
import { randomUUID, type VolumeRecord, type VolumeStatus } from './state';

const ACTIONS = [
  'os-extend',
  'os-reserve',
  'os-unreserve',
  'os-begin_detaching',
  'os-roll_detaching',
  'os-attach',
  'os-detach',
  'os-reset_status',
  'os-set_bootable',
  'os-retype',
] as const;
type ActionName = (typeof ACTIONS)[number];

const RESETTABLE: VolumeStatus[] = [
  'creating',
  'available',
  'reserved',
  'attaching',
  'in-use',
  'detaching',
  'extending',
  'deleting',
  'backing-up',
  'error',
  'error_extending',
  'error_deleting',
];

/** The action named by the body's only key; used for the operation name before the handler runs. */
export function actionName(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  return Object.keys(body as object)[0];
}

function restingStatus(v: VolumeRecord): VolumeStatus {
  return v.attachments.length > 0 ? 'in-use' : 'available';
}

function extend(env: SimEnv, ctx: RequestContext, v: VolumeRecord, args: Record<string, unknown>): Reply {
  const { state } = env;
  const raw = args.new_size;
  const newSize = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof newSize !== 'number' || !Number.isInteger(newSize)) {
    throw badRequest(`Invalid input for field/attribute new_size. Value: ${String(raw)}.`);
  }
  const online = v.status === 'in-use' && atLeast(ctx, '3.42');
  const expected = online ? 'in-use' : 'available';
  if (v.status !== expected) {
    // Cinder 21 formats its expected-status dict into the text (observed on openstack-loopback (Cinder 21/Nova 26)).
    const allowed = atLeast(ctx, '3.42') ? "('available', 'in-use')" : "'available'";
    throw badRequest(
      `Invalid volume: Volume ${v.id} status must be '{'status': ${allowed}}' to extend, currently ${v.status}.`,
    );
  }
  if (newSize <= v.size) {
    throw badRequest(
      `Invalid input received: New size for extend must be greater than current size. (current: ${v.size}, extended: ${newSize}).`,
    );
  }
  checkQuota(state, 0, newSize - v.size);
  checkTypeQuota(state, v.volumeType, newSize - v.size, newSize);
  const previous = v.status;
  state.setVolumeStatus(v, 'extending');
  const fail = state.failExtend.delete(v.id);
  state.after('volumeExtend', () => {
    if (state.volumes.get(v.id) !== v || v.status !== 'extending') return;
    if (fail) return state.setVolumeStatus(v, 'error_extending');
    v.size = newSize;
    env.device
      ?.resize(v.id, newSize)
      .catch((err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: resize failed'));
    state.setVolumeStatus(v, previous);
  });
  return { status: 202 };
}

/** Runs a legacy state-machine action; each refuses the states real Cinder refuses with its own message. */
function legacy(env: SimEnv, v: VolumeRecord, action: ActionName, args: Record<string, unknown>): Reply {
  const { state } = env;
  switch (action) {
    case 'os-reserve': {
      const ok = v.status === 'available' || (v.multiattach && v.status === 'in-use');
      if (!ok)
        throw badRequest(`Invalid volume: Volume status must be available to reserve, but the status is ${v.status}.`);
      state.setVolumeStatus(v, 'attaching');
      break;
    }
    case 'os-unreserve':
      if (v.status === 'attaching' || v.status === 'reserved') state.setVolumeStatus(v, restingStatus(v));
      break;
    case 'os-begin_detaching':
      if (v.status !== 'in-use' || v.attachments.length === 0) {
        throw badRequest(
          "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.",
        );
      }
      state.setVolumeStatus(v, 'detaching');
      break;
    case 'os-roll_detaching':
      if (v.status === 'detaching') state.setVolumeStatus(v, 'in-use');
      break;
    case 'os-attach': {
      const serverId = typeof args.instance_uuid === 'string' ? args.instance_uuid : null;
      const hostName = typeof args.host_name === 'string' ? args.host_name : null;
      if (!serverId && !hostName) throw badRequest('Invalid request to attach volume to an invalid target');
      if (!['attaching', 'reserved', 'available'].includes(v.status) && !(v.multiattach && v.status === 'in-use')) {
        throw badRequest(
          `Invalid volume: Volume status must be available or attaching, but the status is ${v.status}.`,
        );
      }
      v.attachments.push({
        id: randomUUID(),
        serverId: serverId ?? '',
        device: typeof args.mountpoint === 'string' ? args.mountpoint : '',
        hostName,
        attachedAt: Date.now(),
      });
      state.setVolumeStatus(v, 'in-use');
      break;
    }
    case 'os-detach': {
      const id = typeof args.attachment_id === 'string' ? args.attachment_id : undefined;
      if (!id && v.attachments.length > 1)
        throw badRequest('Invalid volume: Volume has more than one attachment; attachment_id is required.');
      const i = id ? v.attachments.findIndex((a) => a.id === id) : 0;
      if (i < 0 || v.attachments.length === 0)
        throw badRequest(`Invalid volume: Volume ${v.id} is not attached${id ? ` with attachment ${id}` : ''}.`);
      v.attachments.splice(i, 1);
      state.setVolumeStatus(v, restingStatus(v));
      break;
    }
    case 'os-reset_status': {
      const status = args.status as VolumeStatus;
      if (!RESETTABLE.includes(status))
        throw badRequest(`Invalid input received: '${String(args.status)}' is not a valid status.`);
      state.setVolumeStatus(v, status);
      break;
    }
    case 'os-set_bootable':
      v.bootable = boolish(args.bootable);
      v.updatedAt = Date.now();
      break;
    case 'os-extend':
    case 'os-retype':
      break;
  }
  return { status: 202 };
}

export function volumeAction(env: SimEnv, ctx: RequestContext): Reply {
  const v = findVolume(env, ctx.params.id);
  const name = actionName(ctx.body);
  if (!name || !(ACTIONS as readonly string[]).includes(name))
    throw badRequest(`There is no such action: ${name ?? ''}`);
  const raw = (ctx.body as Record<string, unknown>)[name];
  const args = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  if (name === 'os-extend') return extend(env, ctx, v, args);
  if (name === 'os-retype') return retype(env, v, args, raw);
  return legacy(env, v, name as ActionName, args);
}
