// The cloud-config check Genesis runs on every rendered user-data before serving it: cloud-init's
// own JSON schema (copied with its SOURCE note), the one `cloud-init schema --config-file` uses.
// Compiled on first use: a Genesis that boots only Talos never pays for it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type AjvType from 'ajv';

const require = createRequire(import.meta.url);
// ajv is a CommonJS module whose export is `exports.default`.
const Ajv = (require('ajv') as { default: typeof AjvType.default }).default;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const schema = JSON.parse(readFileSync(new URL('./schema/schema-cloud-config-v1.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  // The schema says draft-04; its keywords are ones ajv reads the same way. Like cloud-init 22.4,
  // formats are not checked and unknown top-level keys are allowed.
  delete schema['$schema'];
  const ajv = new Ajv({ strict: false, validateSchema: false, allErrors: true, validateFormats: false, logger: false });
  compiled = ajv.compile(schema);
  return compiled;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath === '' ? 'the document' : e.instancePath.slice(1).replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') return `${at}: unknown key ${String((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'enum') return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/** The problems cloud-init's schema finds in a parsed user-data (empty: valid). */
export function cloudConfigProblems(document: unknown): string[] {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return ['user-data must be a YAML mapping'];
  const validate = validator();
  if (validate(document)) return [];
  // oneOf/anyOf branches repeat one mistake many times; the leaves say it best, once each.
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    seen.add(describe(e));
  }
  return [...seen].slice(0, 20);
}
