/**
 * What the whole csi-sanity v5.4.0 suite may leave unrun here, each entry named with its reason:
 * - pending: specs upstream marks `XIt`; ginkgo never runs them, whatever the driver (csi-test issue #223,
 *   the ListVolumes pagination spec that deletes volumes it did not create). 92 specs = 91 runnable + 1 pending.
 * - skipped: specs csi-sanity skips because the driver does not advertise the capability they test. Each
 *   entry goes when its capability lands: today none, so 91 ran / 0 skipped / 1 pending.
 */
export const SANITY_TOTAL_SPECS = 92;

export interface AllowedSkip {
  /** Matches the spec's full name. */
  spec: RegExp;
  /** The capability whose absence makes csi-sanity skip it. */
  capability: string;
}

/** Upstream's pending specs (`XIt` in csi-test v5.4.0 pkg/sanity/controller.go). */
export const SANITY_PENDING: readonly RegExp[] = [
  /ListVolumes pagination should detect volumes added between pages and accept tokens when the last volume from a page is deleted$/,
];

/** Every capability csi-sanity tests is advertised: no spec may skip. An entry here would name a spec and why. */
export const SANITY_ALLOWED_SKIPS: readonly AllowedSkip[] = [];

/** The skipped specs no allowed entry explains. */
export function unexpectedSkips(skipped: readonly string[]): string[] {
  return skipped.filter((name) => !SANITY_ALLOWED_SKIPS.some((a) => a.spec.test(name)));
}

/** The pending specs that are not upstream's known ones. */
export function unexpectedPending(pending: readonly string[]): string[] {
  return pending.filter((name) => !SANITY_PENDING.some((p) => p.test(name)));
}
