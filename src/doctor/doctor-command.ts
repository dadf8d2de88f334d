/**
 * `cinder-csi-plugin doctor`: parses its flags, reads cloud.conf, runs the cloud checks and the node checks
 * and prints one line per check (or a JSON array with --json). Exit code 1 when any check failed, 0 otherwise;
 * usage errors are the CLI's (exit 2). Secret values from cloud.conf are blanked from everything printed.
 */
import {
  ConfigError,
  DEFAULT_METADATA_REQUEST_TIMEOUT_MS,
  DEFAULT_METADATA_SEARCH_ORDER,
  loadCloudConfigFiles,
} from '../config/cloud-conf';
import { UsageError } from '../config/flags';
import type { CloudConfig, MetadataOptions } from '../config/types';
import { messageOf } from '../errors';
import { type MetadataApi, MetadataClient } from '../openstack/metadata';
import { type CheckResult, formatJson, formatText, guarded, result, SecretFilter } from './check';
import { checkCloud, checkInstance, type DoctorCloud, doctorCloud, type DoctorHttpOptions } from './cloud-checks';
import {
  checkDevices,
  checkKubeletPropagation,
  checkMetadata,
  checkSupervisorSocket,
  checkTools,
  type NodeCheckDeps,
} from './node-checks';

/** The doctor's flags; names match the plugin's where they mean the same thing. */
export interface DoctorOptions {
  cloudConfig: string[];
  cloudNames: string[];
  nodeId?: string;
  metadataUrl?: string;
  byIdDir: string;
  kubeletDir: string;
  supervisorSocket?: string;
  json: boolean;
  skipNode: boolean;
  skipCloud: boolean;
}

/** Stand-ins for tests: HTTP tunables, a metadata source, and the node's machine paths. */
export interface DoctorDeps extends NodeCheckDeps {
  http?: DoctorHttpOptions;
  metadata?: MetadataApi;
}

const LIST_FLAGS = new Set(['cloud-config', 'cloud-name']);
const VALUE_FLAGS = new Set(['node-id', 'metadata-url', 'by-id-dir', 'kubelet-dir', 'supervisor-socket']);
const BOOL_FLAGS = new Set(['json', 'skip-node', 'skip-cloud']);

/** Parses `doctor` flags (`--name=value` or `--name value`, bare booleans). Throws UsageError naming the flag. */
export function parseDoctorArgs(argv: readonly string[]): DoctorOptions {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z][a-z-]*)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) throw new UsageError(`doctor: unexpected argument "${argv[i]}" (flags look like --name=value)`);
    const [, name, inline] = m;
    let value = inline;
    if (BOOL_FLAGS.has(name)) value = value ?? 'true';
    else if (!LIST_FLAGS.has(name) && !VALUE_FLAGS.has(name)) throw new UsageError(`doctor: unknown flag --${name}`);
    else if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`doctor: flag --${name} needs a value`);
      value = argv[++i];
    }
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  const last = (n: string) => values.get(n)?.at(-1);
  const bool = (n: string) => {
    const v = last(n);
    if (v === undefined || v === 'false') return false;
    if (v === 'true') return true;
    throw new UsageError(`doctor: flag --${n}: "${v}" is not true or false`);
  };
  return {
    cloudConfig: values.get('cloud-config') ?? [],
    cloudNames: [...new Set(values.get('cloud-name') ?? [''])],
    nodeId: last('node-id') || undefined,
    metadataUrl: last('metadata-url') || undefined,
    byIdDir: last('by-id-dir') ?? '/dev/disk/by-id',
    kubeletDir: last('kubelet-dir') ?? '/var/lib/kubelet',
    supervisorSocket: last('supervisor-socket') || undefined,
    json: bool('json'),
    skipNode: bool('skip-node'),
    skipCloud: bool('skip-cloud'),
  };
}

/** Runs every check the options ask for, in report order. Never throws for a failed check. */
export async function runDoctor(opts: DoctorOptions, deps: DoctorDeps = {}): Promise<CheckResult[]> {
  const secrets = new SecretFilter();
  const out: CheckResult[] = [];
  const config = readConfig(opts, out, secrets);

  const clouds: DoctorCloud[] = [];
  if (!opts.skipCloud && config) {
    for (const name of opts.cloudNames) {
      const auth = config.clouds.get(name);
      if (!auth) continue;
      out.push(
        ...(await guarded(
          'cloud.keystone',
          "check the cloud's section in cloud.conf",
          async () => {
            const c = doctorCloud(auth, deps.http);
            const { results, usable } = await checkCloud(c);
            if (usable) clouds.push(c);
            return results;
          },
          name,
        )),
      );
    }
  }

  let nodeId = opts.nodeId;
  let from = '--node-id';
  if (!opts.skipNode) {
    const metadata =
      deps.metadata ?? new MetadataClient({ options: metadataOptions(config), metadataUrl: opts.metadataUrl });
    const m = await checkMetadata(metadata, opts.nodeId);
    out.push(m.result);
    nodeId = m.nodeId;
    from = m.from ?? from;
    out.push(...(await checkTools(deps)));
    out.push(...(await checkDevices(opts.byIdDir, deps)));
    out.push(
      ...(await guarded('node.kubelet-dir', 'check that /proc/self/mountinfo is readable', async () => [
        await checkKubeletPropagation(opts.kubeletDir, deps),
      ])),
    );
    if (opts.supervisorSocket) out.push(await checkSupervisorSocket(opts.supervisorSocket));
  }
  if (clouds.length && nodeId) out.push(await checkInstance(clouds, nodeId, from));
  return out.map((r) => secrets.scrubResult(r));
}

function readConfig(opts: DoctorOptions, out: CheckResult[], secrets: SecretFilter): CloudConfig | undefined {
  if (opts.cloudConfig.length === 0) {
    if (!opts.skipCloud)
      out.push(
        result(
          'config',
          'fail',
          'no --cloud-config given',
          'pass the cloud.conf the plugin uses, e.g. --cloud-config=/etc/config/cloud.conf (or --skip-cloud)',
        ),
      );
    return undefined;
  }
  let config: CloudConfig;
  try {
    config = loadCloudConfigFiles(opts.cloudConfig, { requireCredentials: !opts.skipCloud });
  } catch (e) {
    const hint = e instanceof ConfigError ? 'fix the file and key named above' : 'check the file paths and permissions';
    out.push(result('config', 'fail', messageOf(e), hint));
    return undefined;
  }
  for (const auth of config.clouds.values()) {
    secrets.add(auth.password, auth.trusteePassword, auth.applicationCredentialSecret, auth.token);
  }
  const sections =
    [...config.clouds.keys()].map((n) => (n ? `[Global "${n}"]` : '[Global]')).join(', ') || 'no [Global] section';
  const what = `${opts.cloudConfig.join(', ')} parsed: ${sections}`;
  out.push(
    config.warnings.length
      ? result(
          'config',
          'warn',
          `${what}; ${config.warnings.join('; ')}`,
          'remove or correct the keys named; the plugin ignores them',
        )
      : result('config', 'pass', what),
  );
  const absent = opts.skipCloud ? [] : opts.cloudNames.filter((n) => !config.clouds.has(n));
  for (const n of absent) {
    out.push(
      result(
        'config.cloud-name',
        'fail',
        `--cloud-name "${n}" has no ${n ? `[Global "${n}"]` : '[Global]'} section`,
        'add the section or drop the --cloud-name',
        n,
      ),
    );
  }
  return config;
}

function metadataOptions(config: CloudConfig | undefined): MetadataOptions {
  return (
    config?.metadata ?? {
      searchOrder: DEFAULT_METADATA_SEARCH_ORDER,
      requestTimeoutMs: DEFAULT_METADATA_REQUEST_TIMEOUT_MS,
    }
  );
}

/** The `doctor` subcommand: prints the report to stdout; resolves with 1 when any check failed, else 0. */
export async function runDoctorCommand(
  argv: readonly string[],
  io: { stdout: (text: string) => void } = { stdout: (t) => process.stdout.write(t) },
  deps: DoctorDeps = {},
): Promise<number> {
  const opts = parseDoctorArgs(argv);
  const results = await runDoctor(opts, deps);
  io.stdout(opts.json ? formatJson(results) : formatText(results));
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
