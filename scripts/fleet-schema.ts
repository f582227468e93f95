// Writes docs/fleet.schema.json from the table the parser validates with (src/fleet/schema.ts),
// for editors (yaml-language-server) and CI checks of a fleet repository.
// test/unit/fleet-schema.test.ts fails when the published file is not current:
//   node scripts/fleet-schema.ts

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { FLEET_SCHEMA } from '../src/fleet/schema.ts';

export function fleetSchemaText(): string {
  return `${JSON.stringify(FLEET_SCHEMA, null, 2)}\n`;
}

if (import.meta.main) writeFileSync(path.resolve(import.meta.dirname, '../docs/fleet.schema.json'), fleetSchemaText());
