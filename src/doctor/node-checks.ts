/**
 * The doctor's node checks: the metadata chain (instance id and AZ), the tools staging and FUSE mounts run,
 * the by-id and /dev/fuse device paths, mount propagation of the kubelet directory and the FUSE supervisor's
 * socket. Reads the machine only through injectable deps so tests can point it at fixtures.
 */
import { stat } from 'node:fs/promises';
import { messageOf } from '../errors';
import { commandExists as realCommandExists } from '../mount/exec';
import { MOUNTINFO_PATH, type MountInfo, readMountInfo, resolveMountPath } from '../mount/mountinfo';
import type { MetadataApi } from '../openstack/metadata';
import { SupervisorClient } from '../fuse/supervisor-client';
import { type CheckResult, result } from './check';
import { OPTIONAL_TOOLS, REQUIRED_TOOLS } from '../mount/node-tools';

export { OPTIONAL_TOOLS, REQUIRED_TOOLS };

/** The kernel's FUSE device; object-storage volumes need it in the plugin's container. */
export const FUSE_DEVICE = '/dev/fuse';
/** A live supervisor answers `list` at once. */
const SOCKET_TIMEOUT_MS = 2_000;

/** What the node checks read from the machine; each defaults to the real thing. */
export interface NodeCheckDeps {
  commandExists?: (command: string) => Promise<boolean>;
  mountInfoPath?: string;
  fuseDevice?: string;
}

/**
 * The node's identity from the metadata chain. With `--node-id` a metadata failure is a warning (the flag
 * stands in) and the flag wins for the instance check. `nodeId` is what the instance check should look up.
 */
export async function checkMetadata(
  metadata: MetadataApi,
  nodeIdFlag?: string,
): Promise<{ result: CheckResult; nodeId?: string; from?: string }> {
  try {
    const m = await metadata.get();
    const az = m.availabilityZone ? `AZ ${m.availabilityZone}` : 'no availability zone';
    const msg = `instance ${m.uuid}, ${az} (from ${m.source})${nodeIdFlag && nodeIdFlag !== m.uuid ? `; --node-id ${nodeIdFlag} overrides it` : ''}`;
    const r = m.availabilityZone
      ? result('node.metadata', 'pass', msg)
      : result(
          'node.metadata',
          'warn',
          msg,
          'topology needs the AZ: use a source that knows it (metadataService, configDrive) in [Metadata] search-order',
        );
    return nodeIdFlag
      ? { result: r, nodeId: nodeIdFlag, from: '--node-id' }
      : { result: r, nodeId: m.uuid, from: m.source };
  } catch (e) {
    const hint =
      'make the metadata service (--metadata-url) or the config drive reachable, or set [Metadata] search-order; on clouds without either pass --node-id';
    if (nodeIdFlag)
      return {
        result: result(
          'node.metadata',
          'warn',
          `metadata unavailable (--node-id ${nodeIdFlag} given): ${messageOf(e)}`,
          hint,
        ),
        nodeId: nodeIdFlag,
        from: '--node-id',
      };
    return { result: result('node.metadata', 'fail', `no instance id from the metadata chain: ${messageOf(e)}`, hint) };
  }
}

/** Required tools (fail when missing) and optional ones (warn), one line each. */
export async function checkTools(deps: NodeCheckDeps = {}): Promise<CheckResult[]> {
  const exists = deps.commandExists ?? ((c: string) => realCommandExists(c));
  const missingOf = async (tools: readonly string[]) => {
    const missing: string[] = [];
    for (const t of tools) if (!(await exists(t))) missing.push(t);
    return missing;
  };
  const required = await missingOf(REQUIRED_TOOLS);
  const optional = await missingOf(OPTIONAL_TOOLS);
  const install = 'install them in the plugin image (util-linux, e2fsprogs, xfsprogs, udev, s3fs, rclone, fuse3)';
  return [
    required.length
      ? result('node.tools.required', 'fail', `missing: ${required.join(', ')}`, install)
      : result('node.tools.required', 'pass', `present: ${REQUIRED_TOOLS.join(', ')}`),
    optional.length
      ? result(
          'node.tools.optional',
          'warn',
          `missing: ${optional.join(', ')} (xfs volumes, rescans or object storage will fail)`,
          install,
        )
      : result('node.tools.optional', 'pass', `present: ${OPTIONAL_TOOLS.join(', ')}`),
  ];
}

/** The by-id directory (fail when absent) and /dev/fuse (warn when absent). */
export async function checkDevices(byIdDir: string, deps: NodeCheckDeps = {}): Promise<CheckResult[]> {
  const fuse = deps.fuseDevice ?? FUSE_DEVICE;
  const isThere = (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  return [
    (await isThere(byIdDir))
      ? result('node.by-id', 'pass', `${byIdDir} exists`)
      : result(
          'node.by-id',
          'fail',
          `${byIdDir} does not exist`,
          "mount the host's /dev into the plugin container (hostPath /dev) so attached disks can be found by id",
        ),
    (await isThere(fuse))
      ? result('node.fuse', 'pass', `${fuse} exists`)
      : result(
          'node.fuse',
          'warn',
          `${fuse} does not exist`,
          'object-storage volumes need the fuse module loaded and /dev/fuse in the container (privileged or a device plugin)',
        ),
  ];
}

/**
 * The kubelet directory must sit on a shared mount (mountinfo `shared:N` on the mount that holds it), or
 * mounts the plugin makes never reach kubelet and pods see empty directories.
 */
export async function checkKubeletPropagation(kubeletDir: string, deps: NodeCheckDeps = {}): Promise<CheckResult> {
  const hint =
    'mount the kubelet directory into the plugin with mountPropagation: Bidirectional, and make the host mount shared (mount --make-rshared /)';
  if (
    !(await stat(kubeletDir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    return result(
      'node.kubelet-dir',
      'fail',
      `${kubeletDir} is not a directory`,
      `pass --kubelet-dir with kubelet's --root-dir; ${hint}`,
    );
  }
  const dir = await resolveMountPath(kubeletDir);
  const holder = holdingMount(await readMountInfo(deps.mountInfoPath ?? MOUNTINFO_PATH), dir);
  if (!holder) return result('node.kubelet-dir', 'fail', `no mount holds ${dir} in mountinfo`, hint);
  const on = holder.mountPoint === dir ? 'is a mount point' : `is on the mount at ${holder.mountPoint}`;
  if (holder.propagation.shared !== undefined) {
    return result('node.kubelet-dir', 'pass', `${dir} ${on}, shared:${holder.propagation.shared}`);
  }
  return result('node.kubelet-dir', 'fail', `${dir} ${on}, which is not shared`, hint);
}

/** The mount `path` lives on: the deepest mount point at or above it, topmost of its stack. */
export function holdingMount(mounts: readonly MountInfo[], path: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const covers = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (covers && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Whether the FUSE supervisor answers `list` on its socket. Dead or restarting mounts are a warning: the
 * supervisor is up, but some object-storage volume is not being served.
 */
export async function checkSupervisorSocket(path: string): Promise<CheckResult> {
  const hint =
    'start the FUSE supervisor (its pod csi-cinder-fuse-supervisor-<node>, which the node plugin creates with --fuse-supervisor-pod) and pass the socket it listens on';
  let mounts: Awaited<ReturnType<SupervisorClient['list']>>;
  try {
    mounts = await new SupervisorClient(path, SOCKET_TIMEOUT_MS).list();
  } catch (e) {
    return result('node.supervisor', 'fail', `${path}: ${messageOf(e)}`, hint);
  }
  const count = (state: string) => mounts.filter((m) => m.state === state).length;
  const msg = `${path} answers: ${mounts.length} mounts (${count('alive')} alive, ${count('restarting')} restarting, ${count('dead')} dead)`;
  if (count('dead') + count('restarting') === 0) return result('node.supervisor', 'pass', msg);
  return result(
    'node.supervisor',
    'warn',
    msg,
    "see the supervisor's log and the daemon logs in its state dir for why mounts died",
  );
}
