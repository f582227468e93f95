// Templates for cloud-init documents (user-data, network-config, vendor-data). Pure.
//
// A template is YAML with `{{ name }}` placeholders, optionally filtered: `{{ name | shell }}`
// (a POSIX shell word, single-quoted) or `{{ name | json }}`. Values never meet the YAML text:
// every placeholder is swapped for an inert marker, the template is parsed as YAML, the markers
// are replaced inside the parsed tree, and the tree is written out again by the YAML library.
// So a value with quotes, newlines, `: `, `#`, `&`, `*` or a document marker is always one
// scalar and can never add a key, end the document or start another. Shell is the one place
// values are code again, so a value written into a script goes through `| shell`.
//
// A placeholder alone as an unquoted value keeps its type (a list of SSH keys becomes a YAML
// list); inside a longer string, or quoted, it is written as text. `{{ name | optional }}`, alone
// as a value, drops its key (or list item) when the value is empty: cloud-init refuses some empty
// values (an empty ssh_authorized_keys) that a profile may well have.

import { isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { closest } from '../text/closest.ts';

export type TemplateValue = string | number | boolean | readonly string[] | Readonly<Record<string, string>>;
export type TemplateVars = Readonly<Record<string, TemplateValue>>;

/** A template that cannot be rendered: every problem, each with the template's line where it has one. */
export class TemplateError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\|\s*([A-Za-z0-9_]+)\s*)?\}\}/g;
const FILTERS = ['shell', 'json', 'optional'] as const;
type Filter = (typeof FILTERS)[number];
type Placeholder = { name: string; filter: Filter | undefined; line: number };

// Letters and digits only, so the marker is a plain YAML word in any context (block, flow, quoted).
const MARK = 'genesisPlaceholder';
const MARKER = new RegExp(`${MARK}(\\d+)x`, 'g');
const WHOLE_MARKER = new RegExp(`^${MARK}(\\d+)x$`);

/** One POSIX shell word that means exactly `s`. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function asText(v: TemplateValue, filter: Filter | undefined): string | undefined {
  if (filter === 'json') return JSON.stringify(v);
  if (filter === 'optional') return undefined;
  if (filter === 'shell') {
    if (Array.isArray(v)) return (v as readonly string[]).map(shellQuote).join(' ');
    if (typeof v === 'object') return undefined;
    return shellQuote(String(v));
  }
  return typeof v === 'object' ? undefined : String(v);
}

export type RenderedYaml = { text: string; document: unknown };

/**
 * Render `template` with `vars`. `header` is the first line the document must start with and
 * keeps (`#cloud-config` for user-data), or undefined. Throws TemplateError listing every problem.
 */
export function renderYamlTemplate(template: string, vars: TemplateVars, opts: { name: string; header?: string }): RenderedYaml {
  const problems: string[] = [];
  const where = (line: number) => `${opts.name} line ${line}`;
  if (opts.header !== undefined && !template.startsWith(opts.header + '\n') && template !== opts.header) {
    problems.push(`${opts.name}: must start with the line ${opts.header}`);
  }
  if (template.includes(MARK)) problems.push(`${opts.name}: contains the reserved word ${MARK}`);

  const placeholders: Placeholder[] = [];
  const marked = template.replace(PLACEHOLDER, (_m, name: string, filter: string | undefined, offset: number) => {
    const line = lineAt(template, offset);
    if (filter !== undefined && !(FILTERS as readonly string[]).includes(filter)) {
      problems.push(`${where(line)}: unknown filter | ${filter} (filters: ${FILTERS.join(', ')})`);
    }
    if (!Object.hasOwn(vars, name)) {
      const near = closest(name, Object.keys(vars));
      problems.push(`${where(line)}: unknown variable {{ ${name} }}${near ? ` (did you mean ${near}?)` : ''}`);
    }
    placeholders.push({ name, filter: filter as Filter | undefined, line });
    return `${MARK}${placeholders.length - 1}x`;
  });
  const leftover = /\{\{|\}\}/.exec(marked);
  if (leftover) {
    problems.push(`${where(lineAt(marked, leftover.index))}: a {{ or }} that is not a placeholder {{ name }} or {{ name | filter }}`);
    // What YAML would say about the stray braces only repeats this.
    throw new TemplateError(problems);
  }

  const lines = new LineCounter();
  const doc = parseDocument(marked, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    // The YAML library can report one mistake twice; once is enough.
    const said = doc.errors.map((e) => `${where(lines.linePos(e.pos[0]).line)}: ${e.message.split('\n')[0]}`);
    throw new TemplateError([...problems, ...new Set(said)]);
  }

  substitute(doc, placeholders, vars, problems, where);
  if (problems.length) throw new TemplateError(problems);

  // The header is a YAML comment, so the document keeps it where it was.
  return { text: doc.toString({ lineWidth: 0 }), document: doc.toJS() };
}

function isEmpty(v: TemplateValue | undefined): boolean {
  return v === undefined || v === '' || (typeof v === 'object' && Object.keys(v).length === 0);
}

function substitute(doc: Document, placeholders: Placeholder[], vars: TemplateVars, problems: string[], where: (line: number) => string): void {
  // `| optional` first: an empty one takes its key or list item with it.
  const optional = (node: unknown): Placeholder | undefined => {
    if (!isScalar(node) || typeof node.value !== 'string' || node.type !== 'PLAIN') return undefined;
    const whole = WHOLE_MARKER.exec(node.value);
    const p = whole ? placeholders[Number(whole[1])] : undefined;
    return p?.filter === 'optional' ? p : undefined;
  };
  visit(doc, {
    Pair(_k, pair) {
      const p = optional(pair.value);
      if (p && isEmpty(vars[p.name])) return visit.REMOVE;
      return undefined;
    },
    Seq(_k, seq) {
      seq.items = seq.items.filter((item) => {
        const p = optional(item);
        return !(p && isEmpty(vars[p.name]));
      });
      return undefined;
    },
  });
  visit(doc, {
    Scalar(key, node) {
      if (typeof node.value !== 'string' || !node.value.includes(MARK)) return undefined;
      if (key === 'key') {
        const first = new RegExp(`${MARK}(\\d+)x`).exec(node.value)!;
        problems.push(`${where(placeholders[Number(first[1])]!.line)}: a placeholder cannot stand in a key`);
        return undefined;
      }
      const whole = WHOLE_MARKER.exec(node.value);
      if (whole && node.type === 'PLAIN') {
        const p = placeholders[Number(whole[1])]!;
        const v = vars[p.name];
        if ((p.filter === undefined || p.filter === 'optional') && typeof v === 'object') return doc.createNode(v);
        if (p.filter === 'optional') {
          node.value = v === undefined ? '' : String(v);
          return undefined;
        }
      }
      let failed = false;
      const replaced = node.value.replace(MARKER, (_m, i: string) => {
        const p = placeholders[Number(i)]!;
        // An unknown variable is already reported; it renders as nothing meanwhile.
        if (!Object.hasOwn(vars, p.name)) return '';
        if (p.filter === 'optional') {
          failed = true;
          problems.push(`${where(p.line)}: {{ ${p.name} | optional }} stands alone as an unquoted value`);
          return '';
        }
        const text = asText(vars[p.name]!, p.filter);
        if (text === undefined) {
          failed = true;
          problems.push(
            `${where(p.line)}: {{ ${p.name} }} is a ${Array.isArray(vars[p.name]) ? 'list' : 'mapping'}: write it alone as an unquoted value, or as {{ ${p.name} | json }}${Array.isArray(vars[p.name]) ? ` or {{ ${p.name} | shell }}` : ''}`,
          );
          return '';
        }
        return text;
      });
      if (!failed) node.value = replaced;
      return undefined;
    },
  });
  // Comments are kept as they are, so a placeholder in one would leave a marker in the output.
  const inComment = (c: string | null | undefined) => (c ?? '').includes(MARK);
  let commented = inComment(doc.commentBefore) || inComment(doc.comment);
  visit(doc, {
    Node(_k, n) {
      if (inComment(n.commentBefore) || inComment(n.comment)) commented = true;
      return undefined;
    },
  });
  if (commented) problems.push(`${where(placeholders[0]?.line ?? 1)}: a placeholder in a comment is not rendered: remove it or the comment`);
}
