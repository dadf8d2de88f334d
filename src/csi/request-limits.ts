/**
 * Size guard applied to every request before its handler runs. CSI ids, names and paths are short; a
 * multi-megabyte string or map is a broken or hostile caller, answered INVALID_ARGUMENT naming the field
 * instead of being passed to the cloud or the kernel.
 */
import { invalidArgument } from './errors';

/** Longest string field accepted: PATH_MAX, the longest legitimate value (a target path). */
export const MAX_STRING_BYTES = 4096;
/** Largest map (parameters, volume_context, secrets) by total key and value bytes. */
export const MAX_MAP_BYTES = 256 * 1024;
const MAX_DEPTH = 8;
/** The map<string,string> fields of csi.proto requests. */
const MAP_FIELDS = new Set([
  'secrets',
  'parameters',
  'mutable_parameters',
  'volume_context',
  'publish_context',
  'segments',
]);

/**
 * Throws INVALID_ARGUMENT for the first oversized string or map field found, naming it by its path. Runs on every
 * call: a field's path is spelled out only for an object it descends into or a field it rejects.
 */
export function checkRequestSizes(request: unknown, path = '', depth = 0): void {
  if (depth > MAX_DEPTH || request === null || typeof request !== 'object') return;
  if (Buffer.isBuffer(request)) return;
  if (Array.isArray(request)) {
    request.forEach((item, i) => {
      if (item !== null && typeof item === 'object') checkRequestSizes(item, `${path}[${i}]`, depth + 1);
    });
    return;
  }
  for (const key of Object.keys(request)) {
    const value = (request as Record<string, unknown>)[key];
    if (typeof value === 'string') {
      // A UTF-16 unit is at most 3 UTF-8 bytes: short strings need no byte count.
      if (value.length * 3 > MAX_STRING_BYTES && Buffer.byteLength(value) > MAX_STRING_BYTES) {
        throw invalidArgument(fieldPath(path, key), `is longer than ${MAX_STRING_BYTES} bytes`);
      }
    } else if (value === null || typeof value !== 'object') {
      continue;
    } else if (MAP_FIELDS.has(key)) {
      let total = 0;
      for (const [k, v] of Object.entries(value)) total += Buffer.byteLength(k) + Buffer.byteLength(String(v));
      if (total > MAX_MAP_BYTES) throw invalidArgument(fieldPath(path, key), `is larger than ${MAX_MAP_BYTES} bytes`);
      // Map values are not otherwise limited to MAX_STRING_BYTES: a CA bundle in a secret may be longer.
    } else {
      checkRequestSizes(value, fieldPath(path, key), depth + 1);
    }
  }
}

function fieldPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
