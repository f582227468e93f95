// `genesis secrets …`, `genesis config render …`, `genesis talosconfig`: the cluster's Talos side
// from a shell. Secrets and rendering work on the local data dir (they are the Genesis machine's
// own files); talosconfig asks the running Genesis, which knows the control planes' addresses.

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { clusterSettings } from '../provision/cluster-settings.ts';
import { ConfigRenderer } from '../provision/config-renderer.ts';
import { PatchFileSet } from '../provision/patch-files.ts';
import { loadConfig } from '../config/config.ts';
import { loadConfigWithFleet } from './fleet-config.ts';
import { normalizeMac } from '../domain/mac.ts';
import { blankNode, type Node } from '../domain/node.ts';
import { RenderError } from '../talos/render.ts';
import { parseSecrets, SecretsError, serializeSecrets, type SecretsBundle } from '../talos/secrets.ts';
import { readSecretsFile, SecretsStore, secretsPath, writeSecrets } from '../talos/secrets-store.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { readInventory } from './inventory-read.ts';
import { apiClient, call, CliError, cliFailure, UsageError } from './api-client.ts';
import { isDeepStrictEqual } from 'node:util';

export const SECRETS_USAGE = `Usage: genesis secrets <command> [options]

Commands:
  export                 Print the cluster secrets bundle (talosctl gen secrets format). Keep it safe.
  import <file> [--force]
                         Adopt a bundle made by talosctl gen secrets. Refused when a different
                         bundle is already in place, unless --force (nodes installed with the old
                         one can then no longer join).

Options:
  --config <file>  Configuration file to read the data dir from
`;

export const CONFIG_USAGE = `Usage: genesis config render (--mac <mac> | --role <controlplane|worker>) [options]

Prints the machine config a node would receive, for review. Nothing is recorded and no token is used.

Options:
  --mac <mac>                  A node from the inventory, with its role and settings
  --role <role>                No inventory: a node of this role with default settings
  --secrets <file>             With --role: use this bundle instead of the data dir's
  --talos-version <vX.Y.Z>     Override the node's (or the default) Talos version
  --hostname <name>            With --role: set a hostname
  --config <file>              Configuration file

Examples:
  genesis config render --mac 52:54:00:12:34:56 | less
  genesis config render --role controlplane --talos-version v1.14.0 > cp.yaml
`;

export const TALOSCONFIG_USAGE = `Usage: genesis talosconfig [-o <file>] [--url <url>] [--config <file>]

Asks the running Genesis for a talosconfig (admin client certificate signed by the cluster's OS CA,
valid one year; endpoints: the control planes). Written to <file> with mode 0600, or to stdout.
`;

export const KUBECONFIG_USAGE = `Usage: genesis kubeconfig [-o <file>] [--url <url>] [--config <file>]

Asks the running Genesis for an admin kubeconfig: a client certificate (CN=admin, O=system:masters)
signed by the cluster's Kubernetes CA, valid cluster.admin_kubeconfig_days (365), for the cluster
endpoint. No node needs to be up. Written to <file> with mode 0600, or to stdout.
`;

const COMMON = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;

export async function secretsCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(argv, { ...COMMON, force: { type: 'boolean' } }, SECRETS_USAGE, 'secrets');
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  const [sub, file] = positionals;
  if (v.help || !sub) {
    process.stdout.write(SECRETS_USAGE);
    return v.help ? 0 : 2;
  }
  const config = loadConfig({ file: v.config, detect: () => '127.0.0.1', discover: true });
  const dir = config.data_dir;
  try {
    switch (sub) {
      case 'export': {
        const bundle = readSecretsFile(dir);
        if (!bundle) throw new CliError(`no secrets bundle in ${dir} yet (Genesis creates one on its first start, or use genesis secrets import)`);
        out(serializeSecrets(bundle));
        return 0;
      }
      case 'import': {
        if (!file) throw new UsageError('import needs the bundle file (from talosctl gen secrets)');
        let incoming: SecretsBundle;
        try {
          incoming = parseSecrets(readFileSync(file, 'utf8'));
        } catch (err) {
          if (err instanceof SecretsError) throw new CliError(`${file}: ${err.message}`);
          throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        const current = readSecretsFile(dir);
        if (current && isDeepStrictEqual(current, incoming)) {
          out(`${secretsPath(dir)} already holds this bundle\n`);
          return 0;
        }
        if (current && !v.force) {
          throw new CliError(
            `${secretsPath(dir)} already holds a different bundle; nodes installed with it would no longer be part of the cluster. ` +
              'Back it up (genesis secrets export) and pass --force to replace it',
          );
        }
        writeSecrets(dir, incoming);
        out(`imported ${file} into ${secretsPath(dir)}; a running Genesis uses it from the next config it serves\n`);
        return 0;
      }
      default:
        unknownCommand('genesis secrets', String(sub), SECRETS_USAGE);
        return 2;
    }
  } catch (err) {
    return cliFailure(err, `genesis secrets ${sub}`, [SecretsError]);
  }
}

export async function configCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(
    argv,
    { ...COMMON, mac: { type: 'string' }, role: { type: 'string' }, secrets: { type: 'string' }, 'talos-version': { type: 'string' }, hostname: { type: 'string' } },
    CONFIG_USAGE,
    'config',
  );
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  if (v.help || positionals[0] !== 'render') {
    process.stdout.write(CONFIG_USAGE);
    return v.help ? 0 : 2;
  }
  // As serve renders: with the fleet file's settings and patches (a broken file is doctor's and fleet diff's finding).
  const { config, patches: fleetPatches } = loadConfigWithFleet({ file: v.config, detect: () => '127.0.0.1', discover: true }, 'ignore');
  const mac = v.mac;
  const role = v.role;
  try {
    if ((mac === undefined) === (role === undefined)) throw new UsageError('give --mac or --role (one of them)');
    if (role !== undefined && role !== 'controlplane' && role !== 'worker') throw new UsageError('--role must be controlplane or worker');
    let bundle: SecretsBundle | undefined;
    if (v.secrets !== undefined) {
      if (mac !== undefined) throw new UsageError('--secrets goes with --role; a node renders with the data dir bundle it will receive');
      try {
        bundle = parseSecrets(readFileSync(v.secrets, 'utf8'));
      } catch (err) {
        if (err instanceof SecretsError) throw new CliError(`${v.secrets}: ${err.message}`);
        throw new CliError(`cannot read ${v.secrets}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    } else {
      bundle = readSecretsFile(config.data_dir);
      if (!bundle) throw new CliError(`no secrets bundle in ${config.data_dir} (start Genesis once, import one, or pass --secrets)`);
    }
    let node: Node;
    if (mac !== undefined) {
      const m = normalizeMac(mac);
      if (!m) throw new UsageError(`${JSON.stringify(mac)} is not a MAC address`);
      const found = readInventory(config.data_dir, (inv) => inv.get(m));
      if (!found) throw new CliError(`no node with MAC ${m} in ${config.data_dir}`);
      if (found.role === 'unassigned') throw new CliError(`node ${m} has no role; its config depends on one`);
      node = found;
    } else {
      // Nothing but a role (and maybe a hostname): what `config render --role` previews.
      node = blankNode('02:00:00:00:00:01', { role: role as 'controlplane' | 'worker', hostname: v.hostname ?? null });
    }
    if (v['talos-version'] !== undefined) node = { ...node, talosVersion: v['talos-version'] };
    const renderer = new ConfigRenderer({
      secrets: new SecretsStore(config.data_dir, bundle),
      cluster: clusterSettings(config),
      patchFiles: new PatchFileSet(config.talos.patches),
      defaultTalosVersion: config.talos.version,
    }, fleetPatches);
    const rendered = renderer.render(node);
    // Warnings on stderr, so the YAML on stdout stays a config talosctl and Talos take as it is.
    for (const w of rendered.warnings) process.stderr.write(`genesis config render: warning: ${w}\n`);
    out(rendered.yaml);
    return 0;
  } catch (err) {
    return cliFailure(err, 'genesis config render', [RenderError]);
  }
}

export function talosconfigCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  return credentialFileCommand('talosconfig', TALOSCONFIG_USAGE, argv, out);
}

export function kubeconfigCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  return credentialFileCommand('kubeconfig', KUBECONFIG_USAGE, argv, out);
}

/** A credential file the running Genesis issues: to stdout, or to a file only its owner can read. */
async function credentialFileCommand(name: 'talosconfig' | 'kubeconfig', usage: string, argv: string[], out: (s: string) => void): Promise<number> {
  const parsed = parseCommand(argv, { ...COMMON, output: { type: 'string', short: 'o' }, url: { type: 'string' } }, usage, name);
  if (!parsed) return 2;
  const { values: v } = parsed;
  if (v.help) {
    process.stdout.write(usage);
    return 0;
  }
  try {
    const text = (await call(apiClient(v.config, v.url), 'GET', `/${name}`, undefined, { text: true })) as string;
    if (v.output) {
      // An existing file keeps its old mode on open; chmod makes it 0600 either way.
      writeFileSync(v.output, text, { mode: 0o600 });
      chmodSync(v.output, 0o600);
      out(`wrote ${v.output} (mode 0600)\n`);
    } else {
      out(text);
    }
    return 0;
  } catch (err) {
    return cliFailure(err, `genesis ${name}`);
  }
}

