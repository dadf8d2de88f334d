/**
 * The e2e suites fail on any error line of the driver's or the sidecars' logs except those listed as benign; each
 * entry must let through the line that was seen and nothing near it that would mean a real fault.
 */
import { unexpectedErrorLines } from '../../bench/kube/scenario';

const attacher = (line: string) => ({ proc: 'csi-attacher', line });

describe('BENIGN_SIDECAR_ERRORS', () => {
  const reconcile = (status: boolean, found: boolean) =>
    `E1204 14:57:36.770322       1 csi_handler.go:190] "VolumeAttachment attached status and actual state do not match. Adding back to VolumeAttachment queue for forced reprocessing" VolumeAttachment="csi-4fd8347b724d1514eba407935fb888f3d4a3b44684ff9d21926107109d442f7a" volumeHandle="c0207864-2e84-4e3e-b1ef-b0a3a8be720b" attachedStatus=${status} found=${found}`;

  it("lets through csi-attacher's reconciler seeing an attach the VolumeAttachment has not caught up with", () => {
    expect(unexpectedErrorLines([attacher(reconcile(false, true))])).toEqual([]);
  });

  it('keeps a VolumeAttachment that says attached while the cloud has no attachment', () => {
    const line = attacher(reconcile(true, false));
    expect(unexpectedErrorLines([line])).toEqual([line]);
  });

  it('keeps the same line from another process', () => {
    const line = { proc: 'csi-provisioner', line: reconcile(false, true) };
    expect(unexpectedErrorLines([line])).toEqual([line]);
  });
});
