// `genesis nodes …`: the inventory API from a shell. It talks HTTP to a running Genesis (the
// one in the local config unless --url says otherwise), with the token from GENESIS_API_TOKEN or
// the data dir, so it works the same on the Genesis machine and from a laptop.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { API_CLIENT_OPTIONS, apiClient, call, CliError, cliFailure, UsageError, type Client } from './api-client.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { OUTPUT_HELP, formatted, formattedRecord, outputFormatOf } from './output.ts';
import type { Node, NodeEvent, StoredKernelLogLine } from '../domain/node.ts';
import { POWER_ACTIONS, type PowerResult as PowerAnswer } from '../power/power-control.ts';

/** `nodes show`'s events, one line each, in columns as wide as their longest entry (conflict-resolved, api:dashboard). */
export function eventLines(events: Array<Pick<NodeEvent, 'at' | 'type' | 'actor' | 'detail'>>): string[] {
  const typeWidth = Math.max(14, ...events.map((e) => e.type.length));
  const actorWidth = Math.max(8, ...events.map((e) => e.actor.length));
  return events.map((e) => `  ${e.at}  ${e.type.padEnd(typeWidth)} ${e.actor.padEnd(actorWidth)} ${JSON.stringify(e.detail)}`);
}

export const NODES_USAGE = `Usage: genesis nodes [<command>] [options]

Commands:
  list [--role R] [--state S]        Machines Genesis has seen or been told about (the command when none is given)
  show <mac>                         One machine, and its latest events
  assign <mac> <controlplane|worker> [--hostname H] [--disk /dev/X] [--label k=v]... [--talos-version vX.Y.Z] [--profile NAME]
         [--address 192.0.2.21/24 --gateway 192.0.2.1 --nameserver 192.0.2.1] [--patch file.yaml]
         [--bootstrap]   (control plane to bootstrap etcd on; else the first one reachable)
  config <mac>                       The machine config it would receive, keys and tokens masked
  unassign <mac>                     Take the role away (the machine waits at its next boot)
  reinstall <mac> [--reset [--force]] Install Talos again at the next PXE boot (opens a new install window);
                                     --reset: and make that boot happen now (Talos wipes its system disk and
                                     reboots; --force skips leaving etcd and draining, as talosctl reset --graceful=false)
  power <mac> on|off|cycle|reboot|pxe|status
                                     Power it through its power method: Wake-on-LAN (on), its BMC (IPMI),
                                     or Talos (reboot); pxe: next boot from the network (IPMI)
  power-method <mac> wol|manual|ipmi [--bmc ADDRESS --bmc-user USER --bmc-password-file /root/bmc.pass]
                                     How Genesis may power it (manual: never); the BMC password stays in
                                     its file (mode 0600), read at each use, never stored or returned
  confirm <mac> [<address>]          Two machines claimed this MAC: the one at <address> is real
                                     (without one: the next machine that asks is bound)
  installed <mac>                    Mark installed: the next PXE boot goes to the local disk
  delete <mac>                       Forget the machine (its events are kept)
  logs <mac> [--lines N]             The machine's kernel log (the newest N lines, default 200)
  watch                              Print node changes as they happen, until interrupted

Options:
  --url <url>      Genesis HTTP address (default: from the configuration, on 127.0.0.1)
${OUTPUT_HELP}
  --config <file>  Configuration file to read the port and data dir from
`;

type Change = { event: Omit<NodeEvent, 'id'>; node: Node | null | undefined };

/** Follow GET /api/v1/stream (Server-Sent Events) until Genesis ends it. */
async function watch(c: Client, onChange: (change: Change) => void): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${c.url}/api/v1/stream`, { headers: c.token ? { authorization: `Bearer ${c.token}` } : {} });
  } catch (err) {
    throw new CliError(`cannot reach Genesis at ${c.url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) throw new CliError(`the stream answered ${res.status}${res.status === 401 ? ' (set GENESIS_API_TOKEN, or run where the data dir holds admin.token)' : ''}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split('\n');
      if (!lines.includes('event: node')) continue; // comments, keep-alives
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      onChange(JSON.parse(data) as Change);
    }
  }
}

function table(nodes: Node[]): string {
  const rows = [['MAC', 'ROLE', 'STATE', 'TALOS', 'HOSTNAME', 'ARCH', 'FIRMWARE', 'LAST IP', 'LAST SEEN', 'WAITING']];
  for (const n of nodes) {
    const talos = n.talosStage ? `${n.talosStage}${n.talosReady ? ',ready' : ''}` : '-';
    // Last, so a long reason does not push the other columns around.
    rows.push([n.mac, n.role, n.state, talos, n.hostname ?? '-', n.arch ?? '-', n.firmware ?? '-', n.lastIp ?? '-', n.lastSeen ?? '-', n.conflict ? `held: ${n.conflict}` : (n.waiting ?? '-')]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

function labelsFrom(values: string[] | undefined): Record<string, string> | undefined {
  if (!values) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${v}: expected key=value`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export async function nodesCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(
    argv,
    {
      ...API_CLIENT_OPTIONS,
      role: { type: 'string' },
      state: { type: 'string' },
      hostname: { type: 'string' },
      disk: { type: 'string' },
      label: { type: 'string', multiple: true },
      'talos-version': { type: 'string' },
      profile: { type: 'string' },
      address: { type: 'string' },
      gateway: { type: 'string' },
      nameserver: { type: 'string', multiple: true },
      patch: { type: 'string' },
      bootstrap: { type: 'boolean' },
      lines: { type: 'string' },
      reset: { type: 'boolean' },
      force: { type: 'boolean' },
      bmc: { type: 'string' },
      'bmc-user': { type: 'string' },
      'bmc-password-file': { type: 'string' },
    },
    NODES_USAGE,
    'nodes',
  );
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  // `genesis nodes` alone is the fleet, as `genesis help` shows it: an operator's first look.
  const [sub = 'list', mac, role] = positionals;
  if (v.help) {
    process.stdout.write(NODES_USAGE);
    return 0;
  }
  const format = outputFormatOf(v, 'nodes');
  if (!format) return 2;
  const client = apiClient(v.config, v.url);
  const needMac = () => {
    if (!mac) throw new UsageError(`${sub} needs a MAC address`);
    return encodeURIComponent(mac);
  };
  const print = (data: unknown, human: () => string) => out(formatted(format, data, human));
  const nodeLine = (n: Node) => `${n.mac}  role=${n.role}  state=${n.state}${n.hostname ? `  hostname=${n.hostname}` : ''}\n`;

  try {
    switch (sub) {
      case 'list': {
        const q = new URLSearchParams();
        if (v.role) q.set('role', v.role);
        if (v.state) q.set('state', v.state);
        // Every page: the API gives at most 1000 at a time, with a cursor for the next.
        const data: { nodes: Node[] } = { nodes: [] };
        for (let after: string | null | undefined; after !== null; ) {
          if (after) q.set('after', after);
          const page = (await call(client, 'GET', `/nodes${q.size ? '?' + q : ''}`)) as { nodes: Node[]; next: string | null };
          data.nodes.push(...page.nodes);
          after = page.next;
        }
        print(data, () => table(data.nodes));
        return 0;
      }
      case 'show': {
        const m = needMac();
        const node = (await call(client, 'GET', `/nodes/${m}`)) as Node;
        const ev = (await call(client, 'GET', `/nodes/${m}/events?limit=20`)) as { events: NodeEvent[] };
        print({ node, events: ev.events }, () => {
          const lines = Object.entries(node).map(([k, val]) => `${k.padEnd(14)} ${typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val ?? '-')}`);
          lines.push('', 'events (newest first):');
          lines.push(...eventLines(ev.events));
          return lines.join('\n') + '\n';
        });
        return 0;
      }
      case 'assign': {
        const m = needMac();
        if (role !== 'controlplane' && role !== 'worker') throw new UsageError('assign needs a role: controlplane or worker');
        const body: Record<string, unknown> = { role };
        if (v.hostname !== undefined) body.hostname = v.hostname;
        if (v.disk !== undefined) body.installDisk = v.disk;
        if (v['talos-version'] !== undefined) body.talosVersion = v['talos-version'];
        if (v.profile !== undefined) body.profile = v.profile;
        if (v.bootstrap) {
          if (role !== 'controlplane') throw new UsageError('--bootstrap is for control planes');
          body.bootstrap = true;
        }
        const labels = labelsFrom(v.label);
        if (labels) body.labels = labels;
        if (v.address !== undefined) {
          body.network = { address: v.address, ...(v.gateway ? { gateway: v.gateway } : {}), ...(v.nameserver ? { nameservers: v.nameserver } : {}) };
        } else if (v.gateway !== undefined || v.nameserver !== undefined) {
          throw new UsageError('--gateway and --nameserver go with --address');
        }
        if (v.patch !== undefined) {
          try {
            body.configPatch = readFileSync(v.patch, 'utf8');
          } catch (err) {
            throw new CliError(`cannot read ${v.patch}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
          }
        }
        const node = (await call(client, 'PUT', `/nodes/${m}`, body)) as Node & { warnings?: string[] };
        // What the API said of the patch (a deprecated or moved field, an installer for another
        // release): on stderr, so a script reading stdout gets the node alone.
        for (const w of node.warnings ?? []) process.stderr.write(`genesis nodes assign: warning: ${w}\n`);
        print(node, () => nodeLine(node));
        return 0;
      }
      case 'unassign': {
        const node = (await call(client, 'PATCH', `/nodes/${needMac()}`, { role: 'unassigned' })) as Node;
        print(node, () => nodeLine(node));
        return 0;
      }
      case 'reinstall': {
        if (v.force && !v.reset) throw new UsageError('--force goes with --reset');
        const body = v.reset ? { reset: true, graceful: !v.force } : undefined;
        const node = (await call(client, 'POST', `/nodes/${needMac()}/reinstall`, body)) as Node & { power?: PowerAnswer };
        print(node, () => nodeLine(node) + (node.power ? `${node.power.result}\n` : ''));
        return 0;
      }
      case 'power': {
        const m = needMac();
        // The third word is the action here, not a role.
        if (!role || !(POWER_ACTIONS as readonly string[]).includes(role)) throw new UsageError(`power needs an action: ${POWER_ACTIONS.join(', ')}`);
        const r = (await call(client, 'POST', `/nodes/${m}/power`, { action: role })) as PowerAnswer;
        print(r, () => `${r.mac}  ${r.action} (${r.method}): ${r.result}${r.power !== undefined ? `\npower: ${r.power ?? 'unknown'}` : ''}\n`);
        return 0;
      }
      case 'power-method': {
        const m = needMac();
        if (role !== 'wol' && role !== 'manual' && role !== 'ipmi') throw new UsageError('power-method needs a method: wol, manual or ipmi');
        const bmcFlags = [v.bmc, v['bmc-user'], v['bmc-password-file']];
        let power: Record<string, unknown> = { method: role };
        if (role === 'ipmi') {
          if (bmcFlags.some((f) => f === undefined)) throw new UsageError('ipmi needs --bmc ADDRESS --bmc-user USER --bmc-password-file FILE');
          power = { method: role, bmc: { address: v.bmc, username: v['bmc-user'], passwordFile: path.resolve(v['bmc-password-file']!) } };
        } else if (bmcFlags.some((f) => f !== undefined)) {
          throw new UsageError('--bmc, --bmc-user and --bmc-password-file go with ipmi');
        }
        const node = (await call(client, 'PATCH', `/nodes/${m}`, { power })) as Node;
        print(node, () => `${node.mac}  power=${node.power?.method ?? 'wol'}${node.power?.bmc ? `  bmc=${node.power.bmc.username}@${node.power.bmc.address}` : ''}\n`);
        return 0;
      }
      case 'installed': {
        const node = (await call(client, 'POST', `/nodes/${needMac()}/${sub}`)) as Node;
        print(node, () => nodeLine(node));
        return 0;
      }
      case 'confirm': {
        // The third word is the address here, not a role.
        const node = (await call(client, 'POST', `/nodes/${needMac()}/confirm`, { ip: role ?? null })) as Node;
        print(node, () => nodeLine(node));
        return 0;
      }
      case 'config':
        out((await call(client, 'GET', `/nodes/${needMac()}/config`, undefined, { text: true })) as string);
        return 0;
      case 'logs': {
        const m = needMac();
        const lines = v.lines ?? '200';
        if (!/^[1-9][0-9]{0,4}$/.test(lines)) throw new UsageError('--lines must be a number from 1 to 10000');
        const data = (await call(client, 'GET', `/nodes/${m}/logs?limit=${lines}`)) as { lines: StoredKernelLogLine[] };
        print(data, () => data.lines.map((l) => `${l.talosTime ?? l.receivedAt}  ${(l.level ?? '-').padEnd(5)}  ${l.msg}\n`).join('') || '(no kernel log received from this machine)\n');
        return 0;
      }
      case 'watch':
        await watch(client, (change) => {
          const { event, node } = change;
          out(formattedRecord(format, change, () => `${event.at}  ${event.mac}  ${event.type.padEnd(18)} ${node ? `${node.role}/${node.state}${node.hostname ? ` ${node.hostname}` : ''}` : 'deleted'}\n`));
        });
        return 0;
      case 'delete':
        await call(client, 'DELETE', `/nodes/${needMac()}`);
        if (format === 'table') out(`deleted ${mac}\n`);
        return 0;
      default:
        unknownCommand('genesis nodes', String(sub), NODES_USAGE);
        return 2;
    }
  } catch (err) {
    return cliFailure(err, `genesis nodes ${sub}`);
  }
}
