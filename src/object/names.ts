/**
 * Bucket / container names and prefixes derived from the CO's volume name (the PV name), and the check of
 * a user-given bucket. Derivation is pure, so a retried CreateVolume lands on the same bucket; whether the
 * bucket exists or whose it is belongs to the stores and the backend.
 */
import { createHash } from 'node:crypto';

/** S3's bucket-name bounds (AWS "Bucket naming rules"); Swift allows 256 bytes, so S3's are the stricter. */
export const BUCKET_NAME_MIN = 3;
export const BUCKET_NAME_MAX = 63;
/** Hex characters of the sha256 suffix appended when a name had to be truncated or altered. */
export const NAME_HASH_CHARS = 8;

const VALID_BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS_RE = /^\d+\.\d+\.\d+\.\d+$/;
/** Generated names use only this alphabet (no dots: they break virtual-host TLS certificates). */
const GENERATED_RE = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * Why `name` is not a usable S3 bucket name, or undefined when it is (3–63 chars of lowercase letters,
 * digits, '.', '-', starting and ending alphanumeric, not an IP address, no '..'). The same rule is
 * applied to Swift containers, so a volume id stays valid whichever provider serves it.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < BUCKET_NAME_MIN || name.length > BUCKET_NAME_MAX)
    return `must be ${BUCKET_NAME_MIN}-${BUCKET_NAME_MAX} characters long`;
  if (!VALID_BUCKET_RE.test(name))
    return 'may hold only lowercase letters, digits, "." and "-", and must start and end with a letter or digit';
  if (name.includes('..')) return 'must not contain ".."';
  if (IP_ADDRESS_RE.test(name)) return 'must not look like an IP address';
  return undefined;
}

/**
 * The bucket-mode bucket of a volume: the PV name lowercased, with characters outside [a-z0-9-]
 * turned into '-'. When that changed the name or it is too long, a short hash of the original name is
 * appended, so two distinct PV names never collide and the same name always gives the same bucket.
 */
export function bucketNameFor(volumeName: string): string {
  const cleaned = volumeName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (GENERATED_RE.test(cleaned) && cleaned === volumeName) return cleaned;
  const hash = createHash('sha256').update(volumeName).digest('hex').slice(0, NAME_HASH_CHARS);
  const room = BUCKET_NAME_MAX - NAME_HASH_CHARS - 1;
  const head = cleaned.slice(0, room).replace(/-+$/, '');
  return head ? `${head}-${hash}` : `vol-${hash}`;
}

/**
 * The prefix-mode prefix of a volume: `<volume name>/`. Kubernetes PV names are DNS subdomains, so they
 * are already safe object-key segments; '/' inside a CO name is replaced so the prefix stays one level.
 */
export function prefixFor(volumeName: string): string {
  return `${volumeName.replace(/\//g, '-')}/`;
}
