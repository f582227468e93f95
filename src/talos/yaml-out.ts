// Machine configs as YAML, byte for byte what `yaml`'s stringify() writes with Talos's layout
// (4-space indent, nothing folded), without building its document tree. A config is rendered for
// every per-node script; in a 1000-machine storm yaml's stringify was half of each render and a
// twelfth of the main thread (docs/performance.md). The tree walk and the indentation are done
// here; the one decision that is YAML's own, how a scalar is written (plain, quoted or as a
// block), is left to yaml itself, asked for that scalar alone in the same place, except for the
// strings, keys and numbers whose form is beyond doubt (plain words, PEM lines). What yaml would
// write in a way of its own (an object met twice, which it writes as an alias; a value that is
// not JSON's) hands the whole document to yaml's stringify, so the output never differs
// (test/unit/talos-yaml-out.test.ts compares the two over the configs and generated documents).

import { stringify } from 'yaml';

const OPTIONS = { indent: 4, lineWidth: 0 } as const;

/** Not ours to write: the document goes to yaml's stringify whole. */
class NotPlain extends Error {}

/**
 * Strings yaml writes plain as they are: a letter or '/' first, then printable ASCII, without what
 * would read as YAML syntax (': ', ' #', a space or ':' at the end), and not one of the core
 * schema's words for true, false and null. A digit first too, when the string holds a character
 * no core-schema number can (so "10.96.0.0/12" and "168h0m0s" are plain, "1.30" is quoted).
 */
const PLAIN_STRING = /^[A-Za-z/][\x20-\x7e]*$/;
const PLAIN_DIGIT_FIRST = /^[0-9][\x20-\x7e]*$/;
const NOT_PLAIN_INSIDE = /: | #|[ :]$/;
const NOT_IN_NUMBERS = /[^0-9a-fA-F.+\-ox]/;
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9._/-]*$/;
const CORE_WORDS = /^(?:true|True|TRUE|false|False|FALSE|null|Null|NULL)$/;
/**
 * A line yaml keeps as it is in a literal block (`|`): printable ASCII, no space at either end.
 * A PEM certificate or key is such lines, with or without one newline at the end.
 */
const LITERAL_LINE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Where a scalar stands: a map's value (after 'key: ') or a list's item (after '- '). */
type Place = 'value' | 'item';

/**
 * A scalar's text, or undefined for a collection. A block scalar's text runs over several lines,
 * indented as at column 0: the caller indents them to the scalar's place.
 */
function scalarText(value: unknown, place: Place): string | undefined {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') {
    if (value === '') return '""';
    if (NOT_PLAIN_INSIDE.test(value) || CORE_WORDS.test(value)) return byYaml(value, place);
    if (PLAIN_STRING.test(value) || (PLAIN_DIGIT_FIRST.test(value) && NOT_IN_NUMBERS.test(value))) return value;
    return (value.includes('\n') && literalBlock(value, place)) || byYaml(value, place);
  }
  if (typeof value === 'number') return Number.isSafeInteger(value) && !Object.is(value, -0) ? String(value) : byYaml(value, place);
  if (typeof value === 'object') return undefined;
  throw new NotPlain(); // undefined, bigint, functions, symbols: yaml has its own ways with them
}

/**
 * A string of lines yaml writes as a literal block: '|' with the newline at the end kept, '|-'
 * without one, the lines indented as yaml indents them at column 0 (4 under a key, 2 after '- ').
 * Undefined for any other string of lines (empty lines, spaces at a line's end, control
 * characters, several newlines at the end): yaml has a header or a quoting for each of those.
 */
function literalBlock(value: string, place: Place): string | undefined {
  const lines = value.split('\n');
  const clip = lines[lines.length - 1] === '';
  if (clip) lines.pop();
  if (!lines.every((line) => LITERAL_LINE.test(line))) return undefined;
  const pad = place === 'value' ? '    ' : '  ';
  return `|${clip ? '' : '-'}\n${lines.map((line) => pad + line).join('\n')}`;
}

/** A scalar as yaml writes it in that place, at column 0 (a block scalar's lines included). */
function byYaml(value: string | number, place: Place): string {
  const text = place === 'value' ? stringify({ k: value }, OPTIONS) : stringify([value], OPTIONS);
  const lead = place === 'value' ? 'k: ' : '- ';
  if (!text.startsWith(lead) || !text.endsWith('\n')) throw new NotPlain();
  return text.slice(lead.length, -1);
}

/** A scalar's continuation lines (a block scalar's) moved to column `col`; empty lines stay empty. */
function indented(text: string, col: number): string {
  if (!text.includes('\n')) return text;
  const pad = ' '.repeat(col);
  return text
    .split('\n')
    .map((line, i) => (i === 0 || line === '' ? line : pad + line))
    .join('\n');
}

function keyText(key: string): string {
  // Past 1024 characters a key is no longer an implicit key: yaml writes it as '? key'.
  if (key.length <= 1000 && PLAIN_KEY.test(key) && !CORE_WORDS.test(key)) return key;
  const text = stringify({ [key]: null }, OPTIONS);
  if (!text.endsWith(': null\n') || text.indexOf('\n') !== text.length - 1) throw new NotPlain();
  return text.slice(0, -': null\n'.length);
}

function isPlainMap(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

class Writer {
  readonly lines: string[] = [];
  /** Objects written so far: one met again is an alias in yaml's output. */
  private readonly seen = new Set<object>();

  /** Undefined for a non-empty collection, else the text of a scalar or of '{}', '[]' at column `col`. */
  private inline(value: unknown, place: Place, col: number): string | undefined {
    const scalar = scalarText(value, place);
    if (scalar !== undefined) return indented(scalar, col);
    const object = value as object;
    if (this.seen.has(object)) throw new NotPlain();
    if (!Array.isArray(object) && !isPlainMap(object)) throw new NotPlain();
    if (Array.isArray(object) ? object.length : Object.keys(object).length) return undefined;
    this.seen.add(object);
    return Array.isArray(object) ? '[]' : '{}';
  }

  /** A non-empty collection: its first line after `lead`, the others at column `col`. */
  collection(value: object, col: number, lead: string): void {
    this.seen.add(value);
    const pad = ' '.repeat(col);
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        const prefix = `${i === 0 ? lead : pad}- `;
        const text = this.inline(item, 'item', col);
        if (text !== undefined) this.lines.push(prefix + text);
        else this.collection(item as object, col + 2, prefix);
      });
      return;
    }
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      const prefix = `${first ? lead : pad}${keyText(key)}:`;
      first = false;
      const text = this.inline(item, 'value', col);
      if (text !== undefined) this.lines.push(`${prefix} ${text}`);
      else {
        this.lines.push(prefix);
        this.collection(item as object, col + 4, ' '.repeat(col + 4));
      }
    }
  }
}

/** How a number or boolean is written as a map's value. */
export function scalarYaml(value: number | boolean): string {
  return scalarText(value, 'value')!;
}

/** One document as `stringify(document, { indent: 4, lineWidth: 0 })` writes it. */
export function documentYaml(document: unknown): string {
  try {
    // A bare scalar, an empty collection or something else than a map or a list: not a config.
    if (typeof document !== 'object' || document === null) throw new NotPlain();
    if (!Array.isArray(document) && !isPlainMap(document)) throw new NotPlain();
    if (Array.isArray(document) ? document.length === 0 : Object.keys(document).length === 0) throw new NotPlain();
    const writer = new Writer();
    writer.collection(document, 0, '');
    return writer.lines.join('\n') + '\n';
  } catch (err) {
    if (err instanceof NotPlain) return stringify(document, OPTIONS);
    throw err;
  }
}
