// Validates rendered machine configs the way Talos's decoder does, per minor release: against
// Talos's published JSON schema for that minor, plus the fields the decoder accepts that the
// schema leaves out (deprecated `docgen:nodoc` fields, and a few schema bugs). Both come from
// Talos's source at the minor's tag (src/talos/schemas/v1.<minor>/, see SOURCE.md). A config that
// fails is never served.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type Ajv2020Type from 'ajv/dist/2020.js';
import type addFormatsType from 'ajv-formats';
import type { Contract } from './contract.ts';
import { documentLabel, isMap, type Document } from './documents.ts';

// ajv and ajv-formats are CommonJS modules whose export is `exports.default`.
const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: typeof Ajv2020Type.default }).default;
const addFormats = (require('ajv-formats') as { default: typeof addFormatsType.default }).default;

export class SchemaError extends Error {}

/**
 * Document kinds whose schema definition carries another `kind` than the one Talos's decoder
 * registers (schema bugs): the document is checked against that definition under its real kind.
 */
const SCHEMA_KIND_ALIASES: Record<string, string> = { UnattendedInstallConfig: 'UnattendedInstall', KubeSpanEndpointsConfig: 'KubeSpanEndpoints' };

const WHOLE_DOCUMENT = '<whole document>';

/** The parts of accepted-fields.json Genesis uses. */
type AcceptedFields = {
  /** Kinds Talos's decoder registers for this minor (the schema's own kind list has bugs). */
  kinds: Record<string, unknown>;
  accepted_but_refused_by_schema: { v1alpha1: string[]; documents: Record<string, string[]> };
};

/** One accepted-field path, split: `machine.network.interfaces[].cidr` → machine, network, interfaces, [], cidr. */
type PathPattern = { text: string; segments: string[] };

export type MinorRules = {
  minor: number;
  /** v1alpha1 paths Talos accepts that the schema omits. */
  v1alpha1: PathPattern[];
  /** Per kind: sub-paths accepted beyond the schema, or null for a kind the schema has no definition for. */
  documents: Map<string, PathPattern[] | null>;
  kinds: Set<string>;
};

type Validators = { rules: MinorRules; byKind: Map<string, ValidateFunction>; config: ValidateFunction };
/** Compiled lazily, once per minor in use: compiling a schema costs memory and milliseconds. */
const cache = new Map<number, Validators>();

function parsePattern(text: string): PathPattern {
  const segments: string[] = [];
  for (const part of text.split('.')) {
    if (part.endsWith('[]')) segments.push(part.slice(0, -2), '[]');
    else segments.push(part);
  }
  // `x[]` at the end: the schema mistypes the list itself (e.g. machine.acceptedCAs), so the whole list is accepted.
  if (segments.at(-1) === '[]') segments.pop();
  return { text, segments };
}

function readJson<T>(file: URL, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new SchemaError(`cannot load ${what} (${file.pathname}): ${(err as Error).message}`);
  }
}

function validators(minor: number): Validators {
  let v = cache.get(minor);
  if (v) return v;
  const dir = new URL(`./schemas/v1.${minor}/`, import.meta.url);
  const schema = readJson<{ $id: string; $defs: Record<string, { properties?: { kind?: { enum?: string[] } } }> }>(new URL('config.schema.json', dir), `the Talos v1.${minor} schema`);
  const accepted = readJson<AcceptedFields>(new URL('accepted-fields.json', dir), `the Talos v1.${minor} accepted-fields list`);

  const documents = new Map<string, PathPattern[] | null>();
  for (const [kind, paths] of Object.entries(accepted.accepted_but_refused_by_schema.documents)) {
    documents.set(kind, paths.includes(WHOLE_DOCUMENT) ? null : paths.map(parsePattern));
  }
  const rules: MinorRules = { minor, v1alpha1: accepted.accepted_but_refused_by_schema.v1alpha1.map(parsePattern), documents, kinds: new Set(Object.keys(accepted.kinds)) };

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(schema);
  const bySchemaKind = new Map<string, ValidateFunction>();
  for (const [name, def] of Object.entries(schema.$defs)) {
    for (const kind of def.properties?.kind?.enum ?? []) bySchemaKind.set(kind, ajv.compile({ $ref: `${schema.$id}#/$defs/${name}` }));
  }
  const byKind = new Map<string, ValidateFunction>();
  for (const kind of rules.kinds) {
    const fn = bySchemaKind.get(kind) ?? bySchemaKind.get(SCHEMA_KIND_ALIASES[kind] ?? '');
    if (fn) byKind.set(kind, fn);
  }
  v = { rules, byKind, config: ajv.compile({ $ref: `${schema.$id}#/$defs/v1alpha1.Config` }) };
  cache.set(minor, v);
  return v;
}

export function minorRules(minor: number): MinorRules {
  return validators(minor).rules;
}

/** Every concrete place (keys and list indexes) in `root` that `pattern` names. */
export function matchPattern(root: unknown, pattern: PathPattern): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  const walk = (node: unknown, i: number, at: Array<string | number>) => {
    if (i === pattern.segments.length) {
      out.push(at);
      return;
    }
    const seg = pattern.segments[i]!;
    if (seg === '[]') {
      if (Array.isArray(node)) node.forEach((item, idx) => walk(item, i + 1, [...at, idx]));
    } else if (seg === '*') {
      if (isMap(node)) for (const k of Object.keys(node)) walk(node[k], i + 1, [...at, k]);
    } else if (isMap(node) && Object.hasOwn(node, seg)) {
      walk(node[seg], i + 1, [...at, seg]);
    }
  };
  walk(root, 0, []);
  return out;
}

function withoutPaths(doc: Document, patterns: PathPattern[]): Document {
  const copy = structuredClone(doc);
  for (const p of patterns) {
    // Deepest first, so list indexes stay valid while deleting.
    for (const at of matchPattern(copy, p).reverse()) {
      let parent: unknown = copy;
      for (const k of at.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[k];
      const last = at.at(-1)!;
      if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
      else if (isMap(parent)) delete parent[last as string];
    }
  }
  return copy;
}

/**
 * The accepted-but-unpublished (deprecated) v1alpha1 fields a config uses, as their accepted-field
 * patterns (`machine.network.interfaces`): for warnings, never errors.
 */
export function deprecatedFieldsUsed(contract: Contract, docs: Document[]): string[] {
  const rules = minorRules(contract.minor);
  const main = docs.find((d) => isMap(d) && typeof d['kind'] !== 'string');
  if (!main) return [];
  return rules.v1alpha1.filter((p) => matchPattern(main, p).length > 0).map((p) => p.text);
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${at}: unknown field ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'enum') return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
  if (e.keyword === 'pattern') return `${at}: is not in the form Talos expects`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/** Every problem in every document, as human-readable lines; empty when Talos would accept the config. */
export function schemaProblems(contract: Contract, docs: Document[]): string[] {
  const v = validators(contract.minor);
  const problems: string[] = [];
  let sawConfig = false;
  const seen = new Set<string>();
  for (const doc of docs) {
    if (!isMap(doc)) {
      problems.push('a document is not a mapping');
      continue;
    }
    const label = documentLabel(doc);
    let fn: ValidateFunction | undefined;
    let subject = doc;
    if (typeof doc['kind'] === 'string') {
      const kind = doc['kind'];
      if (!v.rules.kinds.has(kind)) {
        problems.push(`${kind} document: Talos v1.${contract.minor} has no document kind ${JSON.stringify(kind)}`);
        continue;
      }
      const id = `${kind}/${typeof doc['name'] === 'string' ? doc['name'] : ''}`;
      if (seen.has(id)) problems.push(`${label}: appears more than once`);
      seen.add(id);
      const accepted = v.rules.documents.get(kind);
      fn = v.byKind.get(kind);
      // A kind Talos decodes but publishes no schema for: nothing to check it against.
      if (accepted === null && !fn) continue;
      if (!fn) continue;
      if (accepted) subject = withoutPaths(doc, accepted);
      const alias = SCHEMA_KIND_ALIASES[kind];
      if (alias) subject = { ...subject, kind: alias };
    } else {
      if (sawConfig) problems.push('v1alpha1 config: appears more than once');
      sawConfig = true;
      fn = v.config;
      subject = withoutPaths(doc, v.rules.v1alpha1);
    }
    if (!fn(subject)) {
      // Deduplicate: allErrors reports the same path through several schema branches.
      for (const line of new Set((fn.errors ?? []).map(describe))) problems.push(`${label} ${line}`);
    }
  }
  if (!sawConfig) problems.push('the v1alpha1 config document is missing');
  return problems;
}

export { documentLabel } from './documents.ts';
