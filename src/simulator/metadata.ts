/**
 * The Nova metadata service as seen from the local server: `openstack/<version>/meta_data.json` with the
 * instance uuid, name, availability zone and its attached disks. Unauthenticated, like 169.254.169.254.
 */
import type { SimEnv } from './env';
import { notFound, type Reply, type Route } from './http-util';

/** Metadata versions a real service lists at /openstack (a subset; clients ask for `latest`). */
const VERSIONS = [
  '2012-08-10',
  '2013-04-04',
  '2013-10-17',
  '2016-06-30',
  '2017-02-22',
  '2018-08-27',
  '2020-10-14',
  'latest',
];

function metaData(env: SimEnv): Reply {
  const s = env.state.servers.get(env.localServerId);
  if (!s) throw notFound('The resource could not be found.');
  const devices = s.bdms.map((b, i) => ({
    type: 'disk',
    bus: 'virtio',
    serial: b.volumeId,
    path: b.device,
    address: `0000:00:${(i + 6).toString(16).padStart(2, '0')}.0`,
    tags: b.tag ? [b.tag] : [],
  }));
  return {
    status: 200,
    body: {
      uuid: s.id,
      name: s.name,
      hostname: s.name,
      availability_zone: s.az,
      launch_index: 0,
      project_id: env.state.project.id,
      meta: {},
      public_keys: {},
      keys: [],
      devices,
    },
  };
}

export function metadataRoutes(env: SimEnv): Route[] {
  const versions = VERSIONS.map((v) => v.replace(/-/g, '\\-')).join('|');
  return [
    {
      method: 'GET',
      pattern: /^\/openstack\/?$/,
      op: 'metadata.get',
      auth: false,
      handle: () => ({ status: 200, body: VERSIONS.join('\n') }),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/openstack/(${versions})/meta_data\\.json$`),
      op: 'metadata.get',
      auth: false,
      handle: () => metaData(env),
    },
  ];
}
