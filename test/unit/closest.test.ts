import { describe, expect, it } from 'vitest';
import { commandsOf, optionProblem } from '../../src/cli/args.ts';
import { closest, editDistance } from '../../src/text/closest.ts';

describe('did you mean', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('josn', 'json')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests a near word, and nothing for a word that is far from every candidate', () => {
    expect(closest('lst', ['list', 'show', 'assign'])).toBe('list');
    expect(closest('GENESIS_CLUSTR_VIP', ['GENESIS_CLUSTER_VIP', 'GENESIS_HTTP_PORT'])).toBe('GENESIS_CLUSTER_VIP');
    expect(closest('x', ['list', 'show'])).toBeUndefined();
    expect(closest('bogus', ['json', 'url', 'config'])).toBeUndefined();
  });

  it('reads the commands a usage lists', () => {
    expect(commandsOf('Usage: x\n\nCommands:\n  list [--a]   things\n  show <m>     one\n         continued\n\nOptions:\n  --json  x\n')).toEqual(['list', 'show']);
  });

  it('turns parseArgs errors into one sentence', () => {
    const options = { json: { type: 'boolean' as const }, arch: { type: 'string' as const } };
    const unknown = Object.assign(new Error("Unknown option '--josn'. To specify a positional argument starting with a '-', ..."), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    expect(optionProblem(unknown, options)).toBe('unknown option --josn (did you mean --json?)');
    const missing = Object.assign(new Error("Option '--arch <value>' argument missing"), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
    expect(optionProblem(missing, options)).toBe('option --arch needs a value');
  });
});
