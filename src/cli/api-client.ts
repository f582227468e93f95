// The CLI's side of the API: where a running Genesis is and its token (the local configuration,
// the serve marker, --url, GENESIS_URL, GENESIS_API_TOKEN), one call with the error as one line, and
// the CLI's error types. Every command that talks to Genesis goes through here.

import path from 'node:path';
import { CLI_TOKEN_FILE, readCliToken } from '../auth/api-token.ts';
import { loadConfig } from '../config/config.ts';
import { localHttpUrl } from '../config/network.ts';
import { readServeMarker } from '../config/serve-marker.ts';
import { OUTPUT_OPTIONS } from './output.ts';

/** A runtime failure (Genesis unreachable, refused, a file missing): one line, exit 1. */
export class CliError extends Error {}
/** The command was given wrong or missing arguments: one line, exit 2 (as for a bad option). */
export class UsageError extends CliError {}

/** Options of every command that talks to the API. */
export const API_CLIENT_OPTIONS = {
  url: { type: 'string' },
  ...OUTPUT_OPTIONS,
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * The end of every subcommand's catch: a CliError (or an error of one of `also`) is one line on
 * stderr and exit 1 (2 for a UsageError); anything else is a bug and propagates.
 */
export function cliFailure(err: unknown, label: string, also: Array<abstract new (...args: never[]) => Error> = []): number {
  if (err instanceof CliError || also.some((E) => err instanceof E)) {
    process.stderr.write(`${label}: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  throw err;
}

/** `tokenFile`: where the token was looked for when GENESIS_API_TOKEN is unset (for the hint on a 401). */
export type Client = { url: string; token: string | undefined; tokenFile?: string };

/** Where the API is and the token to use: --url, GENESIS_URL, else the local configuration. */
export function apiClient(configFile: string | undefined, url: string | undefined): Client {
  // Only what locating the API needs; advertise_addr is irrelevant here, so skip its detection.
  const config = loadConfig({ file: configFile, detect: () => '127.0.0.1', discover: true });
  // Found through the running server's marker: its address too (its port may not be the default).
  const marker = readServeMarker();
  const local = marker && marker.dataDir === config.data_dir ? marker.url : localHttpUrl(config.http.host, config.http.port);
  return {
    url: (url ?? process.env.GENESIS_URL ?? local).replace(/\/+$/, ''),
    token: readCliToken(config.data_dir),
    tokenFile: process.env.GENESIS_API_TOKEN ? undefined : path.join(config.data_dir, CLI_TOKEN_FILE),
  };
}

export async function call(c: Client, method: string, path: string, body?: unknown, opts: { text?: boolean } = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${c.url}/api/v1${path}`, {
      method,
      headers: {
        ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        'x-genesis-actor': 'cli',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new CliError(`cannot reach Genesis at ${c.url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 204) return undefined;
  const text = await res.text();
  if (opts.text && res.ok) return text;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = { error: 'bad_response', message: text.slice(0, 200) };
  }
  if (!res.ok) {
    const e = data as { error?: string; message?: string };
    const hint =
      res.status !== 401
        ? ''
        : c.token
          ? ' (the token was refused: GENESIS_API_TOKEN or the token file holds another Genesis\'s token)'
          : ` (no API token: ${c.tokenFile ? `${c.tokenFile} does not exist; ` : ''}set GENESIS_API_TOKEN (genesis token show prints it where Genesis runs), or run in the directory Genesis runs in, or set GENESIS_DATA_DIR to its data dir)`;
    throw new CliError(`${e.message ?? e.error ?? res.statusText}${hint}`);
  }
  return data;
}
