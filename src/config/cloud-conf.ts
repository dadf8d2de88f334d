/**
 * cloud.conf: the reference driver's file format and keys, parsed once into a frozen CloudConfig.
 * Several files merge in order (a later file's key wins), like repeated `--cloud-config` flags. Unknown keys
 * and sections are kept as warnings (operators share one file with the cloud controller manager); a missing
 * required key, a bad boolean or number, or an invalid search-order is a ConfigError naming file, section, key.
 */
import { readFileSync } from 'node:fs';
import { IniSyntaxError, readIniSections } from './ini-text';
import { parseDurationMs } from './duration';
import type { BlockStorageOptions, CloudAuth, CloudConfig, MetadataOptions, MetadataSource } from './types';

/** Reported by NodeGetInfo when `node-volume-attach-limit` is unset (the reference reports 0 = unlimited). */
export const DEFAULT_NODE_VOLUME_ATTACH_LIMIT = 256;
export const DEFAULT_METADATA_REQUEST_TIMEOUT_MS = 5_000;
export const DEFAULT_METADATA_SEARCH_ORDER: readonly MetadataSource[] = ['configDrive', 'metadataService'];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** [Global] keys and the CloudAuth field each fills; legacy aliases map to the same field. */
const GLOBAL_KEYS: Record<string, keyof CloudAuth | null> = {
  'auth-url': 'authUrl',
  region: 'region',
  'os-endpoint-type': 'endpointType',
  username: 'username',
  'user-name': 'username',
  'user-id': 'userId',
  password: 'password',
  'domain-id': 'userDomainId',
  'domain-name': 'userDomainName',
  'user-domain-id': 'userDomainId',
  'user-domain-name': 'userDomainName',
  'tenant-id': 'projectId',
  'project-id': 'projectId',
  'tenant-name': 'projectName',
  'project-name': 'projectName',
  'tenant-domain-id': 'projectDomainId',
  'project-domain-id': 'projectDomainId',
  'tenant-domain-name': 'projectDomainName',
  'project-domain-name': 'projectDomainName',
  'trust-id': 'trustId',
  'trustee-id': 'trusteeId',
  'trustee-password': 'trusteePassword',
  'application-credential-id': 'applicationCredentialId',
  'application-credential-name': 'applicationCredentialName',
  'application-credential-secret': 'applicationCredentialSecret',
  token: 'token',
  'ca-file': 'caFile',
  'tls-insecure': 'tlsInsecure',
  'cert-file': 'certFile',
  'key-file': 'keyFile',
  // clouds.yaml indirection of the reference: accepted so shared files parse, but not followed.
  'use-clouds': null,
  'clouds-file': null,
  cloud: null,
};
const BLOCK_STORAGE_KEYS = [
  'node-volume-attach-limit',
  'rescan-on-resize',
  'ignore-volume-az',
  'ignore-volume-microversion',
  'bs-version',
  'trust-device-path',
];
const METADATA_KEYS = ['search-order', 'request-timeout'];
const SEARCH_SOURCES: readonly MetadataSource[] = ['configDrive', 'metadataService', 'cloudInit', 'kubernetes'];

interface RawSection {
  entries: Map<string, { value: string; file: string }>;
  files: string[];
}

export interface LoadOptions {
  /** The controller needs credentials; the node reads only [BlockStorage] and [Metadata]. */
  requireCredentials: boolean;
}

/** Parses the given files (later ones win) into a frozen CloudConfig; throws ConfigError. */
export function loadCloudConfigFiles(files: readonly string[], opts: LoadOptions): CloudConfig {
  const texts = files.map((file) => {
    try {
      return { file, text: readFileSync(file, 'utf8') };
    } catch (e) {
      throw new ConfigError(`${file}: cannot read cloud config: ${(e as Error).message}`);
    }
  });
  return parseCloudConfig(texts, opts);
}

/** Parses cloud.conf texts (each with the file name used in messages), later texts winning. */
export function parseCloudConfig(texts: ReadonlyArray<{ file: string; text: string }>, opts: LoadOptions): CloudConfig {
  const warnings: string[] = [];
  const sections = new Map<string, RawSection>();
  for (const { file, text } of texts) {
    let parsed;
    try {
      parsed = readIniSections(text);
    } catch (e) {
      if (e instanceof IniSyntaxError) throw new ConfigError(`${file}: ${e.message}`);
      throw e;
    }
    for (const s of parsed) {
      const key = sectionLabel(s.name, s.sub);
      const raw: RawSection = sections.get(key) ?? { entries: new Map(), files: [] };
      if (!raw.files.includes(file)) raw.files.push(file);
      for (const [k, value] of s.entries) raw.entries.set(k, { value, file });
      sections.set(key, raw);
    }
  }

  const clouds = new Map<string, CloudAuth>();
  for (const [label, raw] of sections) {
    const m = /^Global(?: "(.*)")?$/.exec(label);
    if (m) clouds.set(m[1] ?? '', parseGlobal(label, m[1] ?? '', raw, warnings, opts));
    else if (label !== 'BlockStorage' && label !== 'Metadata') {
      warnings.push(`${raw.files.join(', ')}: [${label}]: unknown section ignored`);
    }
  }
  if (opts.requireCredentials && clouds.size === 0) {
    const where = texts.map((t) => t.file).join(', ') || '(no --cloud-config given)';
    throw new ConfigError(`${where}: [Global]: section is required (auth-url and credentials)`);
  }
  const blockStorage = parseBlockStorage(sections.get('BlockStorage'), warnings);
  const metadata = parseMetadata(sections.get('Metadata'), warnings);
  return Object.freeze({ clouds, blockStorage, metadata, warnings: Object.freeze(warnings) });
}

function sectionLabel(name: string, sub: string | undefined): string {
  const canonical: Record<string, string> = { global: 'Global', blockstorage: 'BlockStorage', metadata: 'Metadata' };
  const n = canonical[name.toLowerCase()] ?? name;
  return sub === undefined ? n : `${n} "${sub}"`;
}

function where(raw: RawSection, label: string, key: string): string {
  const file = raw.entries.get(key)?.file ?? raw.files[raw.files.length - 1];
  return `${file}: [${label}] ${key}`;
}

function parseGlobal(label: string, name: string, raw: RawSection, warnings: string[], opts: LoadOptions): CloudAuth {
  const auth: Record<string, unknown> = { name, endpointType: 'public', tlsInsecure: false };
  for (const [key, { value }] of raw.entries) {
    // Own keys only: `constructor` or `toString` in a file must not match Object.prototype members.
    if (!Object.hasOwn(GLOBAL_KEYS, key)) {
      warnings.push(`${where(raw, label, key)}: unknown key ignored`);
      continue;
    }
    const field = GLOBAL_KEYS[key];
    if (field === null) {
      if (key === 'use-clouds' && parseBool(value, raw, label, key)) {
        warnings.push(
          `${where(raw, label, key)}: clouds.yaml lookup is not supported; put the credentials in cloud.conf`,
        );
      }
      continue;
    }
    if (field === 'tlsInsecure') auth.tlsInsecure = parseBool(value, raw, label, key);
    else if (field === 'endpointType') {
      const v = value.toLowerCase().replace(/url$/, '');
      if (!['public', 'internal', 'admin'].includes(v)) {
        throw new ConfigError(`${where(raw, label, key)}: must be public, internal or admin, not "${value}"`);
      }
      auth.endpointType = v;
    } else if (value !== '') auth[field] = value;
  }
  const a = auth as unknown as CloudAuth;
  if (opts.requireCredentials) validateCredentials(a, raw, label);
  return Object.freeze(a);
}

function validateCredentials(a: CloudAuth, raw: RawSection, label: string): void {
  const missing = (key: string, why: string) => new ConfigError(`${where(raw, label, key)}: is required ${why}`);
  if (!a.authUrl) throw missing('auth-url', 'to reach Keystone');
  if (!/^https?:\/\//.test(a.authUrl)) {
    throw new ConfigError(`${where(raw, label, 'auth-url')}: must be an http(s) URL, not "${a.authUrl}"`);
  }
  if (a.token || a.trustId) return;
  if (a.applicationCredentialId || a.applicationCredentialName) {
    if (!a.applicationCredentialSecret)
      throw missing('application-credential-secret', 'with an application credential');
    if (!a.applicationCredentialId && !a.username && !a.userId) {
      throw missing('username', 'with application-credential-name (or use application-credential-id)');
    }
    return;
  }
  if (!a.username && !a.userId) throw missing('username', '(or user-id, application-credential-id, token or trust-id)');
  if (!a.password) throw missing('password', 'for password authentication');
  if (a.username && !a.userId && !a.userDomainId && !a.userDomainName) {
    throw missing('user-domain-name', 'with username (or user-domain-id, domain-name, domain-id)');
  }
}

function parseBool(value: string, raw: RawSection, label: string, key: string): boolean {
  const v = value.toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  throw new ConfigError(`${where(raw, label, key)}: must be a boolean (true or false), not "${value}"`);
}

function parseBlockStorage(raw: RawSection | undefined, warnings: string[]): BlockStorageOptions {
  const label = 'BlockStorage';
  const get = (k: string) => raw?.entries.get(k)?.value;
  const bool = (k: string) => (raw && get(k) !== undefined ? parseBool(get(k)!, raw, label, k) : false);
  let limit: number | undefined;
  if (raw) {
    for (const k of raw.entries.keys()) {
      if (!BLOCK_STORAGE_KEYS.includes(k)) warnings.push(`${where(raw, label, k)}: unknown key ignored`);
    }
    const l = get('node-volume-attach-limit');
    if (l !== undefined) {
      if (!/^-?\d+$/.test(l)) {
        throw new ConfigError(`${where(raw, label, 'node-volume-attach-limit')}: must be an integer, not "${l}"`);
      }
      limit = Number(l);
      if (limit < 1 || limit > DEFAULT_NODE_VOLUME_ATTACH_LIMIT) {
        warnings.push(`${where(raw, label, 'node-volume-attach-limit')}: ${l} is outside 1..256; using 256`);
        limit = DEFAULT_NODE_VOLUME_ATTACH_LIMIT;
      }
    }
  }
  return Object.freeze({
    nodeVolumeAttachLimit: limit,
    rescanOnResize: bool('rescan-on-resize'),
    ignoreVolumeAz: bool('ignore-volume-az'),
    ignoreVolumeMicroversion: bool('ignore-volume-microversion'),
  });
}

function parseMetadata(raw: RawSection | undefined, warnings: string[]): MetadataOptions {
  const label = 'Metadata';
  let searchOrder = DEFAULT_METADATA_SEARCH_ORDER;
  let requestTimeoutMs = DEFAULT_METADATA_REQUEST_TIMEOUT_MS;
  if (raw) {
    for (const k of raw.entries.keys()) {
      if (!METADATA_KEYS.includes(k)) warnings.push(`${where(raw, label, k)}: unknown key ignored`);
    }
    const order = raw.entries.get('search-order')?.value;
    if (order !== undefined) searchOrder = parseSearchOrder(order, where(raw, label, 'search-order'));
    const timeout = raw.entries.get('request-timeout')?.value;
    if (timeout !== undefined) {
      const ms = parseDurationMs(timeout);
      if (ms === undefined || ms < 0) {
        throw new ConfigError(`${where(raw, label, 'request-timeout')}: must be a duration like 5s, not "${timeout}"`);
      }
      if (ms > 0) requestTimeoutMs = ms;
    }
  }
  return Object.freeze({ searchOrder: Object.freeze([...searchOrder]), requestTimeoutMs });
}

function parseSearchOrder(value: string, at: string): MetadataSource[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new ConfigError(`${at}: must list at least one of ${SEARCH_SOURCES.join(', ')}`);
  const seen = new Set<string>();
  for (const item of items) {
    if (!(SEARCH_SOURCES as readonly string[]).includes(item)) {
      throw new ConfigError(`${at}: "${item}" is not one of ${SEARCH_SOURCES.join(', ')}`);
    }
    if (seen.has(item)) throw new ConfigError(`${at}: "${item}" is listed twice`);
    seen.add(item);
  }
  return items as MetadataSource[];
}
