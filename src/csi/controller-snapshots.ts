/**
 * CreateSnapshot, DeleteSnapshot and ListSnapshots. A CSI snapshot is a Cinder snapshot, or a Cinder
 * backup with VolumeSnapshotClass `type: backup`; the backend (src/block/block-snapshots.ts) hides which.
 */
import type { SnapshotInfo } from '../block/block-types';
import { invalidArgument } from './errors';
import type { CallContext, ServiceHandlers } from './server';
import type * as csi from './types';
import { requireString, gibToBytes } from './validate';
import { parseSnapshotParameters } from './controller-params';
import type { ControllerDeps, ControllerRouting } from './controller-routing';

export function snapshotHandlers(deps: ControllerDeps, routing: ControllerRouting): ServiceHandlers {
  return {
    async CreateSnapshot(req: csi.CreateSnapshotRequest, ctx: CallContext): Promise<csi.CreateSnapshotResponse> {
      const sourceVolumeId = requireString(req.source_volume_id, 'source_volume_id');
      const name = requireString(req.name, 'name');
      const params = parseSnapshotParameters(req.parameters ?? {}, deps.cluster);
      const backend = routing.forVolume(sourceVolumeId, req.secrets);
      const snap = await backend.createSnapshot(
        {
          name,
          sourceVolumeId,
          kind: params.kind,
          force: params.force,
          availabilityZone: params.availability,
          metadata: params.metadata,
        },
        ctx.signal,
      );
      return { snapshot: snapshotOut(snap) };
    },

    async DeleteSnapshot(req: csi.DeleteSnapshotRequest, ctx: CallContext): Promise<csi.DeleteSnapshotResponse> {
      const id = requireString(req.snapshot_id, 'snapshot_id');
      await routing.forSecrets(req.secrets).deleteSnapshot(id, ctx.signal);
      return {};
    },

    async ListSnapshots(req: csi.ListSnapshotsRequest, ctx: CallContext): Promise<csi.ListSnapshotsResponse> {
      if (req.max_entries < 0) throw invalidArgument('max_entries', 'must not be negative');
      const backend = routing.forSecrets(req.secrets);
      if (req.snapshot_id) {
        // CSI: an unknown snapshot_id is an empty list, not NOT_FOUND.
        const snap = await backend.getSnapshot(req.snapshot_id, ctx.signal);
        const match = snap && (!req.source_volume_id || snap.sourceVolumeId === req.source_volume_id);
        return { entries: match ? [{ snapshot: snapshotOut(snap) }] : [], next_token: '' };
      }
      const page = await backend.listSnapshots(
        {
          sourceVolumeId: req.source_volume_id || undefined,
          limit: req.max_entries,
          marker: req.starting_token || undefined,
        },
        ctx.signal,
      );
      return { entries: page.items.map((s) => ({ snapshot: snapshotOut(s) })), next_token: page.nextMarker ?? '' };
    },
  };
}

function snapshotOut(s: SnapshotInfo): csi.Snapshot {
  return {
    snapshot_id: s.id,
    source_volume_id: s.sourceVolumeId,
    size_bytes: gibToBytes(s.sizeGiB),
    creation_time: { seconds: Math.floor(s.createdAt / 1000), nanos: (s.createdAt % 1000) * 1e6 },
    ready_to_use: s.readyToUse,
  };
}
