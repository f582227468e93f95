// The fleet file's format as JSON Schema: one table that the parser validates with and that is
// published as docs/fleet.schema.json (scripts/fleet-schema.ts writes it; a test keeps it equal).
// Machine settings are the API's node-change schema, so a field means the same in both places;
// the cluster and talos sections are genesis.yaml's own keys, from the configuration table.

import { NODE_CHANGES_SCHEMA } from '../domain/node-changes-schema.ts';
import { FIELDS, type Field } from '../config/schema.ts';

export const FLEET_API_VERSION = 'genesis.dev/v1alpha1';
export const FLEET_KIND = 'Fleet';

/** genesis.yaml sections a fleet file may also set. Patches have their own section. */
export const FLEET_CONFIG_SECTIONS = ['cluster', 'talos', 'profiles'] as const;

/**
 * genesis.yaml keys a fleet file may set: cluster.*, talos.* and profiles.* except the patch files
 * and the profiles directory (paths of Genesis's host, not of the fleet repository).
 */
export function fleetConfigFields(): Field[] {
  return FIELDS.filter((f) => FLEET_CONFIG_SECTIONS.some((s) => f.key.startsWith(`${s}.`)) && !f.key.startsWith('talos.patches.') && f.key !== 'profiles.dir');
}

function fieldSchema(f: Field): Record<string, unknown> {
  const k = f.kind;
  const doc = { description: f.doc };
  switch (k.type) {
    case 'int':
      return { type: 'integer', minimum: k.min, maximum: k.max, ...doc };
    case 'bool':
      return { type: 'boolean', ...doc };
    case 'enum':
      return { enum: [...k.values], ...doc };
    case 'list':
      return { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], ...doc };
    default:
      return { type: 'string', ...doc };
  }
}

function sectionSchema(section: string): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const f of fleetConfigFields()) if (f.key.startsWith(`${section}.`)) properties[f.key.slice(section.length + 1)] = fieldSchema(f);
  return { type: 'object', additionalProperties: false, properties, description: `The same keys as genesis.yaml's ${section}.*; the fleet file's value wins.` };
}

/** A patch: inline (a YAML mapping, a list of documents, or YAML text) or a file relative to the fleet file. */
const PATCH_SCHEMA = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['file'],
      properties: { file: { type: 'string', minLength: 1, maxLength: 1024, description: 'A YAML patch file, relative to the fleet file.' } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['inline'],
      properties: { inline: { type: ['object', 'array', 'string'], description: 'The patch itself: a mapping, or YAML text (several documents allowed).' } },
    },
  ],
} as const;

const { configPatch: _configPatch, ...settingProperties } = NODE_CHANGES_SCHEMA.properties;

const MATCH_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  description: 'Every given field must match (facts the machine reports when it boots).',
  properties: {
    macPrefix: { type: 'string', pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){0,4}$', description: 'The first bytes of the MAC, e.g. 52:54:00.' },
    arch: { enum: ['amd64', 'arm64'] },
    manufacturer: { type: 'string', minLength: 1, maxLength: 128 },
    product: { type: 'string', minLength: 1, maxLength: 128 },
    serial: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

export const MACHINE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mac: { type: 'string', pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$', description: 'This machine (give mac or match, not both).' },
    match: MATCH_SCHEMA,
    ...settingProperties,
    patch: { ...PATCH_SCHEMA, description: "The machine's own Talos config patch, applied after the cluster and role patches." },
    reinstall: {
      type: 'boolean',
      description: 'Allow a change of role to reach an installed machine: it is reinstalled at its next PXE boot. Without it such a change is refused.',
    },
  },
} as const;

/** A cloud-init template: inline text, or a file relative to the fleet file. */
const TEMPLATE_SCHEMA = {
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', minLength: 1, maxLength: 1024, description: 'A template file, relative to the fleet file.' } } },
    { type: 'object', additionalProperties: false, required: ['inline'], properties: { inline: { type: 'string', maxLength: 262144, description: 'The template itself.' } } },
  ],
} as const;

/** A boot profile besides Talos, as a profile directory's profile.yaml says it (docs/cloud-init.md). */
const LINUX_PROFILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kernel: { type: 'string', description: 'File name under assets/<profile>/<arch>/ (default vmlinuz).' },
    initrd: { type: 'string', description: 'File name under assets/<profile>/<arch>/ (default initrd).' },
    cmdline: { type: 'array', items: { type: 'string' }, description: 'Kernel arguments, each one word; must carry ds=nocloud;s={{ datasource_url }}.' },
    recipe: { enum: ['k3s'], description: 'The built-in k3s user-data (a userData given here wins).' },
    sshAuthorizedKeys: { type: 'array', items: { type: 'string' } },
    vars: { type: 'object', additionalProperties: { type: 'string' }, description: '{{ vars.<name> }} in the templates.' },
    userData: { ...TEMPLATE_SCHEMA, description: 'The user-data template (#cloud-config).' },
    networkConfig: { ...TEMPLATE_SCHEMA, description: 'The network-config template (version 1 or 2).' },
    vendorData: { ...TEMPLATE_SCHEMA, description: 'The vendor-data template (#cloud-config).' },
  },
} as const;

export const FLEET_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://genesis.dev/schemas/fleet-v1alpha1.json',
  title: 'Genesis fleet file',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind'],
  properties: {
    apiVersion: { const: FLEET_API_VERSION },
    kind: { const: FLEET_KIND },
    cluster: sectionSchema('cluster'),
    talos: sectionSchema('talos'),
    profiles: sectionSchema('profiles'),
    linuxProfiles: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
      additionalProperties: LINUX_PROFILE_SCHEMA,
      description: 'Boot profiles besides Talos, by name (docs/cloud-init.md). They apply at once, like patches; a name also defined in profiles.dir is refused.',
    },
    patches: {
      type: 'object',
      additionalProperties: false,
      description: 'Talos config patches for every node, control planes and workers (genesis.yaml: talos.patches.*).',
      properties: { cluster: PATCH_SCHEMA, controlplane: PATCH_SCHEMA, worker: PATCH_SCHEMA },
    },
    defaults: {
      type: 'object',
      additionalProperties: false,
      description: 'Machines that no entry lists or matches.',
      properties: {
        unlisted: { enum: ['wait', 'auto-assign'], description: '`wait` (the default): they wait for an operator. `auto-assign`: the auto-assign policy gives them a role.' },
        autoAssign: {
          type: 'object',
          additionalProperties: false,
          properties: {
            mode: { enum: ['all', 'workers'], description: 'As genesis.yaml auto_assign.mode.' },
            controlplanes: { type: 'integer', minimum: 1, maximum: 99, description: 'As genesis.yaml auto_assign.controlplanes.' },
          },
        },
      },
    },
    machines: { type: 'array', maxItems: 10000, items: MACHINE_SCHEMA },
  },
} as const;
