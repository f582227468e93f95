// Patches' YAML read as Talos's decoder reads it. The expected values are go-yaml's (v3, and v4 up
// to v4.0.0-rc.6, which Talos 1.14 uses): internal/libyaml/resolver.go drops underscores, then
// tries strconv.ParseInt(text, 0, 64), strconv.ParseUint(text, 0, 64) and its yamlStyleFloat, in
// that order, for a plain scalar starting with a digit, a sign or a dot.

import { describe, expect, it } from 'vitest';
import { goNumber, parseYamlAsTalos, writtenAs } from '../../src/talos/yaml-in.ts';

describe('goNumber', () => {
  it.each([
    ['0644', 0o644], // base 0: a leading 0 is octal, where YAML 1.2 reads 644
    ['0o644', 0o644],
    ['0755', 0o755],
    ['-0644', -0o644],
    ['0x1F', 31],
    ['0b101', 5], // text in YAML 1.2
    ['1_000', 1000], // text in YAML 1.2
    ['0_644', 0o644],
    ['42', 42],
    ['+12', 12],
    ['0', 0],
    ['00', 0],
    ['08', 8], // not octal, so not an integer: the float 8
    ['1.30', 1.3],
    ['.5', 0.5],
    ['+.5', 0.5],
    ['1e3', 1000],
    ['1.', 1],
    ['18446744073709551615', Number(2n ** 64n - 1n)], // past int64: ParseUint
  ])('%s is %s', (text, value) => {
    expect(goNumber(text)).toBe(value);
  });

  it.each(['0b102', '1.2.3', '192.0.2.1', '2001-12-14', '10.96.0.0/12', '-', '+', '.', '0x', 'v1.14.0', '1Gi', '168h'])('%s is not a number', (text) => {
    expect(goNumber(text)).toBeUndefined();
  });
});

describe('parseYamlAsTalos', () => {
  it('reads plain numbers as Go does, and keeps quoted and tagged text as text', () => {
    const { values } = parseYamlAsTalos('a: 0644\nb: "0644"\nc: !!str 0644\nd: 0b11\ne: 1_000\nf: 1.30\ng: .inf\nh: True\ni: yes\n');
    expect(values).toEqual([{ a: 420, b: '0644', c: '0644', d: 3, e: 1000, f: 1.3, g: Infinity, h: true, i: 'yes' }]);
  });

  it('keeps keys as written: every map key in a config is text', () => {
    expect(parseYamlAsTalos('0644: a\n1.30: b\ntrue: c\n').values).toEqual([{ '0644': 'a', '1.30': 'b', true: 'c' }]);
  });

  it('resolves merge keys, as go-yaml does', () => {
    expect(parseYamlAsTalos('base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n').values).toEqual([{ base: { x: 1, y: 2 }, m: { x: 1, y: 3 } }]);
  });

  it('records how each number and boolean was written, by the key it stood under', () => {
    const { texts } = parseYamlAsTalos('labels:\n  zone: 01\n  rack: 1\nargs:\n  rotate: True\nlist: [1.30]\n---\nother: 0x01\n');
    expect(texts.get(1)).toEqual(new Map([['zone', new Set(['01'])], ['rack', new Set(['1'])], ['other', new Set(['0x01'])]]));
    expect(texts.get(true)).toEqual(new Map([['rotate', new Set(['True'])]]));
    expect(texts.get(1.3)).toEqual(new Map([['list', new Set(['1.30'])]]));
  });

  it('throws the first syntax error', () => {
    expect(() => parseYamlAsTalos('a: [1, 2\n')).toThrow();
  });
});

describe('writtenAs', () => {
  const patch = (text: string) => ({ texts: parseYamlAsTalos(text).texts });

  it('the text under the same key; else under any key; else nothing to say', () => {
    const patches = [patch('zone: 01\nrack: 0x1\n')];
    expect(writtenAs(1, 'zone', patches)).toEqual({ text: '01' });
    expect(writtenAs(1, 'elsewhere', patches)).toEqual({ ambiguous: ['01', '0x1'] });
    expect(writtenAs(2, 'zone', patches)).toBeUndefined();
  });

  it('the last patch that wrote the value there wins, as its value does', () => {
    expect(writtenAs(1.3, 'release', [patch('release: 1.3\n'), patch('release: 1.30\n')])).toEqual({ text: '1.30' });
    expect(writtenAs(1.3, 'release', [patch('release: 1.30\n'), patch('other: 2\n')])).toEqual({ text: '1.30' });
  });
});
