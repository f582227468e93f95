// Argument parsing shared by every subcommand: node:util's parseArgs with positionals, and on a
// bad option one line plus the usage on stderr (the caller exits 2).

import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

export function parseCommand<O extends ParseArgsOptionsConfig>(argv: string[], options: O, usage: string, name: string) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (err) {
    process.stderr.write(`genesis ${name}: ${(err as Error).message}\n${usage}`);
    return undefined;
  }
}
