// Boot profiles other than Talos: a Linux kernel and initrd from assets/<profile>/<arch>/, a
// kernel command line, and the cloud-init documents Genesis serves as the NoCloud datasource.
// Parsing is pure (parseProfile); loadProfiles reads a directory of them.
//
//   profiles/<name>/profile.yaml    kind: cloud-init, kernel, initrd, cmdline, recipe, ssh keys, vars
//   profiles/<name>/user-data       the user-data template (not needed with `recipe: k3s`)
//   profiles/<name>/network-config  optional network-config template (v1 or v2)
//   profiles/<name>/vendor-data     optional vendor-data template
//
// `k3s` is built in (recipe k3s, kernel `vmlinuz`, initrd `initrd`); a directory of that name
// replaces it. `talos` is the default profile and cannot be redefined.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type AjvType from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { sampleProblems } from './documents.ts';
import { RECIPES, type LinuxProfile, type Recipe } from './linux-profile.ts';

const require = createRequire(import.meta.url);
const Ajv = (require('ajv') as { default: typeof AjvType.default }).default;

export const TALOS_PROFILE = 'talos';
export const PROFILE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A file name under assets/<profile>/<arch>/: what the asset route serves. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;
export { RECIPES, type LinuxProfile, type Recipe } from './linux-profile.ts';

export const DEFAULT_CMDLINE = ['ip=dhcp', 'ds=nocloud;s={{ datasource_url }}'];

/** The recipe's user-data template and the variables it needs, with their defaults. */
export function recipe(name: Recipe): { userData: string; vars: Record<string, string> } {
  return {
    userData: readFileSync(new URL(`./recipes/${name}-user-data.yaml`, import.meta.url), 'utf8'),
    vars: { k3s_install_url: 'https://get.k3s.io', k3s_version: '' },
  };
}

/** The profiles Genesis has without a profiles directory, by name (builtInProfiles() reads their files). */
export const BUILT_IN_PROFILES = ['k3s'] as const;

export function builtInProfiles(): LinuxProfile[] {
  const k3s = recipe('k3s');
  return [
    {
      name: 'k3s',
      kernel: 'vmlinuz',
      initrd: 'initrd',
      cmdline: DEFAULT_CMDLINE,
      userData: k3s.userData,
      networkConfig: null,
      vendorData: null,
      recipe: 'k3s',
      sshAuthorizedKeys: [],
      vars: k3s.vars,
      source: 'built-in',
    },
  ];
}

const PROFILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { const: 'cloud-init' },
    kernel: { type: 'string', pattern: FILE_NAME.source },
    initrd: { type: 'string', pattern: FILE_NAME.source },
    cmdline: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    recipe: { enum: RECIPES },
    ssh_authorized_keys: { type: 'array', maxItems: 64, items: { type: 'string', pattern: '^(ssh|ecdsa|sk-)[^\\n]{1,8192}$' } },
    vars: { type: 'object', maxProperties: 64, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }, additionalProperties: { type: 'string', maxLength: 4096 } },
  },
} as const;

let validateProfile: ReturnType<InstanceType<typeof Ajv>['compile']> | undefined;

export type ProfileFiles = { profileYaml: string; userData?: string; networkConfig?: string; vendorData?: string };

/** One profile from its files' text. Throws ProfileError with every problem, each naming its file. */
export function parseProfile(name: string, files: ProfileFiles, source: string, yamlLabel = `${source}/profile.yaml`): LinuxProfile {
  const problems: string[] = [];
  const file = yamlLabel;
  if (!PROFILE_NAME.test(name)) problems.push(`${source}: a profile name is a lower-case DNS label (letters, digits, -)`);
  if (name === TALOS_PROFILE) problems.push(`${source}: "talos" is Genesis's own profile and cannot be redefined`);
  const lines = new LineCounter();
  const doc = parseDocument(files.profileYaml, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) problems.push(`${file} line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  if (problems.length) throw new ProfileError(problems);
  const raw = doc.toJS() as unknown;
  validateProfile ??= new Ajv({ allErrors: true, strict: true }).compile(PROFILE_SCHEMA);
  if (!validateProfile(raw)) {
    for (const e of validateProfile.errors ?? []) {
      const at = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'the document';
      const extra = e.keyword === 'additionalProperties' ? ` ${String((e.params as { additionalProperty: string }).additionalProperty)}` : '';
      problems.push(`${file}: ${at}: ${e.message ?? e.keyword}${extra}`);
    }
    throw new ProfileError(problems);
  }
  const p = raw as { kernel?: string; initrd?: string; cmdline?: string[]; recipe?: Recipe; ssh_authorized_keys?: string[]; vars?: Record<string, string> };
  const fromRecipe = p.recipe ? recipe(p.recipe) : undefined;
  const userData = files.userData ?? fromRecipe?.userData;
  if (userData === undefined) problems.push(`${source}: no user-data template (a file named user-data, or recipe: k3s in profile.yaml)`);
  const cmdline = p.cmdline ?? DEFAULT_CMDLINE;
  if (!cmdline.some((a) => /\{\{\s*datasource_url\s*\}\}/.test(a))) {
    problems.push(`${file}: cmdline must carry the datasource, as ds=nocloud;s={{ datasource_url }}: without it cloud-init never finds its documents`);
  }
  if (problems.length) throw new ProfileError(problems);
  return {
    name,
    kernel: p.kernel ?? 'vmlinuz',
    initrd: p.initrd ?? 'initrd',
    cmdline,
    userData: userData!,
    networkConfig: files.networkConfig ?? null,
    vendorData: files.vendorData ?? null,
    recipe: p.recipe ?? null,
    sshAuthorizedKeys: p.ssh_authorized_keys ?? [],
    vars: { ...fromRecipe?.vars, ...p.vars },
    source,
  };
}

export class ProfileError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** The profiles Genesis knows: built-ins, replaced or joined by the directory's, and those that failed to load with why. */
export type ProfileSet = { profiles: ReadonlyMap<string, LinuxProfile>; broken: ReadonlyMap<string, string> };

const MAX_TEMPLATE_BYTES = 256 * 1024;

function readOptional(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  if (statSync(file).size > MAX_TEMPLATE_BYTES) throw new ProfileError([`${file}: larger than ${MAX_TEMPLATE_BYTES / 1024} KiB`]);
  return readFileSync(file, 'utf8');
}

/**
 * Every profile under `dir` (a missing directory is none) after the built-ins. A profile that
 * does not load is in `broken` with its problems: machines that use it wait, saying why, and
 * the others are unaffected.
 */
export function loadProfiles(dir: string): ProfileSet {
  const profiles = new Map(builtInProfiles().map((p) => [p.name, p]));
  const broken = new Map<string, string>();
  if (!dir || !existsSync(dir)) return { profiles, broken };
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const source = path.join(dir, entry.name);
    try {
      const profileYaml = readOptional(path.join(source, 'profile.yaml'));
      if (profileYaml === undefined) throw new ProfileError([`${source}: no profile.yaml`]);
      const files: ProfileFiles = { profileYaml };
      const userData = readOptional(path.join(source, 'user-data'));
      const networkConfig = readOptional(path.join(source, 'network-config'));
      const vendorData = readOptional(path.join(source, 'vendor-data'));
      if (userData !== undefined) files.userData = userData;
      if (networkConfig !== undefined) files.networkConfig = networkConfig;
      if (vendorData !== undefined) files.vendorData = vendorData;
      const profile = parseProfile(entry.name, files, source);
      const problems = sampleProblems(profile);
      if (problems.length) throw new ProfileError(problems);
      profiles.set(entry.name, profile);
      broken.delete(entry.name);
    } catch (err) {
      if (!(err instanceof ProfileError) && !(err instanceof Error && 'code' in err)) throw err;
      profiles.delete(entry.name);
      broken.set(entry.name, err.message);
    }
  }
  return { profiles, broken };
}
