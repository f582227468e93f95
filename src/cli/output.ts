// How list and show commands print: `-o table` (the default, for people), `-o json` or
// `-o yaml` (the API's data, for scripts), as talosctl and kubectl do. `--json` stays as the
// short form of `-o json`.

import { stringify } from 'yaml';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The option every printing command takes. */
export const OUTPUT_OPTIONS = {
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
} as const;

export const OUTPUT_HELP = `  -o, --output <table|json|yaml>  Output format (default table); --json is -o json`;

/** `data` as the format asks, or the human text for a table. */
export function formatted(format: OutputFormat, data: unknown, human: () => string): string {
  if (format === 'json') return JSON.stringify(data, null, 2) + '\n';
  if (format === 'yaml') return stringify(data, { lineWidth: 0 });
  return human();
}

/** One record of a stream (`nodes watch`): a JSON line, or a YAML document. */
export function formattedRecord(format: OutputFormat, data: unknown, human: () => string): string {
  if (format === 'json') return JSON.stringify(data) + '\n';
  if (format === 'yaml') return '---\n' + stringify(data, { lineWidth: 0 });
  return human();
}

/**
 * The format a command's options ask for (`--json` is `-o json`). A value that is none of them, or
 * `--json` beside another `-o`, is one line on stderr and undefined: the caller exits 2.
 */
export function outputFormatOf(v: { output?: string; json?: boolean }, command: string): OutputFormat | undefined {
  const f = v.output ?? (v.json ? 'json' : 'table');
  let problem: string | undefined;
  if (v.json && f !== 'json') problem = `--json and -o ${f} disagree: give one`;
  else if (!(OUTPUT_FORMATS as readonly string[]).includes(f)) problem = `-o ${f}: the output formats are ${OUTPUT_FORMATS.join(', ')}`;
  if (!problem) return f as OutputFormat;
  process.stderr.write(`genesis ${command}: ${problem}\n`);
  return undefined;
}
