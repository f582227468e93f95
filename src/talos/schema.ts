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
import type standaloneCodeType from 'ajv/dist/standalone/index.js';
import { closest } from '../text/closest.ts';
import { SUPPORTED_MINORS, type Contract } from './contract.ts';
import { documentLabel, isMap, pointerKeys, valueAtPointer, type Document } from './documents.ts';

// ajv and ajv-formats are CommonJS modules whose export is `exports.default`.
const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: typeof Ajv2020Type.default }).default;
const addFormats = (require('ajv-formats') as { default: typeof addFormatsType.default }).default;
const standaloneCode = (require('ajv/dist/standalone/index.js') as { default: typeof standaloneCodeType.default }).default;

export class SchemaError extends Error {}

/**
 * Document kinds whose schema definition carries another `kind` than the one Talos's decoder
 * registers (schema bugs): the document is checked against that definition under its real kind.
 */
const SCHEMA_KIND_ALIASES: Record<string, string> = { UnattendedInstallConfig: 'UnattendedInstall', KubeSpanEndpointsConfig: 'KubeSpanEndpoints' };

const WHOLE_DOCUMENT = '<whole document>';

/** A pattern matching these words in any letter case (Go's enumer types read a name in any case). */
const anyCase = (words: string[]): string =>
  `^(?:${words.map((w) => [...w].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c)).join('')).join('|')})$`;

/**
 * Fields whose published schema does not say what Talos's decoder reads (schema bugs, read from
 * Talos's types at each tag), fixed before anything is compiled, in every minor that has the
 * field: `node` replaces the field's schema (`meaning` is its errors' text), `optional` takes it
 * out of `required`, `listOfValues` makes a list of the values the schema gives as one.
 */
type SchemaFix = { def: string; property: string } & ({ node: SchemaNode & Record<string, unknown>; meaning: string } | { optional: true } | { listOfValues: true });
const SCHEMA_FIXES: SchemaFix[] = [
  // A `values:` annotation on a []string field: docgen writes the enum as the field's own schema,
  // so the list Talos's decoder reads (and Talos's own example writes) fails it. Where a later
  // schema has it right (EncryptionSpec.options from 1.13), nothing is changed.
  { def: 'block.EncryptionSpec', property: 'options', listOfValues: true }, // 1.11, 1.12
  { def: 'container.ContainerDependsOn', property: 'networks', listOfValues: true }, // 1.14
  { def: 'container.UserVolumeMount', property: 'options', listOfValues: true }, // 1.14
  // nethelpers.RoutingRuleAction is an enumer type generated with -text: go-yaml decodes it with
  // UnmarshalText, which takes the action's name in any case ("unicast", as Talos's own example
  // writes it) and refuses a number. Its docgen annotation says `type: integer` (1.13 and 1.14).
  // String or null, not `type: string`: a number there is refused, not taken as its text as a
  // string field takes it (run() below).
  {
    def: 'network.RoutingRuleConfigV1Alpha1',
    property: 'action',
    node: { type: ['string', 'null'], pattern: anyCase(['unspec', 'unicast', 'blackhole', 'unreachable', 'prohibit']) },
    meaning: 'must be one of "unicast", "blackhole", "unreachable", "prohibit", "unspec"',
  },
  // Marked schemaRequired, but Talos's validation asks for a table only when the action looks one
  // up: a blackhole rule has none (validate.ts checks that rule).
  { def: 'network.RoutingRuleConfigV1Alpha1', property: 'table', optional: true },
];

/** Applies SCHEMA_FIXES to a freshly read schema. */
function fixSchema(schema: SchemaFile): void {
  for (const fix of SCHEMA_FIXES) {
    const def = schema.$defs[fix.def];
    if (!def?.properties?.[fix.property]) continue;
    const field = def.properties[fix.property] as SchemaNode & { enum?: unknown[]; type?: unknown };
    if ('optional' in fix) def.required = def.required?.filter((p) => p !== fix.property);
    else if ('listOfValues' in fix) {
      if (field.enum && field.type === undefined) def.properties[fix.property] = { type: 'array', items: { enum: field.enum } } as SchemaNode;
    } else def.properties[fix.property] = fix.node;
  }
}

/** What an error at `instancePath` below `root` (a `#/$defs/…` pointer) means, where the field is one of SCHEMA_FIXES. */
const fixMeaning = (root: string, instancePath: string): string | undefined =>
  SCHEMA_FIXES.flatMap((f) => ('meaning' in f && root === `#/$defs/${f.def}` && instancePath === `/${f.property}` ? [f.meaning] : []))[0];

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

type SchemaFile = { $id: string; $defs: Record<string, SchemaNode & { required?: string[]; properties?: Record<string, SchemaNode> & { kind?: { enum?: string[] } } }> };
type SchemaNode = { $ref?: string; properties?: Record<string, SchemaNode>; items?: SchemaNode; patternProperties?: Record<string, SchemaNode>; additionalProperties?: SchemaNode | boolean };

/**
 * A minor's rules and schema. Validators are compiled on first use, per document kind: a
 * compiled validator for a Talos schema is megabytes of generated code, and a cluster's configs
 * use a handful of the 88 kinds v1.14 has a schema for (compiling them all cost about 50 MB of RSS
 * at the first render).
 */
type Minor = {
  rules: MinorRules;
  schema: SchemaFile;
  pointerByKind: Map<string, string>;
  validatorFor(kind: string): ValidateFunction | undefined;
  config(): ValidateFunction;
  /** A v1alpha1 path as a newer minor's check meets it here (checkDeprecatedSubtree), by its segments joined with '.'. */
  subtrees: Map<string, Subtree>;
};

/**
 * Where an older minor documents a v1alpha1 path (undefined: it does not) and what it leaves out
 * below it, relative to the path: the same for every render, so worked out once per minor.
 */
type Subtree = { pointer: string | undefined; inner: PathPattern[] };

/**
 * One ajv instance holds every minor's schema (each has its own $id), so a field a newer schema
 * leaves out can be checked against the newest older schema that still documents it. Schemas and
 * validators are compiled lazily, once per minor and pointer in use.
 *
 * ajv is only the compiler here: each validator it compiles is turned into its standalone source
 * (ajv's own code generator, the code ajv would run) and the validator run is that source,
 * loaded. The sources are kept (derived from the shipped schemas, nothing secret: 0.35 MB for
 * the 28 validators a v1.14 worker's and control plane's configs use, 1.2 MB with all four
 * minors); the ajv instance, the parsed schemas and the loaded validators are let go by
 * forgetCompiledSchemas(). Loading a kept source again takes about a millisecond where compiling
 * took 150–400 ms of the main thread, so a Genesis that let go while idle answers its next
 * machines without that pause (docs/performance.md).
 */
// inlineRefs off: each $ref becomes its own function instead of a copy inlined at every use. The
// Talos schemas refer to shared definitions hundreds of times, so inlining multiplied the
// generated code (idle RSS 220 → 165 MB without it; validation is faster too: docs/performance.md).
let ajv: InstanceType<typeof Ajv2020> | undefined;
/** The $id of each schema added to `ajv`. */
const inAjv = new Set<string>();
const minors = new Map<number, Minor>();
const byPointer = new Map<string, ValidateFunction>();
/** Each validator's standalone source, by pointer; kept when the rest is let go. */
const sourceByPointer = new Map<string, string>();

function newAjv(): InstanceType<typeof Ajv2020> {
  // code.source: the standalone generator needs each compiled function's source.
  const instance = new Ajv2020({ strict: false, allErrors: true, inlineRefs: false, code: { source: true } });
  // ajv-formats also tells the generator where the formats live (ajv-formats/dist/formats).
  addFormats(instance);
  return instance;
}

/**
 * Lets go of the ajv instance, every parsed schema and every loaded validator; the next check
 * loads what it needs again, from the kept sources where it can. For a Genesis that renders
 * nothing for a while (config-renderer.ts): about 15 MB once the start check has rendered, more
 * once machines of several kinds and minors have booted.
 */
export function forgetCompiledSchemas(): void {
  ajv = undefined;
  inAjv.clear();
  minors.clear();
  byPointer.clear();
}

/** How many minors are loaded, validators loaded and their sources kept (and the sources' length) now (for tests). */
export function compiledSchemaCount(): { minors: number; validators: number; sources: number; sourceChars: number; compiler: boolean } {
  let sourceChars = 0;
  for (const source of sourceByPointer.values()) sourceChars += source.length;
  return { minors: minors.size, validators: byPointer.size, sources: sourceByPointer.size, sourceChars, compiler: ajv !== undefined };
}

/** A standalone validator's source (CommonJS, requiring ajv's runtime and ajv-formats) as a function. */
function loadStandalone(source: string): ValidateFunction {
  const module = { exports: {} as unknown };
  // The source is ajv's own output for Genesis's shipped schemas: the code ajv.compile runs itself.
  new Function('require', 'module', 'exports', source)(require, module, module.exports);
  return module.exports as ValidateFunction;
}

function compile(schema: SchemaFile, ref: string): ValidateFunction {
  let fn = byPointer.get(ref);
  if (fn) return fn;
  let source = sourceByPointer.get(ref);
  if (source === undefined) {
    ajv ??= newAjv();
    if (!inAjv.has(schema.$id)) {
      ajv.addSchema(schema);
      inAjv.add(schema.$id);
    }
    source = standaloneCode(ajv, ajv.compile({ $ref: ref }));
    sourceByPointer.set(ref, source);
  }
  fn = loadStandalone(source);
  byPointer.set(ref, fn);
  return fn;
}

function loadMinor(minor: number): Minor {
  let v = minors.get(minor);
  if (v) return v;
  const dir = new URL(`./schemas/v1.${minor}/`, import.meta.url);
  const schema = readJson<SchemaFile>(new URL('config.schema.json', dir), `the Talos v1.${minor} schema`);
  fixSchema(schema);
  const accepted = readJson<AcceptedFields>(new URL('accepted-fields.json', dir), `the Talos v1.${minor} accepted-fields list`);

  const documents = new Map<string, PathPattern[] | null>();
  for (const [kind, paths] of Object.entries(accepted.accepted_but_refused_by_schema.documents)) {
    documents.set(kind, paths.includes(WHOLE_DOCUMENT) ? null : paths.map(parsePattern));
  }
  const rules: MinorRules = { minor, v1alpha1: accepted.accepted_but_refused_by_schema.v1alpha1.map(parsePattern), documents, kinds: new Set(Object.keys(accepted.kinds)) };

  const defBySchemaKind = new Map<string, string>();
  for (const [name, def] of Object.entries(schema.$defs)) {
    for (const kind of def.properties?.kind?.enum ?? []) defBySchemaKind.set(kind, name);
  }
  const pointerByKind = new Map<string, string>();
  for (const kind of rules.kinds) {
    const def = defBySchemaKind.get(kind) ?? defBySchemaKind.get(SCHEMA_KIND_ALIASES[kind] ?? '');
    if (def) pointerByKind.set(kind, `${schema.$id}#/$defs/${def}`);
  }
  v = {
    rules,
    schema,
    pointerByKind,
    validatorFor: (kind) => {
      const pointer = pointerByKind.get(kind);
      return pointer === undefined ? undefined : compile(schema, pointer);
    },
    config: () => compile(schema, `${schema.$id}#/$defs/v1alpha1.Config`),
    subtrees: new Map(),
  };
  minors.set(minor, v);
  return v;
}

/** Resolve a `#/$defs/...` reference to its node and pointer. */
function deref(schema: SchemaFile, node: SchemaNode, pointer: string): { node: SchemaNode; pointer: string } {
  let n = node;
  let p = pointer;
  for (let i = 0; n.$ref?.startsWith('#/$defs/') && i < 10; i++) {
    const name = n.$ref.slice('#/$defs/'.length);
    n = schema.$defs[name] ?? {};
    p = `#/$defs/${name}`;
  }
  return { node: n, pointer: p };
}

/** The schema pointer documenting a v1alpha1 path in this minor's schema, or undefined if it does not. */
function pointerFor(schema: SchemaFile, segments: string[]): string | undefined {
  let at = deref(schema, { $ref: '#/$defs/v1alpha1.Config' }, '');
  for (const seg of segments) {
    let next: SchemaNode | undefined;
    let sub: string;
    if (seg === '[]') {
      next = at.node.items;
      sub = 'items';
    } else if (seg === '*') {
      const pp = at.node.patternProperties ?? {};
      const key = Object.keys(pp)[0];
      next = key === undefined ? undefined : pp[key];
      sub = key === undefined ? '' : `patternProperties/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    } else {
      next = at.node.properties?.[seg];
      sub = `properties/${seg}`;
    }
    if (!next || typeof next !== 'object') return undefined;
    at = deref(schema, next, `${at.pointer}/${sub}`);
  }
  return `${schema.$id}${at.pointer}`;
}

export function minorRules(minor: number): MinorRules {
  return loadMinor(minor).rules;
}

/**
 * Every concrete place (keys and list indexes) in `root` that `pattern` names. A render asks this
 * for each of a minor's accepted-field patterns (51 for v1.14) several times, and most name
 * nothing: one path grows and shrinks on the way down and is copied only for a match.
 */
export function matchPattern(root: unknown, pattern: PathPattern): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  collectMatches(root, pattern.segments, 0, [], out);
  return out;
}

function collectMatches(node: unknown, segments: string[], i: number, at: Array<string | number>, out: Array<Array<string | number>>): void {
  if (i === segments.length) {
    out.push(at.slice());
    return;
  }
  const seg = segments[i]!;
  if (seg === '[]') {
    if (!Array.isArray(node)) return;
    for (let idx = 0; idx < node.length; idx++) {
      at.push(idx);
      collectMatches(node[idx], segments, i + 1, at, out);
      at.pop();
    }
  } else if (seg === '*') {
    if (!isMap(node)) return;
    for (const k of Object.keys(node)) {
      at.push(k);
      collectMatches(node[k], segments, i + 1, at, out);
      at.pop();
    }
  } else if (isMap(node) && Object.hasOwn(node, seg)) {
    at.push(seg);
    collectMatches(node[seg], segments, i + 1, at, out);
    at.pop();
  }
}

/**
 * `doc` without what `patterns` name, for a validator to read (ajv changes nothing it checks with
 * these options). Only the maps and lists on the way to a removed place are copied; the rest is
 * `doc`'s own, and `doc` itself comes back when nothing is removed. A whole copy, as before, was a
 * tenth of a render (docs/performance.md).
 */
function withoutPaths<T>(doc: T, patterns: PathPattern[]): T {
  let root: unknown = doc;
  /** The containers copied so far: each is copied once, then changed in place. */
  const copies = new Set<unknown>();
  const own = (node: unknown): Record<string | number, unknown> => {
    if (copies.has(node)) return node as Record<string | number, unknown>;
    const copy = Array.isArray(node) ? node.slice() : { ...(node as Record<string, unknown>) };
    copies.add(copy);
    return copy as Record<string | number, unknown>;
  };
  for (const p of patterns) {
    // Deepest first, so list indexes stay valid while deleting.
    for (const at of matchPattern(root, p).reverse()) {
      if (!at.length) continue;
      root = own(root);
      let parent = root as Record<string | number, unknown>;
      for (const k of at.slice(0, -1)) {
        const child = own(parent[k]);
        parent[k] = child;
        parent = child;
      }
      const last = at.at(-1)!;
      if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
      else if (isMap(parent)) delete parent[last as string];
    }
  }
  return root as T;
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

/** The node a `#/…` JSON pointer names in `schema`; an empty node if none. */
function nodeAt(schema: SchemaFile, pointer: string): SchemaNode {
  let node: unknown = schema;
  for (const key of pointerKeys(pointer)) node = (node as Record<string, unknown> | undefined)?.[key];
  return typeof node === 'object' && node !== null ? (node as SchemaNode) : {};
}

/**
 * The fields the schema documents for the object at `instancePath` below `root` (a `$defs`
 * pointer of `schema`), for a "did you mean" on an unknown one; undefined where the walk cannot
 * tell (a union of shapes, say).
 */
function fieldsAt(schema: SchemaFile, root: string, instancePath: string): string[] | undefined {
  let node = deref(schema, nodeAt(schema, root), '').node;
  for (const key of pointerKeys(instancePath)) {
    const pattern = Object.values(node.patternProperties ?? {})[0];
    const additional = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    const next = /^\d+$/.test(key) && node.items ? node.items : (node.properties?.[key] ?? pattern ?? additional);
    if (!next) return undefined;
    node = deref(schema, next, '').node;
  }
  return node.properties ? Object.keys(node.properties) : undefined;
}

/** Where a subject was checked: a schema and the pointer (`#/$defs/…`) of the subject's node in it. */
type CheckedAgainst = { schema: SchemaFile; root: string };

/** An error as a line; for an unknown field, the nearest field the schema documents there as a suggestion. */
function describe(e: ErrorObject, prefix: string, against: CheckedAgainst): string {
  const at = prefix + e.instancePath || '/';
  if (e.keyword === 'additionalProperties') {
    const field = (e.params as { additionalProperty: string }).additionalProperty;
    const meant = closest(field, fieldsAt(against.schema, against.root, e.instancePath) ?? []);
    return `${at}: unknown field ${JSON.stringify(field)}${meant ? ` (did you mean ${JSON.stringify(meant)}?)` : ''}`;
  }
  if (e.keyword === 'enum') return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
  const fixed = fixMeaning(against.root, e.instancePath);
  if (fixed) return `${at}: ${fixed}`;
  if (e.keyword === 'pattern') return `${at}: is not in the form Talos expects`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/**
 * Where a scalar stands (JSON pointers into a document) that Talos's decoder reads otherwise than
 * its value here says: a number or boolean in a field Talos reads as text (go-yaml keeps the
 * text as written), and one of YAML 1.1's words for a boolean (`yes`, `off`, …) in a boolean
 * field (go-yaml takes them there, and only there).
 */
export type ScalarPlaces = { inText: string[]; boolWords: string[] };

/** go-yaml's YAML 1.1 words for booleans, taken into a boolean field (v3 and v4 alike). */
export const BOOL_WORDS: ReadonlyMap<string, boolean> = new Map([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'].map((w) => [w, true] as const),
  ...['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'].map((w) => [w, false] as const),
]);

/** A check's result: its problems and its scalars' places. */
type Checked = { problems: string[] } & ScalarPlaces;

/**
 * Errors Talos's decoder would not raise. Go's YAML decoder reads any scalar into a string field
 * (`vm.nr_hugepages: 1024` is the string "1024", `rotate-server-certificates: true` the string
 * "true"), where the schema says `type: string`; every error at such a place (a `oneOf` of string
 * or list, say) goes with it. Nor does a YAML 1.1 word for a boolean in a boolean field. Both
 * kinds of place are returned (JSON pointers under `prefix`), for the render to settle
 * (render.ts).
 */
function run(fn: ValidateFunction, subject: unknown, prefix: string, against: CheckedAgainst): Checked {
  if (fn(subject)) return { problems: [], inText: [], boolWords: [] };
  const errors = fn.errors ?? [];
  const typed = (type: string, holds: (value: unknown) => boolean) =>
    new Set(errors.filter((e) => e.keyword === 'type' && (e.params as { type?: string }).type === type && holds(valueAtPointer(subject, e.instancePath))).map((e) => e.instancePath));
  const inText = typed('string', (v) => typeof v === 'number' || typeof v === 'boolean');
  const boolWords = typed('boolean', (v) => typeof v === 'string' && BOOL_WORDS.has(v));
  return {
    problems: [...new Set(errors.filter((e) => !inText.has(e.instancePath) && !boolWords.has(e.instancePath)).map((e) => describe(e, prefix, against)))],
    inText: [...inText].map((p) => prefix + p),
    boolWords: [...boolWords].map((p) => prefix + p),
  };
}

const pointerText = (at: Array<string | number>) => at.map((k) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

function subtreeIn(minor: Minor, segments: string[]): Subtree {
  const key = segments.join('.');
  let subtree = minor.subtrees.get(key);
  if (subtree) return subtree;
  subtree = {
    pointer: pointerFor(minor.schema, segments),
    // Relative to this subtree: what the older minor itself leaves out below it.
    inner: minor.rules.v1alpha1
      .filter((p) => p.segments.length > segments.length && segments.every((s, i) => p.segments[i] === s || p.segments[i] === '[]' || s === '[]'))
      .map((p) => ({ text: p.text, segments: p.segments.slice(segments.length) })),
  };
  minor.subtrees.set(key, subtree);
  return subtree;
}

/**
 * A v1alpha1 subtree this minor's schema leaves out (a deprecated field Talos still decodes),
 * checked against the newest older schema that documents it, recursively for what that schema in
 * turn leaves out. Talos's Go types keep every field they once had, so the older shape is the shape
 * the decoder reads. A field no supported schema documents (`persist`) is accepted as it is.
 */
function checkDeprecatedSubtree(value: unknown, segments: string[], at: Array<string | number>, below: number): Checked {
  for (let m = below - 1; m >= SUPPORTED_MINORS[0]; m--) {
    const older = loadMinor(m);
    const { pointer, inner } = subtreeIn(older, segments);
    if (!pointer) continue;
    const checked = run(compile(older.schema, pointer), withoutPaths(value as Document, inner), pointerText(at), { schema: older.schema, root: pointer.slice(older.schema.$id.length) });
    for (const p of inner) {
      for (const rel of matchPattern(value, p)) {
        const sub = rel.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], value);
        const below = checkDeprecatedSubtree(sub, [...segments, ...p.segments], [...at, ...rel], m);
        checked.problems.push(...below.problems);
        checked.inText.push(...below.inText);
        checked.boolWords.push(...below.boolWords);
      }
    }
    return checked;
  }
  return { problems: [], inText: [], boolWords: [] };
}

/** The kinds a minor's decoder registers, without loading (and keeping) that minor's schema. */
function registeredKinds(minor: number): Set<string> {
  const loaded = minors.get(minor);
  if (loaded) return loaded.rules.kinds;
  const accepted = readJson<AcceptedFields>(new URL(`./schemas/v1.${minor}/accepted-fields.json`, import.meta.url), `the Talos v1.${minor} accepted-fields list`);
  return new Set(Object.keys(accepted.kinds));
}

/** For a kind a minor does not have: the minor that brings it, or the kind most likely meant. */
function unknownKindHint(kind: string, minor: number): string {
  const since = SUPPORTED_MINORS.find((m) => m > minor && registeredKinds(m).has(kind));
  if (since !== undefined) return ` (it is new in Talos v1.${since})`;
  const kinds = loadMinor(minor).rules.kinds;
  const meant = kinds.has(`${kind}Config`) ? `${kind}Config` : closest(kind, kinds);
  return meant ? ` (did you mean ${JSON.stringify(meant)}?)` : '';
}

/** Every problem in every document, as human-readable lines; empty when Talos would accept the config. */
export function schemaProblems(contract: Contract, docs: Document[]): string[] {
  return checkDocuments(contract, docs).problems;
}

/** The documents checked: every problem, and per document (by index in `docs`) its scalars' places. */
export function checkDocuments(contract: Contract, docs: Document[]): { problems: string[]; scalars: Map<number, ScalarPlaces> } {
  const v = loadMinor(contract.minor);
  const problems: string[] = [];
  const scalars = new Map<number, ScalarPlaces>();
  const place = (index: number, found: ScalarPlaces) => {
    if (!found.inText.length && !found.boolWords.length) return;
    const at = scalars.get(index) ?? { inText: [], boolWords: [] };
    scalars.set(index, { inText: [...at.inText, ...found.inText], boolWords: [...at.boolWords, ...found.boolWords] });
  };
  let sawConfig = false;
  const seen = new Set<string>();
  for (const [index, doc] of docs.entries()) {
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
        problems.push(`${kind} document: Talos v1.${contract.minor} has no document kind ${JSON.stringify(kind)}${unknownKindHint(kind, contract.minor)}`);
        continue;
      }
      const id = `${kind}/${typeof doc['name'] === 'string' ? doc['name'] : ''}`;
      if (seen.has(id)) problems.push(`${label}: appears more than once`);
      seen.add(id);
      const accepted = v.rules.documents.get(kind);
      fn = v.validatorFor(kind);
      // A kind Talos decodes but publishes no schema for: nothing to check it against.
      if (accepted === null && !fn) continue;
      if (!fn) continue;
      if (accepted) subject = withoutPaths(doc, accepted);
      const alias = SCHEMA_KIND_ALIASES[kind];
      if (alias) subject = { ...subject, kind: alias };
    } else {
      if (sawConfig) problems.push('v1alpha1 config: appears more than once');
      sawConfig = true;
      fn = v.config();
      subject = withoutPaths(doc, v.rules.v1alpha1);
    }
    // Deduplicated: allErrors reports the same path through several schema branches.
    const root = typeof doc['kind'] === 'string' ? v.pointerByKind.get(doc['kind'])!.slice(v.schema.$id.length) : '#/$defs/v1alpha1.Config';
    const checked = run(fn, subject, '', { schema: v.schema, root });
    for (const line of checked.problems) problems.push(`${label} ${line}`);
    place(index, checked);
    if (typeof doc['kind'] !== 'string') {
      for (const p of v.rules.v1alpha1) {
        for (const at of matchPattern(doc, p)) {
          const value = at.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], doc);
          const concrete = p.segments.length === at.length ? p.segments : at.map(String);
          const deprecated = checkDeprecatedSubtree(value, concrete, at, contract.minor);
          for (const line of deprecated.problems) problems.push(`${label} ${line}`);
          place(index, deprecated);
        }
      }
    }
  }
  if (!sawConfig) problems.push('the v1alpha1 config document is missing');
  return { problems, scalars };
}
