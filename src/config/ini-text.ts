/**
 * Reads cloud.conf text with git-config (gcfg) semantics on top of the `ini` package, because the reference
 * driver's files are gcfg: `[Global "name"]` subsections, case-insensitive section and key names, values
 * quoted with `"` in which `;` and `#` are literal (passwords!), `\"` escapes and inline comments.
 * `ini` alone would cut `"p#ss" ; comment` at the `#` and nest sections whose name holds a dot, so each
 * line is normalised first and ini decodes the normalised text.
 */
import { decode } from 'ini';

/** One section of one file, its name as written (gcfg compares names case-insensitively). */
export interface IniSection {
  readonly name: string;
  readonly sub?: string;
  readonly entries: ReadonlyMap<string, string>;
}

export class IniSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'IniSyntaxError';
  }
}

const SECTION_RE = /^\s*\[\s*([A-Za-z0-9.-]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]\s*(?:[;#].*)?$/;
const KEY_RE = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$/;

/** The value of a gcfg line after `=`: quotes removed, escapes applied, inline comment dropped. */
export function parseGcfgValue(raw: string, line: number): string {
  let out = '';
  let quoted = false;
  let pendingSpace = '';
  const s = raw.trim();
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const n = s[++i];
      const esc: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', b: '\b' };
      if (n === undefined || !(n in esc)) throw new IniSyntaxError(line, `invalid escape "\\${n ?? ''}"`);
      out += pendingSpace + esc[n];
      pendingSpace = '';
    } else if (c === '"') {
      quoted = !quoted;
      out += pendingSpace;
      pendingSpace = '';
    } else if (!quoted && (c === ';' || c === '#')) {
      break;
    } else if (!quoted && (c === ' ' || c === '\t')) {
      pendingSpace += c; // kept only if more value follows: trailing blanks are not part of a value
    } else {
      out += pendingSpace + c;
      pendingSpace = '';
    }
  }
  if (quoted) throw new IniSyntaxError(line, 'unterminated quoted value');
  return out;
}

/** Splits gcfg text into sections in file order. Keys are lower-cased; a repeated key keeps the last value. */
export function readIniSections(text: string): IniSection[] {
  const headers: Array<{ name: string; sub?: string }> = [];
  const normalised: string[] = [];
  text.split(/\r?\n/).forEach((rawLine, idx) => {
    const lineNo = idx + 1;
    const line = rawLine.replace(/^\uFEFF/, '');
    if (/^\s*([;#].*)?$/.test(line)) return;
    const sec = SECTION_RE.exec(line);
    if (sec) {
      headers.push({ name: sec[1], sub: sec[2]?.replace(/\\(.)/g, '$1') });
      normalised.push(`[s${headers.length - 1}]`);
      return;
    }
    const kv = KEY_RE.exec(line);
    // The line is not quoted back: a mangled `password = ...` line would put the password in the message.
    if (!kv) throw new IniSyntaxError(lineNo, 'cannot parse: not a [section] header, a key = value line or a comment');
    if (headers.length === 0) throw new IniSyntaxError(lineNo, 'key outside of any section');
    // gcfg: a key without "=" is a boolean true.
    const value = kv[2] === undefined ? 'true' : parseGcfgValue(kv[2], lineNo);
    normalised.push(`${kv[1].toLowerCase()}=${JSON.stringify(value)}`);
  });
  const decoded = decode(normalised.join('\n'), { bracketedArray: false }) as Record<string, Record<string, unknown>>;
  return headers.map((h, i) => {
    const entries = new Map<string, string>();
    for (const [k, v] of Object.entries(decoded[`s${i}`] ?? {})) {
      entries.set(k, Array.isArray(v) ? String(v[v.length - 1]) : String(v));
    }
    return { name: h.name, sub: h.sub, entries };
  });
}
