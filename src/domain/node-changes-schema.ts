// The shape of a node change (NodeChanges) as JSON Schema: the API's PUT/PATCH bodies and the
// fleet file's machine entries are checked against this one table. The rules a schema cannot say
// (host names, CIDRs, disk selectors) are in inventory/changes.ts.

import { LOCAL_BOOT_MODES, POWER_METHODS, ROLES } from './node.ts';

const nullableString = (maxLength: number) => ({ type: ['string', 'null'], maxLength }) as const;

export const NODE_CHANGES_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    role: { enum: ROLES },
    hostname: nullableString(253),
    installDisk: nullableString(256),
    diskSelector: {
      type: ['object', 'null'],
      maxProperties: 16,
      additionalProperties: { type: 'string', maxLength: 128 },
    },
    labels: { type: 'object', maxProperties: 64, additionalProperties: { type: 'string', maxLength: 63 } },
    talosVersion: nullableString(64),
    profile: { type: ['string', 'null'], maxLength: 63, pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
    localBoot: { enum: LOCAL_BOOT_MODES },
    network: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['address'],
      properties: {
        address: { type: 'string', maxLength: 64 },
        gateway: { type: 'string', maxLength: 64 },
        nameservers: { type: 'array', maxItems: 8, items: { type: 'string', maxLength: 64 } },
      },
    },
    configPatch: nullableString(32 * 1024),
    bootstrap: { type: 'boolean' },
    power: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['method'],
      properties: {
        method: { enum: POWER_METHODS },
        bmc: {
          type: 'object',
          additionalProperties: false,
          required: ['address', 'username', 'passwordFile'],
          properties: { address: { type: 'string', maxLength: 253 }, username: { type: 'string', maxLength: 64 }, passwordFile: { type: 'string', maxLength: 1024 } },
        },
      },
    },
  },
} as const;
