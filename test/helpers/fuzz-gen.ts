/**
 * A seeded generator of hostile CSI requests for the fuzz suite: walks the protobufjs reflection of
 * csi.proto (so a new field or RPC is fuzzed without editing this file), fills fields from corpora of
 * known-bad values chosen by the field's name, and mutates the encoded bytes. Everything is derived from
 * one 32-bit seed, so a failing case is reproduced by rerunning with FUZZ_SEED.
 */
import * as protobuf from 'protobufjs';

/** mulberry32: tiny, fast and good enough to pick cases; the point is reproducibility, not quality. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** Values the generator draws from, grouped by what a field's name says it holds. */
export interface FuzzCorpus {
  paths: readonly string[];
  ids: readonly string[];
  nodeIds: readonly string[];
  names: readonly string[];
  mapKeys: readonly string[];
  mapValues: readonly string[];
  /** Values of `secrets` maps only: distinctive, so an answer that echoes one is caught. */
  secretValues: readonly string[];
  strings: readonly string[];
  int64s: readonly string[];
}

/** 1 MiB: far over the server's per-string limit but under gRPC's message limit. */
export const HUGE_STRING = 'A'.repeat(1024 * 1024);
/** Entries of the huge maps: small values, so the map (not one string) is what is large. */
export const HUGE_MAP_ENTRIES = 10_000;

/** Strings every field may get, whatever its name: empty, unicode, control bytes, traversal, huge. */
export const COMMON_STRINGS: readonly string[] = [
  '',
  'x',
  ' ',
  'a'.repeat(4097),
  '\0',
  'a\0b',
  '\u202e\u0000\uffff',
  '💥ñ中文\u0301',
  '\ud800',
  '%00%2e%2e%2f',
  '../../etc',
  '../../../../../../etc/passwd',
  '/etc',
  '/',
  '.',
  '..',
  'a/b',
  '/a/b/../../..',
  '${HOME}',
  '$(reboot)',
  '`id`',
  'a;rm -rf /',
  '-o',
  '--help',
  'null',
  'undefined',
  '{}',
  '[]',
  '\n\r\t',
  'true',
  '-1',
];

/** Decimal int64 values at and beyond the edges. */
export const INT64_STRINGS: readonly string[] = [
  '0',
  '1',
  '-1',
  '1073741824',
  '1073741825',
  '-1073741824',
  '4096',
  '9223372036854775807',
  '-9223372036854775808',
  '1099511627776',
  '10995116277760000',
  '4611686018427387904',
];

function stringFor(field: protobuf.Field, rng: Rng, c: FuzzCorpus): string {
  if (rng.chance(0.004)) return HUGE_STRING;
  if (rng.chance(0.15)) return rng.pick(c.strings);
  const n = field.name;
  if (n.endsWith('path')) return rng.pick(c.paths);
  if (n === 'node_id') return rng.pick(c.nodeIds);
  if (n.endsWith('_id') || n === 'starting_token') return rng.pick(c.ids);
  if (n === 'name' || n === 'fs_type' || n === 'mode') return rng.pick(c.names);
  return rng.pick(c.strings);
}

function mapFor(rng: Rng, c: FuzzCorpus, secret: boolean): Record<string, string> {
  if (rng.chance(0.01)) {
    const huge: Record<string, string> = {};
    for (let i = 0; i < HUGE_MAP_ENTRIES; i++) huge[`${rng.pick(c.mapKeys)}-${i}`] = rng.pick(['', 'v', 'object']);
    return huge;
  }
  const out: Record<string, string> = {};
  const n = rng.int(5);
  for (let i = 0; i < n; i++) {
    out[rng.chance(0.8) ? rng.pick(c.mapKeys) : rng.pick(c.strings)] = rng.pick(secret ? c.secretValues : c.mapValues);
  }
  return out;
}

function scalarFor(field: protobuf.Field, rng: Rng, c: FuzzCorpus): unknown {
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = Object.values(field.resolvedType.values);
    // An unknown enum number is valid on the wire (proto3 keeps it); the handler must still refuse it.
    return rng.chance(0.2) ? rng.pick([-1, 99, 2147483647]) : rng.pick(values);
  }
  switch (field.type) {
    case 'string':
      return stringFor(field, rng, c);
    case 'bool':
      return rng.chance(0.5);
    case 'bytes':
      return Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256)));
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return rng.pick(c.int64s);
    case 'double':
    case 'float':
      return rng.pick([0, -1, 1e308, Number.NaN, Number.POSITIVE_INFINITY, 0.5]);
    default:
      return rng.pick([0, -1, 1, 2147483647, -2147483648]);
  }
}

/** A random object of `type` for protobufjs's fromObject; fields are absent with probability 0.3. */
export function genMessage(type: protobuf.Type, rng: Rng, c: FuzzCorpus, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (rng.chance(0.3)) continue;
    field.resolve();
    if (field.map) {
      out[field.name] = mapFor(rng, c, field.name === 'secrets');
      continue;
    }
    const one = () => {
      if (field.resolvedType instanceof protobuf.Type) {
        return depth > 4 ? {} : genMessage(field.resolvedType, rng, c, depth + 1);
      }
      return scalarFor(field, rng, c);
    };
    out[field.name] = field.repeated ? Array.from({ length: rng.chance(0.02) ? 300 : rng.int(4) }, one) : one();
  }
  return out;
}

/** Field numbers and wire types of a type, for writing fields with the wrong wire type. */
function wrongTypeField(type: protobuf.Type, rng: Rng): Buffer {
  const field = rng.pick(type.fieldsArray);
  const w = protobuf.Writer.create();
  switch (rng.int(4)) {
    case 0: // a varint where a string or message is expected (or vice versa)
      w.uint32((field.id << 3) | 0).uint64(rng.pick([0, 1, 0x7fffffff, 2 ** 40]));
      break;
    case 1: // a length-delimited field whose length runs past the end
      w.uint32((field.id << 3) | 2)
        .uint32(1_000_000)
        .bytes(Buffer.from('short'));
      break;
    case 2: // fixed32/fixed64 where anything else is expected
      w.uint32((field.id << 3) | 5).fixed32(rng.int(2 ** 31));
      break;
    default: // a group start (deprecated wire type 3) with no end
      w.uint32((field.id << 3) | 3);
  }
  return Buffer.from(w.finish());
}

/** How a case was built, for the report of a failing case. */
export type CaseKind = 'generated' | 'bitflip' | 'truncated' | 'wrong-wire-type' | 'random-bytes';

/** Encodes `obj` as `type`, then maybe damages the bytes. Never throws: an unencodable object becomes random bytes. */
export function encodeCase(
  type: protobuf.Type,
  obj: Record<string, unknown>,
  rng: Rng,
): { bytes: Buffer; kind: CaseKind } {
  const encode = (o: Record<string, unknown>) => {
    try {
      return Buffer.from(type.encode(type.fromObject(o)).finish());
    } catch {
      return Buffer.alloc(0);
    }
  };
  const r = rng.next();
  if (r < 0.7) return { bytes: encode(obj), kind: 'generated' };
  // Damaged bytes could move a secret's value into a field that is rightly logged; damage a copy without them.
  const { secrets: _dropped, ...rest } = obj;
  const bytes = encode(rest);
  if (r < 0.8 && bytes.length > 0) {
    const copy = Buffer.from(bytes);
    for (let i = 0; i < 1 + rng.int(4); i++) copy[rng.int(copy.length)] ^= 1 << rng.int(8);
    return { bytes: copy, kind: 'bitflip' };
  }
  if (r < 0.87 && bytes.length > 1) return { bytes: bytes.subarray(0, rng.int(bytes.length)), kind: 'truncated' };
  if (r < 0.95 && type.fieldsArray.length > 0)
    return { bytes: Buffer.concat([bytes, wrongTypeField(type, rng)]), kind: 'wrong-wire-type' };
  return { bytes: Buffer.from(Array.from({ length: rng.int(200) }, () => rng.int(256))), kind: 'random-bytes' };
}
