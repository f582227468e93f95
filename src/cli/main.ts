// The `genesis` command line. Each subcommand is a small function; `serve` runs the appliance.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Genesis } from '../app.ts';
import { readCliToken } from '../auth/api-token.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { loadConfigWithFleet } from './fleet-config.ts';
import { localHttpUrl } from '../config/network.ts';
import { writeServeMarker, type ServeMarker } from '../config/serve-marker.ts';
import { InventoryError } from '../inventory/errors.ts';
import { createLogger, flushLog } from '../logging/logger.ts';
import { optionProblem, parseCommand, unknownCommand } from './args.ts';
import { bashCompletion, commandTable, zshCompletion } from './completion.ts';
import { ASSETS_USAGE, assetsCommand } from './assets.ts';
import { DOCTOR_USAGE, doctorCommand } from './doctor.ts';
import { CLUSTER_USAGE, clusterCommand } from './cluster.ts';
import { NODES_USAGE, nodesCommand } from './nodes.ts';
import { FLEET_USAGE, fleetCommand } from './fleet.ts';
import { BACKUP_USAGE, backupCommand } from './backup.ts';
import { CONFIG_USAGE, configCommand, KUBECONFIG_USAGE, kubeconfigCommand, SECRETS_USAGE, secretsCommand, TALOSCONFIG_USAGE, talosconfigCommand } from './talos.ts';

const MAIN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export const USAGE = `Usage: genesis <command> [options]

Commands:
  serve            Run Genesis (TFTP, HTTP, inventory)
  nodes            List and assign machines (genesis nodes --help)
  fleet            The fleet file: diff, apply, export (genesis fleet --help)
  secrets          Export or import the cluster secrets bundle (genesis secrets --help)
  config render    Print the machine config a node would receive (genesis config --help)
  talosconfig      Get a talosconfig for talosctl (genesis talosconfig --help)
  kubeconfig       Get an admin kubeconfig for kubectl (genesis kubeconfig --help)
  cluster          Bootstrap state, join token, reset (genesis cluster --help)
  backup           etcd snapshots: take one now, list, verify (genesis backup --help)
  assets           Download, import and list Talos kernels and initramfs (genesis assets --help)
  doctor           Check this host and configuration for what keeps machines from booting
  token show       Print the API token generated on first start (from the data dir, mode 0600)
  completion       Shell completion: source <(genesis completion bash)   (or zsh)
  help [command]   This help, or a command's

Options:
  --config <file>  Configuration file (default: ./genesis.yaml when present)
  -h, --help       Show this help (genesis help <command>: that command's)
  -v, --version    Show the version

Commands that talk to a running Genesis (nodes, fleet, cluster, backup, talosconfig, kubeconfig) find
it through GENESIS_URL (default http://127.0.0.1:8080) and GENESIS_API_TOKEN (default: the token
file in the data dir). Every setting is also an environment variable: GENESIS_<SECTION>_<KEY>.

Examples:
  genesis doctor                          what keeps machines from booting, with fixes
  GENESIS_CLUSTER_ENDPOINT=https://192.0.2.10:6443 genesis serve
  genesis nodes                           the fleet
  genesis nodes assign 52:54:00:12:34:56 controlplane
`;

const SERVE_USAGE = `Usage: genesis serve [--config <file>]

Runs Genesis: TFTP, HTTP (boot scripts, Talos assets, machine configs, API, dashboard), the
inventory, the Talos event sink and, with dhcp.proxy, the proxyDHCP. Runs until SIGINT/SIGTERM.

Options:
  --config <file>  Configuration file (default: ./genesis.yaml when present)

Settings come from defaults, the file, then GENESIS_* environment variables (docs/configuration.md).

Examples:
  GENESIS_CLUSTER_VIP=192.0.2.10 genesis serve
  GENESIS_DHCP_PROXY=true GENESIS_ADVERTISE_ADDR=192.0.2.1 genesis serve
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(configFile: string | undefined): Promise<number> {
  const { config, warning } = loadConfigWithFleet({ file: configFile }, 'throw');
  if (warning) process.stderr.write(`genesis: ${warning}\n`);
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
    // The last lines written before exit, but a log reader that stalled does not hold the exit.
    const exit = (code: number) => void flushLog(log, 2000).then(() => process.exit(code));
    app.close().then(
      () => exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    const listening = await app.start();
    // For the CLI run from another directory (serve-marker.ts); never a reason not to serve.
    try {
      const ports: NonNullable<ServeMarker['ports']> = [{ proto: 'tcp', port: listening.http.port }];
      if (listening.tftp) ports.push({ proto: 'udp', port: listening.tftp.port });
      if (listening.events) ports.push({ proto: 'tcp', port: listening.events.sink.port }, { proto: 'tcp', port: listening.events.kernelLog.port });
      if (listening.dhcp) ports.push({ proto: 'udp', port: listening.dhcp.port }, { proto: 'udp', port: listening.dhcp.pxePort });
      writeServeMarker({ dataDir: config.data_dir, assetsDir: config.assets_dir, url: localHttpUrl(config.http.host, listening.http.port), pid: process.pid, startedAt: new Date().toISOString(), ports });
    } catch (err) {
      log.debug({ reason: (err as Error).message }, 'could not record the data dir for the CLI');
    }
    // Where to go next, for the person at the terminal (the 'genesis ready' log line has it too).
    if (process.stderr.isTTY) process.stderr.write(`\nGenesis is up. Dashboard: http://${config.advertise_addr}:${config.http.port}/  (genesis doctor checks the setup)\n`);
    if (app.apiToken?.plaintext) {
      // Straight to a terminal, never through the logger: logs are shipped and kept. Without a
      // terminal (Docker, systemd) stderr is a log too, so only where to read it is said.
      if (process.stderr.isTTY) {
        process.stderr.write(
          `\nGenesis API token (shown once; stored hashed, plaintext copy for the local CLI in ${config.data_dir}/admin.token, mode 0600):\n\n  ${app.apiToken.plaintext}\n\n`,
        );
      } else {
        process.stderr.write(`genesis: an API token was generated; it is in ${config.data_dir}/admin.token (mode 0600). Read it with: genesis token show (in the container: docker compose exec genesis genesis token show)\n`);
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Start-up problems the operator must fix: one line, exit 2, no stack trace.
    if (err instanceof InventoryError && err.isStorageFailure) throw new ConfigError(`cannot open the inventory in ${config.data_dir}: ${err.message}`);
    if (err instanceof InventoryError) throw new ConfigError(err.message);
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
      throw new ConfigError(`cannot listen: ${e.message}${e.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE; set GENESIS_TFTP_PORT, or GENESIS_DHCP_PORT and GENESIS_DHCP_PXE_PORT)' : ''}`);
    }
    throw err;
  }
  return new Promise<number>(() => {}); // runs until a signal
}

/**
 * `genesis --config lab.yaml nodes list`: a configuration file named before the command is the
 * command's, as the usage's Options say, so it moves after the command's own arguments (before a
 * `--`). Anything else before the command is left for the main parser to judge.
 */
function configAfterCommand(argv: string[], commands: ReadonlySet<string>): string[] {
  const moved: string[] = [];
  let i = 0;
  for (;;) {
    const arg = argv[i];
    if ((arg === '--config' || arg === '-c') && argv[i + 1] !== undefined) {
      moved.push(arg, argv[i + 1]!);
      i += 2;
    } else if (arg?.startsWith('--config=')) {
      moved.push(arg);
      i += 1;
    } else break;
  }
  const command = argv[i];
  if (!moved.length || command === undefined || !commands.has(command)) return argv;
  const rest = argv.slice(i + 1);
  const end = rest.indexOf('--');
  return end === -1 ? [command, ...rest, ...moved] : [command, ...rest.slice(0, end), ...moved, ...rest.slice(end)];
}

export async function main(argv: string[]): Promise<number> {
  // Subcommands with options of their own parse their own arguments.
  const subcommands = {
    nodes: nodesCommand,
    fleet: fleetCommand,
    secrets: secretsCommand,
    config: configCommand,
    talosconfig: talosconfigCommand,
    kubeconfig: kubeconfigCommand,
    backup: backupCommand,
    cluster: clusterCommand,
    assets: assetsCommand,
    doctor: doctorCommand,
    token: tokenCommand,
    completion: completionCommand,
  };
  argv = configAfterCommand(argv, new Set(Object.keys(subcommands)));
  const sub = subcommands[(argv[0] ?? '') as keyof typeof subcommands] as ((args: string[]) => Promise<number>) | undefined;
  if (sub) return reportingConfigErrors(() => sub(argv.slice(1)));
  // genesis help [command]: the same as --help, for those who type it that way.
  if (argv[0] === 'help') return argv[1] ? main([argv[1], '--help']) : (process.stdout.write(USAGE), 0);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: MAIN_OPTIONS,
    });
  } catch (err) {
    process.stderr.write(`genesis: ${optionProblem(err as Error & { code?: string }, MAIN_OPTIONS)}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const [command] = positionals;
  if (command === 'serve' && values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  switch (command) {
    case 'serve':
      return reportingConfigErrors(() => serve(values.config));
    default:
      unknownCommand('genesis', command, USAGE);
      return 2;
  }
}

const COMPLETION_USAGE = `Usage: genesis completion bash|zsh

Prints a completion script for the shell, generated from the commands' help texts.

Examples:
  source <(genesis completion bash)                       this shell
  genesis completion bash > /etc/bash_completion.d/genesis  every new bash
  genesis completion zsh > "\${fpath[1]}/_genesis"           every new zsh
`;

/** Every command's usage text: the command table completion is generated from. */
export function usages(): Record<string, string> {
  return {
    serve: SERVE_USAGE,
    nodes: NODES_USAGE,
    fleet: FLEET_USAGE,
    secrets: SECRETS_USAGE,
    config: CONFIG_USAGE,
    talosconfig: TALOSCONFIG_USAGE,
    kubeconfig: KUBECONFIG_USAGE,
    cluster: CLUSTER_USAGE,
    backup: BACKUP_USAGE,
    assets: ASSETS_USAGE,
    doctor: DOCTOR_USAGE,
    token: TOKEN_USAGE,
    completion: COMPLETION_USAGE,
  };
}

/** `genesis completion bash|zsh`. */
async function completionCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { help: { type: 'boolean', short: 'h' } }, COMPLETION_USAGE, 'completion');
  if (!parsed) return 2;
  if (parsed.values.help) {
    process.stdout.write(COMPLETION_USAGE);
    return 0;
  }
  const [shell, extra] = parsed.positionals;
  const table = commandTable(usages());
  if (shell === 'bash' && !extra) process.stdout.write(bashCompletion(table));
  else if (shell === 'zsh' && !extra) process.stdout.write(zshCompletion(table));
  else {
    process.stderr.write(`genesis completion: ${shell ? `no completion for "${[shell, extra].filter(Boolean).join(' ')}"` : 'which shell?'}: bash or zsh\n${COMPLETION_USAGE}`);
    return 2;
  }
  return 0;
}

const TOKEN_USAGE = `Usage: genesis token show [--config <file>]

Prints the API token Genesis generated on its first start, from <data_dir>/admin.token (mode
0600). Under Docker: docker compose exec genesis genesis token show
A token set with GENESIS_API_TOKEN is never stored; there is nothing to show then.
`;

/** \`genesis token show\`: the generated API token, read from the data dir (root or Genesis's user only). */
async function tokenCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`genesis token: ${(err as Error).message}\n${TOKEN_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(TOKEN_USAGE);
    return 0;
  }
  if (parsed.positionals[0] !== 'show' || parsed.positionals.length !== 1) {
    process.stderr.write(TOKEN_USAGE);
    return 2;
  }
  const config = loadConfig({ file: parsed.values.config, discover: true });
  const token = readCliToken(config.data_dir, {});
  if (!token) {
    process.stderr.write(`genesis token: no generated token in ${config.data_dir} (it is created on the first start; a GENESIS_API_TOKEN is never stored)\n`);
    return 1;
  }
  process.stdout.write(token + '\n');
  return 0;
}

/** A problem the operator must fix (configuration, ports, database version): one line, exit 2. */
async function reportingConfigErrors(command: () => Promise<number>): Promise<number> {
  try {
    return await command();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`genesis: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
