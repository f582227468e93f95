// The published fleet schema is the one the parser checks with, and it judges as the parser does.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type Ajv2020Type from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { fleetSchemaText } from '../../scripts/fleet-schema.ts';
import { parseFleet } from '../../src/fleet/parse.ts';
import { readFleetSource } from '../../src/fleet/source.ts';

const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: typeof Ajv2020Type.default }).default;
const published = path.resolve(import.meta.dirname, '../../docs/fleet.schema.json');
const EXAMPLE = path.resolve(import.meta.dirname, '../../docs/fleet.example.yaml');

describe('docs/fleet.schema.json', () => {
  it('is current (node scripts/fleet-schema.ts)', () => {
    expect(readFileSync(published, 'utf8')).toBe(fleetSchemaText());
  });

  it('accepts the documented example and refuses an unknown field', () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(published, 'utf8')) as object);
    const example = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...example, machine: [] })).toBe(false);
  });

  it('the example passes every check of the parser, not only the schema', () => {
    const fleet = parseFleet(readFleetSource(EXAMPLE));
    expect(fleet.machines).toHaveLength(4);
    expect(fleet.settings.map((s) => s.key)).toEqual(['cluster.name', 'cluster.endpoint', 'cluster.vip', 'talos.version']);
  });
});
