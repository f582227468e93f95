// Validates rendered machine configs against Talos's published JSON schema for the node's minor
// release, document by document. A config that fails is never served.
//
// Talos's schema is generated for documentation and leaves out fields its own generator still
// writes (deprecated or hidden ones). Those are listed here, per contract, and set aside before
// validation; everything else must match the schema exactly.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type Ajv2020Type from 'ajv/dist/2020.js';
import type addFormatsType from 'ajv-formats';
import type { Contract } from './contract.ts';
import type { Document } from './generate.ts';

// ajv and ajv-formats are CommonJS modules whose export is `exports.default`.
const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: typeof Ajv2020Type.default }).default;
const addFormats = (require('ajv-formats') as { default: typeof addFormatsType.default }).default;

export class SchemaError extends Error {}

/** The schema file used for a minor: its own, or the oldest one we ship for older minors. */
function schemaMinor(minor: number): number {
  return Math.max(minor, 12);
}

/** Paths (in the v1alpha1 document) the generator writes but the schema for `minor` omits. */
function unlisted(minor: number): string[][] {
  const paths = [['persist']];
  if (minor <= 11) {
    paths.push(
      ['machine', 'features', 'rbac'],
      ['machine', 'features', 'stableHostname'],
      ['machine', 'features', 'apidCheckExtKeyUsage'],
      ['cluster', 'apiServer', 'disablePodSecurityPolicy'],
      // v1.11 has no multi-document network config: hostname, addresses and VIP live here.
      ['machine', 'network', 'hostname'],
      ['machine', 'network', 'interfaces'],
      ['machine', 'network', 'nameservers'],
    );
  }
  return paths;
}

type Validators = { byKind: Map<string, ValidateFunction>; config: ValidateFunction };
const cache = new Map<number, Validators>();

function validators(minor: number): Validators {
  const m = schemaMinor(minor);
  let v = cache.get(m);
  if (v) return v;
  const file = new URL(`./schemas/v1.${m}/config.schema.json`, import.meta.url);
  let schema: { $id: string; $defs: Record<string, { properties?: { kind?: { enum?: string[] } } }> };
  try {
    schema = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SchemaError(`cannot load the Talos v1.${m} schema (${file.pathname}): ${(err as Error).message}`);
  }
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(schema);
  const byKind = new Map<string, ValidateFunction>();
  for (const [name, def] of Object.entries(schema.$defs)) {
    for (const kind of def.properties?.kind?.enum ?? []) byKind.set(kind, ajv.compile({ $ref: `${schema.$id}#/$defs/${name}` }));
  }
  v = { byKind, config: ajv.compile({ $ref: `${schema.$id}#/$defs/v1alpha1.Config` }) };
  cache.set(m, v);
  return v;
}

function without(doc: Document, paths: string[][]): Document {
  const copy = structuredClone(doc);
  for (const p of paths) {
    let node: unknown = copy;
    for (const k of p.slice(0, -1)) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined;
    if (node && typeof node === 'object') delete (node as Record<string, unknown>)[p.at(-1)!];
  }
  return copy;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${at}: unknown field ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'enum') return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
  return `${at}: ${e.message ?? e.keyword}`;
}

export function documentLabel(doc: Document): string {
  return typeof doc['kind'] === 'string' ? `${doc['kind']} document` : 'v1alpha1 config';
}

/** Every problem in every document, as human-readable lines; empty when the config is valid. */
export function schemaProblems(contract: Contract, docs: Document[]): string[] {
  const v = validators(contract.minor);
  const problems: string[] = [];
  let sawConfig = false;
  for (const doc of docs) {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      problems.push('a document is not a mapping');
      continue;
    }
    const label = documentLabel(doc);
    let fn: ValidateFunction | undefined;
    let subject = doc;
    if (typeof doc['kind'] === 'string') {
      fn = v.byKind.get(doc['kind']);
      if (!fn) {
        problems.push(`${label}: Talos v1.${contract.minor} has no document kind ${JSON.stringify(doc['kind'])}`);
        continue;
      }
    } else {
      if (sawConfig) problems.push('v1alpha1 config: appears more than once');
      sawConfig = true;
      fn = v.config;
      subject = without(doc, unlisted(contract.minor));
    }
    if (!fn(subject)) {
      // Deduplicate: allErrors reports the same path through several schema branches.
      for (const line of new Set((fn.errors ?? []).map(describe))) problems.push(`${label} ${line}`);
    }
  }
  if (!sawConfig) problems.push('the v1alpha1 config document is missing');
  return problems;
}
