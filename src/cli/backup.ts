// `genesis backup`: the etcd snapshots Genesis takes on its schedule, through the HTTP API
// (the running Genesis holds the Talos API credentials and knows which control plane is healthy).

import type { BackupStatus } from '../backup/etcd-backups.ts';
import type { SnapshotRecord, VerifyResult } from '../backup/snapshot-store.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { OUTPUT_HELP, formatted, outputFormatOf } from './output.ts';
import { API_CLIENT_OPTIONS, apiClient, call, cliFailure, UsageError } from './api-client.ts';

export const BACKUP_USAGE = `Usage: genesis backup <command> [options]

Commands:
  now              Take an etcd snapshot now from a healthy control plane (waits for it)
  list             The stored snapshots, newest first, and the schedule's status
  verify <name>    Read a snapshot back: its sha256 and size against its metadata, and etcd's
                   own appended hash

Options:
  --url <url>      Genesis HTTP address (default: from the configuration, on 127.0.0.1)
${OUTPUT_HELP}
  --config <file>  Configuration file to read the port and data dir from

Snapshots are files in backup.dir (default: backups/ in the data dir): <name>.db is what
etcdutl snapshot restore and talosctl bootstrap --recover-from take; <name>.json its metadata.
`;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

function row(r: SnapshotRecord): string {
  const from = `${r.source.hostname ?? r.source.mac} (${r.source.address})`;
  return `${r.name}  ${r.takenAt}  ${mib(r.size).padStart(10)}  ${r.sha256.slice(0, 12)}  ${from}`;
}

function describe(status: BackupStatus, snapshots: SnapshotRecord[]): string {
  const lines = [
    `schedule  ${status.enabled ? `every ${status.intervalSeconds / 3600} h${status.nextAt && !status.waiting ? `, next ${status.nextAt}` : ''}` : 'off (backup.enabled: false)'}`,
    `directory ${status.dir}`,
  ];
  if (status.waiting) lines.push(`waiting   ${status.waiting}`);
  if (status.lastFailure) lines.push(`last failure ${status.lastFailure.at}: ${status.lastFailure.error}`);
  lines.push('');
  if (!snapshots.length) lines.push('no snapshots yet');
  else lines.push(`NAME${' '.repeat(Math.max(0, snapshots[0]!.name.length - 4))}  TAKEN                           SIZE  SHA256        FROM`, ...snapshots.map(row));
  return lines.join('\n') + '\n';
}

export async function backupCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(argv, API_CLIENT_OPTIONS, BACKUP_USAGE, 'backup');
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  const [sub, name] = positionals;
  if (v.help || !sub) {
    (v.help ? process.stdout : process.stderr).write(BACKUP_USAGE);
    return v.help ? 0 : 2;
  }
  const format = outputFormatOf(v, 'backup');
  if (!format) return 2;
  const client = apiClient(v.config, v.url);
  try {
    switch (sub) {
      case 'now': {
        const r = (await call(client, 'POST', '/backups')) as { snapshot: SnapshotRecord };
        out(formatted(format, r.snapshot, () => `stored ${r.snapshot.name} (${mib(r.snapshot.size)}, sha256 ${r.snapshot.sha256}) from ${r.snapshot.source.hostname ?? r.snapshot.source.mac}\n`));
        return 0;
      }
      case 'list': {
        const r = (await call(client, 'GET', '/backups')) as { status: BackupStatus; snapshots: SnapshotRecord[] };
        out(formatted(format, r, () => describe(r.status, r.snapshots)));
        return 0;
      }
      case 'verify': {
        if (!name) throw new UsageError('verify needs a snapshot name (genesis backup list shows them)');
        const r = (await call(client, 'POST', `/backups/${encodeURIComponent(name)}/verify`)) as VerifyResult;
        out(formatted(format, r, () => r.ok ? `${r.name}: OK (${r.size} bytes, sha256 ${r.sha256}, etcd hash ${r.etcdIntegrity === 'hash-ok' ? 'ok' : 'absent'})\n` : `${r.name}: DAMAGED: ${r.problems.join('; ')}\n`));
        return r.ok ? 0 : 1;
      }
      default:
        unknownCommand('genesis backup', String(sub), BACKUP_USAGE);
        return 2;
    }
  } catch (err) {
    return cliFailure(err, `genesis backup ${sub}`);
  }
}
