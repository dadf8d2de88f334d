/**
 * What the whole csi-sanity v5.4.0 suite may skip here: only specs whose capability the driver does not
 * advertise yet, each named with the capability. When that capability lands its entries go, and the
 * expectation becomes 92 ran / 0 skipped.
 */
export const SANITY_TOTAL_SPECS = 92;

export interface AllowedSkip {
  /** Matches the spec's full name. */
  spec: RegExp;
  /** The capability whose absence makes csi-sanity skip it. */
  capability: string;
}

export const SANITY_ALLOWED_SKIPS: readonly AllowedSkip[] = [];

/** The skipped specs no allowed entry explains. */
export function unexpectedSkips(skipped: readonly string[]): string[] {
  return skipped.filter((name) => !SANITY_ALLOWED_SKIPS.some((a) => a.spec.test(name)));
}
