// The `genesis` command line. Each subcommand is a small function; `serve` runs the appliance.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Genesis } from '../app.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createLogger } from '../log/logger.ts';

const USAGE = `Usage: genesis <command> [options]

Commands:
  serve            Run Genesis (TFTP, HTTP)

Options:
  --config <file>  Configuration file (default: ./genesis.yaml when present)
  -h, --help       Show this help
  -v, --version    Show the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(configFile: string | undefined): Promise<number> {
  const config = loadConfig({ file: configFile });
  const log = createLogger({ level: config.log_level, format: config.log_format });
  const app = new Genesis(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await app.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
      throw new ConfigError(`cannot listen: ${e.message}${e.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE; set GENESIS_TFTP_PORT)' : ''}`);
    }
    throw err;
  }
  return new Promise<number>(() => {}); // runs until a signal
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`genesis: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const [command] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(values.config);
      default:
        process.stderr.write(`genesis: unknown command "${command}"\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`genesis: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
