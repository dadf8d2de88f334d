/**
 * Nova v2.1 as a CSI controller uses it: servers (show, list, detail) and os-volume_attachments (list, show,
 * attach, detach). Attach and detach drive the Cinder volume through its statuses on timers and, for the
 * local server, hand the device to the device plane. Error codes follow nova/api/.../volumes.py.
 */
import type { SimEnv } from './env';
import {
  atLeast,
  badRequest,
  notFound,
  objectBody,
  optString,
  ApiError,
  type Reply,
  type RequestContext,
  type Route,
} from './http-util';
import { isoZ, randomUUID, type Bdm, type ServerRecord, type VolumeRecord } from './state';

/** The microversions of Nova 26 (Zed), the release of the machine's real OpenStack. */
export const NOVA_MIN_VERSION: [number, number] = [2, 1];
export const NOVA_MAX_VERSION: [number, number] = [2, 93];
/** vda is the root disk; attached volumes get the next free virtio name. */
const DEVICE_LETTERS = 'bcdefghijklmnopqrstuvwxyz';

function findServer(env: SimEnv, id: string): ServerRecord {
  const s = env.state.servers.get(id);
  if (!s) throw notFound(`Instance ${id} could not be found.`);
  return s;
}

function serverView(env: SimEnv, ctx: RequestContext, s: ServerRecord): unknown {
  const self = `${ctx.endpoint}/servers/${s.id}`;
  return {
    id: s.id,
    name: s.name,
    status: 'ACTIVE',
    tenant_id: env.state.project.id,
    user_id: ctx.token?.userId ?? null,
    metadata: {},
    hostId: 'a'.repeat(56),
    image: '',
    flavor: { id: '1', links: [{ rel: 'bookmark', href: `${env.baseUrl}/compute/flavors/1` }] },
    created: isoZ(s.createdAt),
    updated: isoZ(s.createdAt),
    addresses: {},
    accessIPv4: '',
    accessIPv6: '',
    links: [
      { rel: 'self', href: self },
      { rel: 'bookmark', href: self.replace('/v2.1/', '/') },
    ],
    'OS-DCF:diskConfig': 'MANUAL',
    progress: 0,
    'OS-EXT-AZ:availability_zone': s.az,
    config_drive: '',
    key_name: null,
    'OS-SRV-USG:launched_at': new Date(s.createdAt).toISOString().replace('Z', '000'),
    'OS-SRV-USG:terminated_at': null,
    'OS-EXT-STS:task_state': null,
    'OS-EXT-STS:vm_state': 'active',
    'OS-EXT-STS:power_state': 1,
    'os-extended-volumes:volumes_attached': s.bdms.map((b) => ({
      id: b.volumeId,
      delete_on_termination: b.deleteOnTermination,
    })),
  };
}

function attachmentView(ctx: RequestContext, s: ServerRecord, b: Bdm): unknown {
  const view: Record<string, unknown> = { volumeId: b.volumeId, serverId: s.id, device: b.device };
  // 2.89 replaced the volume-id-as-id with the real Cinder attachment and BDM ids.
  if (atLeast(ctx, '2.89')) {
    view.attachment_id = b.attachmentId;
    view.bdm_uuid = b.bdmUuid;
  } else {
    view.id = b.volumeId;
  }
  if (atLeast(ctx, '2.70')) view.tag = b.tag;
  if (atLeast(ctx, '2.79')) view.delete_on_termination = b.deleteOnTermination;
  return view;
}

function findBdm(s: ServerRecord, volumeId: string): Bdm {
  const b = s.bdms.find((x) => x.volumeId === volumeId);
  if (!b) throw notFound(`Instance ${s.id} is not attached to volume ${volumeId}`);
  return b;
}

function volumeFor(env: SimEnv, id: string): VolumeRecord {
  const v = env.state.volumes.get(id);
  if (!v) throw notFound(`Volume ${id} could not be found.`);
  return v;
}

function nextDevice(s: ServerRecord): string {
  const used = new Set(s.bdms.map((b) => b.device));
  const letter = [...DEVICE_LETTERS].find((l) => !used.has(`/dev/vd${l}`));
  if (!letter)
    throw new ApiError(
      403,
      'The maximum allowed number of disk devices (26) to attach to a single instance has been exceeded.',
    );
  return `/dev/vd${letter}`;
}

function attach(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const s = findServer(env, ctx.params.server);
  const body = objectBody(ctx, 'volumeAttachment');
  const volumeId = optString(body, 'volumeId');
  if (!volumeId)
    throw badRequest(
      "Invalid input for field/attribute volumeAttachment. Value: {}. 'volumeId' is a required property",
    );
  const v = volumeFor(env, volumeId);
  if (s.bdms.some((b) => b.volumeId === v.id)) {
    // Nova 26 names every server the volume is attached to (observed on openstack-loopback (Cinder 21/Nova 26)).
    const servers = [...state.servers.values()].filter((x) => x.bdms.some((b) => b.volumeId === v.id)).map((x) => x.id);
    throw badRequest(`Invalid volume: volume ${v.id} is already attached to instances: ${servers.join(',')}`);
  }
  // Nova refuses every multiattach volume below 2.60, even for its first server (MultiattachNotSupportedOldMicroversion).
  if (v.multiattach && !atLeast(ctx, '2.60')) {
    throw badRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
  }
  if (s.maxVolumes !== undefined && s.bdms.length >= s.maxVolumes) {
    throw new ApiError(
      403,
      `The maximum allowed number of disk devices (${s.maxVolumes}) to attach to a single instance has been exceeded.`,
    );
  }
  // Cinder's attachment_create (reserve); Nova turns its 400 into InvalidInput, another 400.
  const reservable = v.status === 'available' || (v.multiattach && v.status === 'in-use');
  if (!reservable) {
    const statuses = v.multiattach ? 'available or in-use or downloading' : 'available or downloading';
    throw badRequest(
      `Invalid input received: Invalid volume: Volume ${v.id} status must be ${statuses} to reserve, but the current status is ${v.status}. (HTTP 400)`,
    );
  }
  const bdm: Bdm = {
    volumeId: v.id,
    device: optString(body, 'device') ?? nextDevice(s),
    attachmentId: randomUUID(),
    bdmUuid: randomUUID(),
    tag: optString(body, 'tag') ?? null,
    deleteOnTermination: body.delete_on_termination === true,
  };
  s.bdms.push(bdm);
  const previous = v.status;
  state.setVolumeStatus(v, 'reserved');
  const fail = state.failAttach.delete(v.id);
  const live = () => state.volumes.get(v.id) === v && s.bdms.includes(bdm);
  state.after(state.delays.attach / 2, () => {
    if (live() && v.status === 'reserved') state.setVolumeStatus(v, 'attaching');
  });
  state.after('attach', () => {
    if (!live()) return;
    if (fail) {
      s.bdms.splice(s.bdms.indexOf(bdm), 1);
      return state.setVolumeStatus(v, previous === 'in-use' ? 'in-use' : 'available');
    }
    // Cinder records the connector's compute host, never the server name; Nova's fake driver sends none, so
    // the attachment's host_name is null (observed on openstack-loopback (Cinder 21/Nova 26)).
    v.attachments.push({
      id: bdm.attachmentId,
      serverId: s.id,
      device: bdm.device,
      hostName: null,
      attachedAt: Date.now(),
    });
    state.setVolumeStatus(v, 'in-use');
    if (env.device && s.id === env.localServerId) {
      state.after('deviceLink', () => {
        if (!live()) return;
        env.device?.attach(v.id).then(
          (loop) => {
            if (live()) v.devicePath = loop;
          },
          (err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: loop device not attached'),
        );
      });
    }
  });
  // The create answer keeps the pre-2.89 shape at every microversion (volumes.py create).
  const answer: Record<string, unknown> = { id: v.id, serverId: s.id, volumeId: v.id, device: bdm.device };
  if (atLeast(ctx, '2.70')) answer.tag = bdm.tag;
  if (atLeast(ctx, '2.79')) answer.delete_on_termination = bdm.deleteOnTermination;
  return { status: 200, body: { volumeAttachment: answer } };
}

function detach(env: SimEnv, ctx: RequestContext): Reply {
  const { state } = env;
  const s = findServer(env, ctx.params.server);
  const v = volumeFor(env, ctx.params.volume);
  const bdm = findBdm(s, v.id);
  if (v.status !== 'in-use' || !v.attachments.some((a) => a.id === bdm.attachmentId)) {
    throw badRequest(
      "Invalid input received: Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach. (HTTP 400)",
    );
  }
  state.setVolumeStatus(v, 'detaching');
  if (env.device && s.id === env.localServerId) {
    // The guest loses the disk first; Cinder learns of it when Nova deletes the attachment.
    delete v.devicePath;
    env.device
      .detach(v.id)
      .catch((err: unknown) => env.log.error({ err, volumeId: v.id }, 'simulator: loop device not detached'));
  }
  state.after('detach', () => {
    if (state.volumes.get(v.id) !== v) return;
    const i = s.bdms.indexOf(bdm);
    if (i >= 0) s.bdms.splice(i, 1);
    v.attachments = v.attachments.filter((a) => a.id !== bdm.attachmentId);
    if (v.status === 'detaching') state.setVolumeStatus(v, v.attachments.length > 0 ? 'in-use' : 'available');
  });
  return { status: 202 };
}

function versionDoc(env: SimEnv): Record<string, unknown> {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: NOVA_MAX_VERSION.join('.'),
    min_version: NOVA_MIN_VERSION.join('.'),
    updated: '2013-07-23T11:33:21Z',
    links: [
      { rel: 'self', href: `${env.baseUrl}/compute/v2.1/` },
      { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

export function novaRoutes(env: SimEnv): Route[] {
  const srv = '^/v2\\.1/servers/(?<server>[^/]+)';
  const servers = (ctx: RequestContext, detail: boolean): Reply => {
    const name = ctx.query.get('name');
    let pattern: RegExp | undefined;
    try {
      pattern = name === null ? undefined : new RegExp(name);
    } catch {
      throw badRequest(`Invalid input for query parameter name. Value: ${name}.`);
    }
    const list = [...env.state.servers.values()].filter((s) => !pattern || pattern.test(s.name));
    const summary = (s: ServerRecord) => ({
      id: s.id,
      name: s.name,
      links: (serverView(env, ctx, s) as { links: unknown }).links,
    });
    return { status: 200, body: { servers: list.map((s) => (detail ? serverView(env, ctx, s) : summary(s))) } };
  };
  return [
    {
      method: 'GET',
      pattern: /^\/?$/,
      op: 'nova.versions',
      auth: false,
      handle: () => ({ status: 200, body: { versions: [versionDoc(env)] } }),
    },
    {
      method: 'GET',
      pattern: /^\/v2\.1\/?$/,
      op: 'nova.versions',
      auth: false,
      handle: () => ({ status: 200, body: { version: versionDoc(env) } }),
    },
    {
      method: 'GET',
      pattern: /^\/v2\.1\/servers\/?$/,
      op: 'nova.server.list',
      auth: true,
      handle: (c) => servers(c, false),
    },
    {
      method: 'GET',
      pattern: /^\/v2\.1\/servers\/detail\/?$/,
      op: 'nova.server.list',
      auth: true,
      handle: (c) => servers(c, true),
    },
    {
      method: 'GET',
      pattern: new RegExp(`${srv}/?$`),
      op: 'nova.server.get',
      auth: true,
      handle: (c) => ({ status: 200, body: { server: serverView(env, c, findServer(env, c.params.server)) } }),
    },
    {
      method: 'GET',
      pattern: new RegExp(`${srv}/os-volume_attachments/?$`),
      op: 'nova.attachment.list',
      auth: true,
      handle: (c) => {
        const s = findServer(env, c.params.server);
        return { status: 200, body: { volumeAttachments: s.bdms.map((b) => attachmentView(c, s, b)) } };
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`${srv}/os-volume_attachments/?$`),
      op: 'nova.attachment.create',
      auth: true,
      handle: (c) => attach(env, c),
    },
    {
      method: 'GET',
      pattern: new RegExp(`${srv}/os-volume_attachments/(?<volume>[^/]+)$`),
      op: 'nova.attachment.get',
      auth: true,
      handle: (c) => {
        const s = findServer(env, c.params.server);
        return { status: 200, body: { volumeAttachment: attachmentView(c, s, findBdm(s, c.params.volume)) } };
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`${srv}/os-volume_attachments/(?<volume>[^/]+)$`),
      op: 'nova.attachment.delete',
      auth: true,
      handle: (c) => detach(env, c),
    },
  ];
}
