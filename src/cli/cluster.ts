// `genesis cluster`: where the bootstrap stands, the join token for self-bootstrapping nodes,
// and the deliberate reset for rebuilding a cluster. Everything goes through the HTTP API.

import type { ClusterStatus } from '../bootstrap/orchestrator.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { OUTPUT_HELP, formatted, outputFormatOf } from './output.ts';
import { API_CLIENT_OPTIONS, apiClient, call, cliFailure, UsageError } from './api-client.ts';

export const CLUSTER_USAGE = `Usage: genesis cluster <command> [options]

Commands:
  status                      The bootstrap lock (state, holder, epoch), what each control plane
                              answered last, and the lock's history
  join-token                  The token nodes send to POST /api/v1/bootstrap/claim
  reset --confirm <cluster>   Clear the lock to bootstrap a new cluster (refused while any
                              control plane still reports etcd members)
  recover --from <snapshot> --confirm <cluster>
                              Restore etcd from a stored snapshot (genesis backup list) when every
                              control plane lost it: one control plane is elected, gets the
                              snapshot and is bootstrapped from it, once (refused while any
                              control plane still reports etcd members)

Options:
  --url <url>      Genesis HTTP address (default: from the configuration, on 127.0.0.1)
${OUTPUT_HELP}
  --config <file>  Configuration file to read the port and data dir from
`;

function describe(s: ClusterStatus): string {
  const lines = [
    `cluster   ${s.cluster}`,
    `state     ${s.state}`,
    `holder    ${s.holder ? `${s.holder.mac}${s.holder.hostname ? ` (${s.holder.hostname})` : ''}${s.holder.ip ? ` at ${s.holder.ip}` : ''}` : '-'}`,
    `epoch     ${s.epoch}`,
  ];
  if (s.recovery) lines.push(`recovery  from ${s.recovery.snapshot} (sha256 ${s.recovery.sha256.slice(0, 16)}…), asked by ${s.recovery.requestedBy} at ${s.recovery.requestedAt}`);
  if (s.orchestrator.waiting) lines.push(`waiting   ${s.orchestrator.waiting}`);
  if (s.controlplanes.length) {
    lines.push('', 'control planes (last probe):');
    for (const p of s.controlplanes) {
      const etcd = p.members === null ? `etcd ${p.etcd ?? 'not running'}` : `${p.members} etcd member(s)`;
      lines.push(`  ${p.mac}  ${p.addr.padEnd(15)} ${p.reachable ? `talos ${p.talosVersion ?? '?'}, ${etcd}` : `unreachable: ${p.error ?? ''}`}`);
    }
  }
  if (s.history.length) {
    lines.push('', 'history (newest first):');
    for (const h of s.history) lines.push(`  ${h.at}  ${h.from} -> ${h.to}  epoch ${h.epoch}  ${h.actor}: ${h.note}`);
  }
  return lines.join('\n') + '\n';
}

export async function clusterCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(argv, { ...API_CLIENT_OPTIONS, confirm: { type: 'string' }, from: { type: 'string' } }, CLUSTER_USAGE, 'cluster');
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  const [sub] = positionals;
  if (v.help || !sub) {
    (v.help ? process.stdout : process.stderr).write(CLUSTER_USAGE);
    return v.help ? 0 : 2;
  }
  const format = outputFormatOf(v, 'cluster');
  if (!format) return 2;
  const client = apiClient(v.config, v.url);
  try {
    switch (sub) {
      case 'status': {
        const s = (await call(client, 'GET', '/cluster')) as ClusterStatus;
        out(formatted(format, s, () => describe(s)));
        return 0;
      }
      case 'join-token': {
        const t = (await call(client, 'GET', '/cluster/join-token')) as { token: string };
        out(formatted(format, t, () => t.token + '\n'));
        return 0;
      }
      case 'reset': {
        if (!v.confirm) throw new UsageError('reset needs --confirm <cluster name>: it lets a new etcd cluster be bootstrapped');
        const s = (await call(client, 'POST', '/cluster/reset', { confirm: v.confirm })) as ClusterStatus;
        out(formatted(format, s, () => describe(s)));
        return 0;
      }
      case 'recover': {
        if (!v.from) throw new UsageError('recover needs --from <snapshot> (genesis backup list shows them)');
        if (!v.confirm) throw new UsageError('recover needs --confirm <cluster name>: it bootstraps etcd again from the snapshot');
        const s = (await call(client, 'POST', '/cluster/recover', { snapshot: v.from, confirm: v.confirm })) as ClusterStatus;
        out(formatted(format, s, () => describe(s) + '\nThe recovery runs in the background: genesis cluster status follows it.\n'));
        return 0;
      }
      default:
        unknownCommand('genesis cluster', String(sub), CLUSTER_USAGE);
        return 2;
    }
  } catch (err) {
    return cliFailure(err, `genesis cluster ${sub}`);
  }
}
