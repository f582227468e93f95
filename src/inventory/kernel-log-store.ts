// The kernel-log ring: each machine's newest kernel messages, as its Talos sent them
// (kernel-log/receiver.ts). Pruned per MAC in the transaction that appends.

import type { KernelLogLine, StoredKernelLogLine } from '../domain/node.ts';
import type { InventoryDatabase } from './database.ts';

type Row = { id: number; received_at: string; talos_time: string | null; level: string | null; facility: string | null; msg: string; fields: string };

export class KernelLogStore {
  private readonly db: InventoryDatabase;
  constructor(db: InventoryDatabase) {
    this.db = db;
  }

  /** Inside a write: append, keeping the newest `keep` lines. */
  append(mac: string, receivedAt: string, lines: KernelLogLine[], keep: number): void {
    const insert = this.db.sql('INSERT INTO kernel_logs (mac, received_at, talos_time, level, facility, msg, fields) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const l of lines) insert.run(mac, receivedAt, l.talosTime, l.level, l.facility, l.msg, JSON.stringify(l.fields));
    this.db.keepNewest('kernel_logs', 'id', mac, keep);
  }

  /**
   * Oldest first: the newest `limit` lines; or, with `after` (a line id), the first `limit` lines
   * after it, so a reader tailing the log pages forward without skipping any.
   */
  read(mac: string, opts: { after?: number; limit?: number } = {}): StoredKernelLogLine[] {
    const limit = opts.limit ?? 500;
    const rows = (
      opts.after === undefined
        ? this.db.sql('SELECT * FROM kernel_logs WHERE mac = +? ORDER BY id DESC LIMIT +?').all(mac, limit).reverse()
        : this.db.sql('SELECT * FROM kernel_logs WHERE mac = +? AND id > ? ORDER BY id LIMIT +?').all(mac, opts.after, limit)
    ) as Row[];
    return rows.map((r) => ({
      id: r.id,
      receivedAt: r.received_at,
      talosTime: r.talos_time,
      level: r.level,
      facility: r.facility,
      msg: r.msg,
      fields: JSON.parse(r.fields) as Record<string, unknown>,
    }));
  }

  /** Inside a write: a machine deleted takes its log with it. */
  forget(mac: string): void {
    this.db.sql('DELETE FROM kernel_logs WHERE mac = ?').run(mac);
  }
}
