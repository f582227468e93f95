// Config patches' YAML in, read the way Talos reads it. Pure.
//
// Talos decodes machine configs with go-yaml (v3, then v4), whose plain numbers are Go's, not YAML
// 1.2's: underscores are dropped, then the text is read by strconv.ParseInt with base 0 (so 0644
// and 0o644 are both octal 420, 0x1F is 31, 0b101 is 5), then ParseUint, then as a float. The
// `yaml` package reads YAML 1.2's core schema, where 0644 is decimal 644 and 0b101 and 1_000 are
// text: a patch's `permissions: 0644` reached the node as 644, mode 0o1204. Here each plain scalar
// Go reads as a number gets Go's value.
//
// Where Talos's field is text, go-yaml keeps a plain scalar's text as written (a node label `01`
// is "01", `1.30` is "1.30"), which a number written back cannot be. So the texts each number and
// boolean was written as are kept too (`ScalarTexts`), for the render to put that text back in such
// a field (render.ts). Merge keys (`<<: *base`), which go-yaml resolves, are resolved here too.

import { isPair, isScalar, parseAllDocuments, visit } from 'yaml';

/**
 * Per value a patch wrote as a plain number or boolean, and per key it stood under (a list item:
 * the list's key), every text it was written as.
 */
export type ScalarTexts = Map<number | boolean, Map<string, Set<string>>>;

/** Go's strconv.ParseInt/ParseUint with base 0 (after go-yaml drops the underscores): a prefix picks the base. */
const GO_INT = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
/** go-yaml's yamlStyleFloat. */
const GO_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * The number go-yaml reads a plain scalar as, or undefined where it reads something else (text, a
 * timestamp, a word). Integers beyond 2^53 lose precision, as any number in JavaScript does.
 */
export function goNumber(text: string): number | undefined {
  const first = text.charCodeAt(0);
  // go-yaml's resolve table: only a digit, a sign or a dot can start a number.
  const digit = first >= 0x30 && first <= 0x39;
  if (!digit && text[0] !== '+' && text[0] !== '-' && text[0] !== '.') return undefined;
  if (text[0] === '.') {
    // The '.' hint: strconv.ParseFloat on the text as it is (.inf and .nan are resolved before, by word).
    return /^\.[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(text) ? Number(text) : undefined;
  }
  const plain = text.replaceAll('_', '');
  const int = GO_INT.exec(plain);
  if (int) {
    const [, sign, digits] = int as unknown as [string, string, string];
    const octal = digits.length > 1 && digits[0] === '0' && /[0-7]/.test(digits[1]!);
    const magnitude = BigInt(octal ? `0o${digits.slice(1)}` : digits);
    const value = sign === '-' ? -magnitude : magnitude;
    // ParseInt's range, then ParseUint's (which takes no sign); past both, go-yaml tries a float.
    if ((value >= -INT64_MAX - 1n && value <= INT64_MAX) || (sign === '' && value <= UINT64_MAX)) return Number(value);
  }
  return GO_FLOAT.test(plain) ? Number(plain) : undefined;
}

/** go-yaml's words for special floats (resolved by word, before any number). */
const GO_FLOAT_WORDS: Record<string, number> = {
  '.nan': NaN, '.NaN': NaN, '.NAN': NaN,
  '.inf': Infinity, '.Inf': Infinity, '.INF': Infinity,
  '+.inf': Infinity, '+.Inf': Infinity, '+.INF': Infinity,
  '-.inf': -Infinity, '-.Inf': -Infinity, '-.INF': -Infinity,
  '-0': -0, '-0.0': -0,
};

export type ParsedYaml = { values: unknown[]; texts: ScalarTexts };

/**
 * Every document of a YAML text as plain values, plain scalars read as go-yaml reads them, and the
 * texts numbers and booleans were written as. Throws the first syntax error.
 */
export function parseYamlAsTalos(text: string): ParsedYaml {
  const docs = parseAllDocuments(text, { merge: true });
  const texts: ScalarTexts = new Map();
  const values: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw doc.errors[0]!;
    visit(doc, {
      Scalar(key, node, path) {
        if (!isScalar(node) || node.type !== 'PLAIN' || node.tag !== undefined || typeof node.source !== 'string') return;
        const source = node.source;
        // A key is text in every map Talos has (go-yaml gives a string key the text as written).
        if (key === 'key') {
          node.value = source;
          return;
        }
        const word = GO_FLOAT_WORDS[source];
        const number = word ?? goNumber(source);
        if (number !== undefined) node.value = number;
        else if (typeof node.value === 'number') node.value = source; // what YAML 1.2 reads as a number and Go as text
        if (typeof node.value === 'number' || typeof node.value === 'boolean') {
          const pair = path.findLast((n) => isPair(n));
          const under = isPair(pair) && isScalar(pair.key) ? String(pair.key.value) : '';
          let byKey = texts.get(node.value);
          if (!byKey) texts.set(node.value, (byKey = new Map()));
          let seen = byKey.get(under);
          if (!seen) byKey.set(under, (seen = new Set()));
          seen.add(source);
        }
      },
    });
    values.push(doc.toJS());
  }
  return { values, texts };
}

/**
 * The text to put back where Talos reads `value` as text, under `key` (a list item: the list's
 * key), from the last patch that wrote that value under that key (under any key, if none did), as
 * later patches win: the one way it wrote it, or `ambiguous` with each way where it wrote it in
 * several (1.30 and 1.3 are both 1.3). Undefined where no patch wrote that value (it came from
 * elsewhere: a setting, the API).
 */
export function writtenAs(value: number | boolean, key: string, patches: ReadonlyArray<{ texts: ScalarTexts }>): { text: string } | { ambiguous: string[] } | undefined {
  const last = (pick: (byKey: Map<string, Set<string>>) => Set<string>): Set<string> | undefined => {
    for (let i = patches.length - 1; i >= 0; i--) {
      const byKey = patches[i]!.texts.get(value);
      const ways = byKey && pick(byKey);
      if (ways?.size) return ways;
    }
    return undefined;
  };
  const ways = last((byKey) => byKey.get(key) ?? new Set()) ?? last((byKey) => new Set([...byKey.values()].flatMap((t) => [...t])));
  if (!ways) return undefined;
  return ways.size === 1 ? { text: [...ways][0]! } : { ambiguous: [...ways] };
}
