// `genesis fleet diff|apply|export`: the fleet file against the running Genesis. The file is
// parsed here first (its mistakes come back at once, with file:line:col), then sent as files to
// the server, which checks it again against the inventory and renders every config before it writes.

import { writeFileSync } from 'node:fs';
import { loadConfig } from '../config/config.ts';
import { FleetError, parseFleet } from '../fleet/parse.ts';
import { readFleetSource } from '../fleet/source.ts';
import type { FleetStatus } from '../fleet/reconciler.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { formatted, outputFormatOf, OUTPUT_HELP } from './output.ts';
import { API_CLIENT_OPTIONS, apiClient, call, CliError, cliFailure, UsageError } from './api-client.ts';

export const FLEET_USAGE = `Usage: genesis fleet <command> [options]

Commands:
  diff             What applying the fleet file would change, kubectl-diff style
                   (exit 0: nothing, 1: changes, 2: an error)
  apply            Apply the fleet file once, all of it or nothing (when fleet.path is set,
                   Genesis applies that file itself whenever it changes)
  export           Write the inventory and the settings in force as a fleet file
  status           What Genesis last applied, what failed, and machines the file does not list

Options:
  -f, --file <path>  The fleet file or directory (default: fleet.path, else ./fleet.yaml);
                     for export, where to write it (default: standard output)
  --prune          With diff or apply: also delete machines the file does not list
  --url <url>      Genesis HTTP address (default: from the configuration, on 127.0.0.1)
${OUTPUT_HELP}
  --config <file>  Configuration file to read the port and data dir from

The format, with examples: docs/fleet.md (its schema: docs/fleet.schema.json).

Examples:
  genesis fleet export -f fleet.yaml      a clicked-together homelab, now a file for git
  genesis fleet diff -f fleet.yaml        what would change
  genesis fleet apply -f fleet.yaml
`;

const FLEET_OPTIONS = { ...API_CLIENT_OPTIONS, file: { type: 'string', short: 'f' }, prune: { type: 'boolean' } } as const;

type Answer = { changed: boolean; diff: string; unlisted: string[]; restartNeeded: FleetStatus['restartNeeded']; commit: string | null };

/** The fleet's files, checked here: a mistake is reported before anything is sent. */
function readFleet(file: string) {
  let source;
  try {
    source = readFleetSource(file);
  } catch (err) {
    throw new CliError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const fleet = parseFleet(source);
  return { documents: source.documents.map((d) => d.name), files: fleet.files };
}

function summary(r: Answer, applied: boolean): string {
  const lines = [r.diff ? r.diff.trimEnd() : applied ? 'no changes: the inventory already matches the fleet file' : 'no changes'];
  for (const s of r.restartNeeded) lines.push(`note: ${s.key} (${s.from}) is ${JSON.stringify(s.file)}, Genesis runs with ${JSON.stringify(s.running)}: restart Genesis to apply it`);
  return `${lines.join('\n')}\n`;
}

function describeStatus(s: FleetStatus): string {
  const lines = [`source    ${s.source ?? 'none (set fleet.path, or use genesis fleet apply)'}${s.watching ? ' (watched)' : ''}`, `prune     ${s.prune ? 'on' : 'off'}`];
  if (s.applied) lines.push(`applied   ${s.applied.at}${s.applied.commit ? ` at commit ${s.applied.commit.slice(0, 12)}` : ''}: ${s.applied.changed} machine(s) changed`);
  if (s.failed) lines.push(`FAILED    ${s.failed.at} (the inventory is unchanged):`, ...s.failed.problems.slice(0, 20).map((p) => `  ${p.at}: ${p.message}`));
  if (s.unlisted.length) lines.push(`unlisted  ${s.unlisted.length} machine(s) not in the file: ${s.unlisted.join(', ')}`);
  for (const r of s.restartNeeded) lines.push(`restart   ${r.key} (${r.from}) differs from the running value: restart Genesis to apply it`);
  return `${lines.join('\n')}\n`;
}

export async function fleetCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(argv, FLEET_OPTIONS, FLEET_USAGE, 'fleet');
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  const [sub, extra] = positionals;
  if (v.help || !sub) {
    (v.help ? process.stdout : process.stderr).write(FLEET_USAGE);
    return v.help ? 0 : 2;
  }
  const format = outputFormatOf(v, 'fleet');
  if (!format) return 2;
  try {
    if (extra) throw new UsageError(`unexpected argument ${JSON.stringify(extra)} (the file goes after -f)`);
    const client = apiClient(v.config, v.url);
    const fleetFile = () => v.file ?? (loadConfig({ file: v.config, detect: () => '127.0.0.1', discover: true }).fleet.path || 'fleet.yaml');
    const body = () => ({ ...readFleet(fleetFile()), ...(v.prune ? { prune: true } : {}) });
    switch (sub) {
      case 'diff': {
        const r = (await call(client, 'POST', '/fleet/diff', body())) as Answer;
        out(formatted(format, r, () => summary(r, false)));
        return r.changed ? 1 : 0;
      }
      case 'apply': {
        const r = (await call(client, 'POST', '/fleet/apply', body())) as Answer;
        out(formatted(format, r, () => summary(r, true)));
        return 0;
      }
      case 'export': {
        const text = (await call(client, 'GET', '/fleet/export', undefined, { text: true })) as string;
        if (v.file) {
          writeFileSync(v.file, text, { flag: 'wx' });
          process.stderr.write(`wrote ${v.file}\n`);
        } else out(text);
        return 0;
      }
      case 'status': {
        const s = (await call(client, 'GET', '/fleet')) as FleetStatus;
        out(formatted(format, s, () => describeStatus(s)));
        return s.failed ? 1 : 0;
      }
      default:
        unknownCommand('genesis fleet', String(sub), FLEET_USAGE);
        return 2;
    }
  } catch (err) {
    const failure = (err as NodeJS.ErrnoException).code === 'EEXIST' ? new CliError(`${v.file} exists; export does not overwrite a file (remove it, or write to standard output)`) : err;
    const code = cliFailure(failure, `genesis fleet ${sub}`, [FleetError]);
    // kubectl diff's convention: 1 means "there are changes", so an error is 2.
    return sub === 'diff' ? 2 : code;
  }
}
