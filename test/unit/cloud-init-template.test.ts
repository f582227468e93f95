// cloud-init templates: placeholders are replaced inside the parsed YAML, so no value can break
// out of its scalar; `| shell` makes a value one shell word; mistakes are reported with lines.

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderYamlTemplate, shellQuote, TemplateError } from '../../src/cloud-init/template.ts';
import { problemsOf } from '../helpers/problems.ts';

const HOSTILE = [
  'plain',
  `it's "quoted"`,
  'line one\nline two\n',
  'key: value',
  '- a list item',
  '# a comment',
  '&anchor *alias',
  '---\nsecond: document\n...',
  '{ flow: mapping }',
  '[1, 2]',
  'yes',
  '0600',
  '~',
  '@at `tick` |pipe >fold %percent !tag',
  '\t tab and trailing space ',
  "'; rm -rf / #",
  '$(reboot) `reboot` ${HOME}',
  'ünïcødé ✓',
];

function render(template: string, vars: Record<string, unknown>) {
  return renderYamlTemplate(template, vars as never, { name: 'user-data', header: '#cloud-config' });
}


describe('a value in a template', () => {
  const template = [
    '#cloud-config',
    'hostname: {{ v }}',
    'quoted: "{{ v }}"',
    "single: '{{ v }}'",
    'inside: prefix-{{ v }}-suffix',
    'flow: [a, "{{ v }}", b]',
    'block: |',
    '  first line',
    '  {{ v }}',
    '  last line',
    'after: kept',
    '',
  ].join('\n');

  it.each(HOSTILE)('%j stays one scalar: the document has the same keys and the value comes back as it went in', (v) => {
    const r = render(template, { v });
    const doc = parseYaml(r.text) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['hostname', 'quoted', 'single', 'inside', 'flow', 'block', 'after']);
    expect(doc['hostname']).toBe(v);
    expect(doc['quoted']).toBe(v);
    expect(doc['single']).toBe(v);
    expect(doc['inside']).toBe(`prefix-${v}-suffix`);
    expect(doc['flow']).toEqual(['a', v, 'b']);
    expect(doc['block']).toBe(`first line\n${v}\nlast line\n`);
    expect(doc['after']).toBe('kept');
    expect(r.document).toEqual(doc);
    expect(r.text.startsWith('#cloud-config\n')).toBe(true);
  });

  it('alone and unquoted keeps its type: a list becomes a YAML list, a mapping a mapping', () => {
    const r = render('#cloud-config\nkeys: {{ keys }}\nlabels: {{ labels }}\n', { keys: ['ssh-ed25519 AAAA a@b', 'k: v'], labels: { 'a.b/c': 'd', e: '---' } });
    expect(parseYaml(r.text)).toEqual({ keys: ['ssh-ed25519 AAAA a@b', 'k: v'], labels: { 'a.b/c': 'd', e: '---' } });
  });

  it('a string that looks like a number, a boolean or null stays a string', () => {
    const r = render('#cloud-config\na: {{ a }}\nb: {{ b }}\nc: {{ c }}\n', { a: '0600', b: 'true', c: 'null' });
    expect(parseYaml(r.text)).toEqual({ a: '0600', b: 'true', c: 'null' });
  });
});

describe('| shell', () => {
  it.each(HOSTILE)('makes %j one shell word that means exactly the value (run by sh)', (v) => {
    const r = render('#cloud-config\ncmd: printf %s {{ v | shell }}\n', { v });
    const cmd = (parseYaml(r.text) as { cmd: string }).cmd;
    expect(execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })).toBe(v);
  });

  it('writes a list as one word per item', () => {
    const r = render("#cloud-config\ncmd: printf '<%s>' {{ l | shell }}\n", { l: ['a b', "c'd", ''] });
    expect(execFileSync('sh', ['-c', (parseYaml(r.text) as { cmd: string }).cmd], { encoding: 'utf8' })).toBe("<a b><c'd><>");
  });

  it('shellQuote of the empty string is an empty word', () => {
    expect(execFileSync('sh', ['-c', `printf '[%s]' ${shellQuote('')}`], { encoding: 'utf8' })).toBe('[]');
  });
});

describe('| optional', () => {
  const t = '#cloud-config\nkeys: {{ keys | optional }}\nname: {{ name | optional }}\nlist:\n  - a\n  - {{ name | optional }}\nkept: 1\n';
  it('drops its key or list item when the value is empty', () => {
    expect(parseYaml(render(t, { keys: [], name: '' }).text)).toEqual({ list: ['a'], kept: 1 });
  });
  it('is the value when there is one', () => {
    expect(parseYaml(render(t, { keys: ['k1'], name: 'n: 1' }).text)).toEqual({ keys: ['k1'], name: 'n: 1', list: ['a', 'n: 1'], kept: 1 });
  });
  it('stands alone', () => {
    expect(problemsOf(() => render('#cloud-config\na: "x {{ n | optional }}"\n', { n: '' }), TemplateError)).toEqual(['user-data line 2: {{ n | optional }} stands alone as an unquoted value']);
  });
});

describe('| json', () => {
  it.each(HOSTILE)('writes %j as a JSON string inside a block, which YAML reads back as the value', (v) => {
    const r = render('#cloud-config\ncontent: |\n  token: {{ v | json }}\n  other: x\n', { v });
    const inner = parseYaml((parseYaml(r.text) as { content: string }).content) as Record<string, unknown>;
    expect(inner).toEqual({ token: v, other: 'x' });
  });
});

describe('mistakes', () => {
  it('an unknown variable is named with its line and the nearest known one', () => {
    expect(problemsOf(() => render('#cloud-config\na: 1\nb: {{ hostnme }}\n', { hostname: 'x' }), TemplateError)).toEqual(['user-data line 3: unknown variable {{ hostnme }} (did you mean hostname?)']);
  });
  it("a name of JavaScript's object machinery is not a variable", () => {
    expect(problemsOf(() => render('#cloud-config\na: {{ toString }}\nb: {{ constructor }}\n', { hostname: 'x' }), TemplateError)).toEqual([
      'user-data line 2: unknown variable {{ toString }}',
      'user-data line 3: unknown variable {{ constructor }}',
    ]);
  });
  it('every problem at once', () => {
    const p = problemsOf(() => render('#cloud-config\na: {{ xyz }}\nb: {{ y | base64 }}\nc: {{ z\n', { y: 'v' }), TemplateError);
    expect(p).toEqual([
      'user-data line 2: unknown variable {{ xyz }}',
      'user-data line 3: unknown filter | base64 (filters: shell, json, optional)',
      'user-data line 4: a {{ or }} that is not a placeholder {{ name }} or {{ name | filter }}',
    ]);
  });
  it('a template that is not YAML says where', () => {
    expect(problemsOf(() => render('#cloud-config\na: [1, 2\nb: 3\n', {}), TemplateError)[0]).toMatch(/^user-data line \d+: /);
  });
  it('a missing #cloud-config header', () => {
    expect(problemsOf(() => render('hostname: x\n', {}), TemplateError)).toEqual(['user-data: must start with the line #cloud-config']);
  });
  it('a list inside a longer string needs a filter', () => {
    expect(problemsOf(() => render('#cloud-config\na: "keys: {{ k }}"\n', { k: ['a'] }), TemplateError)).toEqual([
      'user-data line 2: {{ k }} is a list: write it alone as an unquoted value, or as {{ k | json }} or {{ k | shell }}',
    ]);
  });
  it('a placeholder in a key or a comment', () => {
    expect(problemsOf(() => render('#cloud-config\n{{ k }}: 1\n', { k: 'a' }), TemplateError)).toEqual(['user-data line 2: a placeholder cannot stand in a key']);
    expect(problemsOf(() => render('#cloud-config\n# for {{ k }}\na: 1\n', { k: 'a' }), TemplateError)).toEqual(['user-data line 2: a placeholder in a comment is not rendered: remove it or the comment']);
  });
  it('duplicate keys', () => {
    expect(problemsOf(() => render('#cloud-config\na: 1\na: 2\n', {}), TemplateError)[0]).toMatch(/^user-data line 3: .*unique/i);
  });
});
