/**
 * ControllerModifyVolume for Cinder: a new volume type is Cinder's `os-retype`, waited on until the volume
 * leaves `retyping`. Cinder answers 202 before it knows whether a backend takes the new type, and a retype it
 * then cannot do (no backend for the type, or a migration the policy forbids) ends silently back at rest with
 * the old type (observed on openstack-loopback (Cinder 21)): the outcome is read from the volume, not the answer.
 */
import { aborted, failedPrecondition, internal, invalidArgument, notFound } from '../errors';
import type { CinderVolume, RetypeMigrationPolicy } from '../openstack/cinder';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import type { ModifyVolumeSpec } from './block-types';
import { type BlockContext, attachedServers, isErrorStatus } from './block-context';
import { waitForVolume } from './volume-wait';

/** The statuses Cinder retypes from (its API refuses every other one with 400). */
const RETYPABLE = new Set(['available', 'in-use']);
/** Statuses that end by themselves: the CO's retry (ABORTED) will find the volume at rest. */
const TRANSIENT = new Set([
  'creating',
  'reserved',
  'attaching',
  'detaching',
  'extending',
  'retyping',
  'backing-up',
  'restoring-backup',
  'downloading',
  'uploading',
]);

/** See ControllerBackend.modifyVolume. */
export async function modifyVolume(
  c: BlockContext,
  id: string,
  spec: ModifyVolumeSpec,
  signal: AbortSignal,
): Promise<void> {
  let v = await getOrNotFound(c, id, signal);
  if (spec.volumeType === undefined) return;
  const target = spec.volumeType;
  // A retype already running (a timed-out call of ours, another controller, an operator) is waited out first.
  if (v.status === 'retyping') v = await waitRetyped(c, id, signal);
  if (v.volume_type === target) return;
  checkRetypable(v);
  const policy: RetypeMigrationPolicy = spec.allowMigration ? 'on-demand' : 'never';
  try {
    await c.cinder.retypeVolume(id, target, policy, signal);
  } catch (e) {
    if (signal.aborted) throw e;
    if (isNotFound(e)) {
      // Cinder's 404 names either: the type ("Volume type with name X could not be found.") or the volume.
      if (/type/i.test(isOpenStackError(e) ? (e.serviceMessage ?? '') : '')) {
        throw invalidArgument('mutable_parameters.type', `"${target}" is not a volume type this project can use`);
      }
      throw notFound(`volume ${id} does not exist`);
    }
    if (!isOpenStackError(e, 'invalid-state') && !isOpenStackError(e, 'bad-request')) throw e;
    // Refused for the volume's state: it changed since the read (a retype that just finished, an attach).
    const now = await getOrNotFound(c, id, signal);
    if (now.volume_type === target) return;
    checkRetypable(now);
    throw failedPrecondition(
      `Cinder refused to retype volume ${id} (status ${now.status}) to "${target}": ${(e as Error).message}`,
    );
  }
  c.log.info(
    { volumeId: id, from: v.volume_type, to: target, migrationPolicy: policy, status: v.status },
    'Cinder retype accepted',
  );
  const done = await waitRetyped(c, id, signal, true);
  if (done.volume_type === target) return;
  throw failedPrecondition(refusedText(v, target, policy));
}

/** Waits until the volume leaves `retyping`; a retype that ends in an error status fails the call. */
async function waitRetyped(
  c: BlockContext,
  id: string,
  signal: AbortSignal,
  startWithPause = false,
): Promise<CinderVolume> {
  try {
    return await waitForVolume(c.cinder, id, (x) => x.status !== 'retyping' && !isErrorStatus(x.status), {
      ...c.wait,
      signal,
      startWithPause,
      what: `volume ${id} to finish its retype`,
      failOn: (x) =>
        isErrorStatus(x.status)
          ? internal(`retyping volume ${id} failed: Cinder left it in status ${x.status}`)
          : undefined,
    });
  } catch (e) {
    if (isNotFound(e)) throw notFound(`volume ${id} was deleted during its retype`);
    throw e;
  }
}

function checkRetypable(v: CinderVolume): void {
  if (RETYPABLE.has(v.status)) return;
  if (TRANSIENT.has(v.status))
    throw aborted(`volume ${v.id} is ${v.status}; it can be retyped once that ends, retry later`);
  throw failedPrecondition(`volume ${v.id} is in status ${v.status}; Cinder retypes only available or in-use volumes`);
}

/** Why a retype Cinder accepted came back with the old type: it does not say, so name the possible causes. */
function refusedText(v: CinderVolume, target: string, policy: RetypeMigrationPolicy): string {
  const servers = attachedServers(v);
  const where = servers.length ? `in-use volume ${v.id} (attached to ${servers.join(', ')})` : `volume ${v.id}`;
  const causes =
    policy === 'never'
      ? `no backend accepts type "${target}", or the retype needs a migration to another backend, which mutable parameter migrationPolicy "never" forbids (set it to "on-demand" to allow one)`
      : `no backend accepts type "${target}", or the migration to another backend failed${servers.length ? " (migrating an in-use volume needs Nova's swap-volume)" : ''}`;
  return `Cinder did not retype ${where} from "${v.volume_type ?? 'none'}" to "${target}" and left it at rest with its old type: ${causes}`;
}

async function getOrNotFound(c: BlockContext, id: string, signal: AbortSignal): Promise<CinderVolume> {
  try {
    return await c.cinder.getVolume(id, signal);
  } catch (e) {
    if (isNotFound(e)) throw notFound(`volume ${id} does not exist`);
    throw e;
  }
}
