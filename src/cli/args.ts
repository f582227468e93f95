// Argument parsing shared by every subcommand: node:util's parseArgs with positionals. A bad
// option or an unknown command gets one line (with the nearest real one, if any) plus the usage
// on stderr; the caller exits 2.

import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { closest } from '../text/closest.ts';

export function parseCommand<O extends ParseArgsOptionsConfig>(argv: string[], options: O, usage: string, name: string) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (err) {
    process.stderr.write(`${name === '' ? 'genesis' : `genesis ${name}`}: ${optionProblem(err as Error & { code?: string }, options)}\n${usage}`);
    return undefined;
  }
}

/** parseArgs's error as one plain sentence, with a suggestion for a mistyped flag. */
export function optionProblem(err: Error & { code?: string }, options: ParseArgsOptionsConfig): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) {
    const meant = closest(flag.replace(/^-+/, ''), Object.keys(options));
    return `unknown option ${flag}${meant ? ` (did you mean --${meant}?)` : ''}`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
    return /does not take an argument/.test(err.message) ? `option ${flag} takes no value` : `option ${flag} needs a value`;
  }
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return 'unexpected argument';
  return err.message;
}

/** The commands a usage text lists under "Commands:" (the first word of each entry). */
export function commandsOf(usage: string): string[] {
  const block = usage.split(/^Commands:\n/m)[1]?.split(/\n\n/)[0] ?? '';
  return [...block.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!);
}

/** One line for an unknown command, with the nearest one the usage lists, then the usage. */
export function unknownCommand(prefix: string, word: string, usage: string): void {
  const meant = closest(word, commandsOf(usage));
  process.stderr.write(`${prefix}: unknown command "${word}"${meant ? ` (did you mean "${meant}"?)` : ''}\n${usage}`);
}
