// Configuration: embedded defaults, then genesis.yaml, then GENESIS_* environment variables.
// Anything invalid stops the start with one line naming the key, where it came from, and why.

import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { readServeMarker } from './serve-marker.ts';
import { parse as parseYaml } from 'yaml';
import { isSupportedTalosVersion, SUPPORTED_RANGE } from '../talos/contract.ts';
import { isScriptWord, SCRIPT_WORD_CHARS } from '../ipxe/word.ts';
import { closest } from '../text/closest.ts';
import { envName, FIELDS, type Field } from './schema.ts';
import { detectAdvertiseAddr } from './network.ts';

export type Config = {
  data_dir: string;
  assets_dir: string;
  advertise_addr: string;
  log_level: string;
  log_format: 'auto' | 'json' | 'pretty';
  shutdown_grace: number;
  api_token: string;
  http: { host: string; port: number; request_timeout: number; bulk_process: boolean; sendfile: boolean };
  talos: {
    version: string;
    extra_kernel_args: string;
    installer_image: string;
    schematic_id: string;
    install_disk: string;
    config_token_ttl: number;
    install_window: number;
    config_token_fetches: number;
    patches: { cluster: string; controlplane: string; worker: string };
  };
  cluster: {
    name: string;
    endpoint: string;
    vip: string;
    kubernetes_version: string;
    dns_domain: string;
    /** Comma-joined; see splitList(). */
    pod_subnets: string;
    service_subnets: string;
    cni: 'flannel' | 'none' | 'custom';
    cni_urls: string;
    allow_scheduling_on_controlplanes: boolean;
    admin_kubeconfig_days: number;
  };
  fleet: { path: string; prune: boolean };
  profiles: { dir: string; default: string; controlplane: string; worker: string };
  auto_assign: { enabled: boolean; controlplanes: number; mode: 'all' | 'workers' | 'listed'; macs: string };
  backup: { enabled: boolean; dir: string; interval_hours: number; keep_daily: number; keep_newest: number; timeout: number; secrets_passphrase_file: string };
  power: { wol_address: string; wol_port: number; ipmi_port: number; cold_start: boolean; cold_start_delay: number; cold_start_quorum_timeout: number; ipmi_cipher_suite: number };
  inventory: { event_retention: number; max_nodes: number; discovery_per_minute: number };
  ipxe: { retry_seconds: number };
  dhcp: { proxy: boolean; interface: string; port: number; pxe_port: number; lan_probe_interval: number };
  assets: { talos_url: string; factory_url: string; ipxe_arm64_url: string; ipxe_arm64_sha256: string; arches: string; fetch_on_start: boolean };
  bootstrap: {
    enabled: boolean;
    talos_api_port: number;
    poll_interval_ms: number;
    settle_ms: number;
    lease_ms: number;
    retry_after_ms: number;
    rpc_timeout_ms: number;
  };
  events: { enabled: boolean; host: string; sink_port: number; kernel_log_port: number; kernel_log_lines: number; max_connections_per_address: number; idle_timeout: number };
  tftp: {
    enabled: boolean;
    host: string;
    port: number;
    max_blksize: number;
    max_windowsize: number;
    max_transfers: number;
    max_transfers_per_client: number;
    max_transfer_seconds: number;
    timeout: number;
    max_timeout: number;
    max_retries: number;
    transfer_worker: boolean;
    native_pump: boolean;
  };
};

export class ConfigError extends Error {}

export const DEFAULT_CONFIG_FILE = 'genesis.yaml';

type Source = { value: unknown; from: string };

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function coerce(field: Field, src: Source): string | number | boolean {
  const k = field.kind;
  const fail = (why: string): never => {
    // A secret's value is never echoed, not even in an error.
    const got = k.type === 'secret' ? '' : `, got ${describe(src.value)}`;
    // `kubernetes_version: 1.30` reads as the number 1.3: say so, or "got 1.3" makes no sense to whoever wrote 1.30.
    const quote = typeof src.value === 'number' && k.type !== 'int' ? ' (YAML reads it as a number: put the value in quotes to keep it as written)' : '';
    throw new ConfigError(`invalid configuration: ${field.key} (${src.from}): ${why}${got}${quote}`);
  };
  const raw = src.value;
  switch (k.type) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < k.min || n > k.max) fail(`must be an integer from ${k.min} to ${k.max}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|false|1|0|yes|no)$/i.test(raw)) return /^(true|1|yes)$/i.test(raw);
      return fail('must be true or false');
    }
    case 'enum':
      if (typeof raw !== 'string' || !k.values.includes(raw)) fail(`must be one of ${k.values.join(', ')}`);
      return raw as string;
    case 'host':
      if (typeof raw !== 'string' || (isIP(raw) === 0 && raw !== 'localhost')) fail('must be an IP address');
      return raw as string;
    case 'advertise':
      if (typeof raw !== 'string' || (raw !== 'auto' && isIP(raw) !== 4)) fail('must be an IPv4 address or "auto"');
      return raw as string;
    case 'secret':
      if (typeof raw !== 'string') fail('must be a string');
      if (raw !== '' && (raw as string).length < 16) fail('must be at least 16 characters');
      return raw as string;
    case 'talos-version':
      if (typeof raw !== 'string' || !/^v\d{1,3}\.\d{1,3}\.\d{1,3}(-[0-9A-Za-z.]{1,40})?$/.test(raw)) fail('must be a Talos release tag such as v1.14.0');
      if (!isSupportedTalosVersion(raw as string)) fail(`is a Talos release Genesis cannot write configs for (it supports ${SUPPORTED_RANGE})`);
      return raw as string;
    case 'kernel-args':
      // Each word goes onto the iPXE kernel line: the same safe charset the script renderer enforces.
      if (typeof raw !== 'string' || !raw.trim().split(/ +/).every((w) => w === '' || isScriptWord(w))) {
        fail(`must be space-separated kernel arguments of ${SCRIPT_WORD_CHARS}`);
      }
      return (raw as string).trim();
    case 'pattern': {
      if (typeof raw !== 'string') fail(`must be ${k.hint}`);
      const v = (raw as string).trim();
      if (v === '' && k.optional) return '';
      if (!k.re.test(v)) fail(`must be ${k.hint}`);
      return v;
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
      if (!items || items.some((i) => typeof i !== 'string')) fail(`must be ${k.hint}, comma-separated or a YAML list`);
      const clean = (items as string[]).map((i) => i.trim()).filter((i) => i !== '');
      if (clean.length === 0 && !k.optional) fail(`must list at least one: ${k.hint}`);
      for (const i of clean) if (!k.re.test(i)) fail(`must be ${k.hint}; ${JSON.stringify(i)} is not`);
      return clean.join(',');
    }
    case 'optional-path':
      if (typeof raw !== 'string') fail('must be a file path');
      return (raw as string).trim();
    case 'path':
    case 'string':
      if (typeof raw !== 'string' || raw === '') fail('must be a non-empty string');
      return raw as string;
  }
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>, file: string): void {
  if (obj === null || obj === undefined) return;
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    throw new ConfigError(`invalid configuration: ${prefix || '(top level)'} (${file}): must be a mapping`);
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const isSection = FIELDS.some((f) => f.key.startsWith(key + '.'));
    if (isSection) flatten(v, key, out, file);
    else out.set(key, v);
  }
}

export type LoadOptions = {
  /** Explicit --config path: must exist. Without it, ./genesis.yaml is read when present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves advertise_addr "auto"; injectable for tests. */
  detect?: () => string | undefined;
  /**
   * For the CLI: when no setting names a data dir and ./data does not exist, use the one the
   * last `genesis serve` of this user recorded (serve-marker.ts), so a command run from another
   * directory finds the token and the inventory.
   */
  discover?: boolean;
  /**
   * Values that win over the file and the environment: the fleet file's cluster.* and talos.*
   * (src/fleet), each with where it was set, so an invalid one is reported at its line.
   */
  overlay?: Array<{ key: string; value: unknown; from: string }>;
};

/** One setting's value checked and converted as the loader would (ConfigError naming `from` when invalid). */
export function settingValue(key: string, value: unknown, from: string): string | number | boolean {
  const field = FIELDS.find((f) => f.key === key);
  if (!field) throw new ConfigError(`invalid configuration: ${key} (${from}): unknown key`);
  return coerce(field, { value, from });
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const sources = new Map<string, Source>();

  const file = opts.file ?? (existsSync(path.join(cwd, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : undefined);
  if (file) {
    const full = path.resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(full, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new ConfigError(`configuration file ${full} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const flat = new Map<string, unknown>();
    flatten(doc, '', flat, file);
    for (const [key, value] of flat) {
      if (!FIELDS.some((f) => f.key === key)) throw new ConfigError(`invalid configuration: ${key} (${file}): unknown key`);
      sources.set(key, { value, from: file });
    }
  }
  for (const field of FIELDS) {
    const name = envName(field.key);
    const v = env[name];
    if (v !== undefined && v !== '') sources.set(field.key, { value: v, from: name });
  }
  for (const o of opts.overlay ?? []) {
    if (!FIELDS.some((f) => f.key === o.key)) throw new ConfigError(`invalid configuration: ${o.key} (${o.from}): unknown key`);
    sources.set(o.key, { value: o.value, from: o.from });
  }

  const flat: Record<string, string | number | boolean> = {};
  for (const field of FIELDS) {
    const src = sources.get(field.key) ?? { value: field.default, from: 'default' };
    flat[field.key] = coerce(field, src);
  }
  for (const key of ['data_dir', 'assets_dir']) flat[key] = path.resolve(cwd, flat[key] as string);
  if (opts.discover && !sources.has('data_dir') && !existsSync(flat['data_dir'] as string)) {
    const marker = readServeMarker(env);
    if (marker && existsSync(marker.dataDir)) {
      flat['data_dir'] = marker.dataDir;
      if (!sources.has('assets_dir')) flat['assets_dir'] = marker.assetsDir;
    }
  }
  for (const f of FIELDS) if (f.kind.type === 'optional-path' && flat[f.key] !== '') flat[f.key] = path.resolve(cwd, flat[f.key] as string);
  if (flat['cluster.cni'] === 'custom' && flat['cluster.cni_urls'] === '') {
    throw new ConfigError('invalid configuration: cluster.cni_urls: cluster.cni is "custom" but no manifest URLs are given');
  }

  if (flat['advertise_addr'] === 'auto') {
    const detected = (opts.detect ?? detectAdvertiseAddr)();
    if (!detected) {
      throw new ConfigError(
        `invalid configuration: advertise_addr: "auto" found no IPv4 address on the default-route interface; set ${envName('advertise_addr')}`,
      );
    }
    flat['advertise_addr'] = detected;
  }

  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = config;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = value;
  }
  return config as Config;
}

/** A comma-joined list value (cluster.pod_subnets, …) as an array. */
export function splitList(v: string): string[] {
  return v === '' ? [] : v.split(',');
}

/** GENESIS_* variables that are not settings but are read elsewhere (CLI, CI, tests, crash points). */
const OTHER_GENESIS_VARS = new Set(['GENESIS_API_TOKEN', 'GENESIS_URL', 'GENESIS_FAILPOINT', 'GENESIS_NODE_PREFIX', 'GENESIS_FUZZ_COUNT', 'GENESIS_FUZZ_SEED']);

/**
 * GENESIS_* variables that name no setting, each with the setting it was most likely meant to be
 * (a typo such as GENESIS_CLUSTR_VIP would otherwise be ignored without a word).
 */
export function unknownEnvSettings(env: NodeJS.ProcessEnv): Array<{ name: string; suggestion?: string }> {
  const known = FIELDS.map((f) => envName(f.key));
  const out: Array<{ name: string; suggestion?: string }> = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('GENESIS_') || OTHER_GENESIS_VARS.has(name) || known.includes(name)) continue;
    out.push({ name, suggestion: closest(name, known) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
