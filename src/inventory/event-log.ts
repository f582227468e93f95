// Each machine's history: what it did (boot noise: its own requests and its Talos's events) kept
// apart from what was done to it (audit: the operator, the fleet file, Genesis's own decisions).
// Noise is a ring per MAC, so a flood can only push out older noise; audit rows are never pruned
// to make room for it. Also the ids of the Talos events already applied, so a resend changes nothing.

import type { EventType, NodeEvent } from '../domain/node.ts';
import type { InventoryDatabase } from './database.ts';

/** Actors whose events are the machine's own doing: unauthenticated, so noise. */
const NOISE_ACTORS = new Set(['boot', 'talos']);

/** A machine's noise ring may hold this many rows beyond its retention between prunes. */
export const NOISE_PRUNE_EVERY = 32;

export class EventLog {
  private readonly db: InventoryDatabase<Omit<NodeEvent, 'id'>>;
  private readonly retention: number;
  constructor(db: InventoryDatabase<Omit<NodeEvent, 'id'>>, retention: number) {
    this.db = db;
    this.retention = retention;
  }

  /** Inside a write: append one event, announced once the transaction commits. */
  append(mac: string, at: string, type: EventType, actor: string, detail: Record<string, unknown>): void {
    const audit = NOISE_ACTORS.has(actor) ? 0 : 1;
    this.db.sql('INSERT INTO node_events (mac, at, type, actor, detail, audit) VALUES (?, ?, ?, ?, ?, ?)').run(mac, at, type, actor, JSON.stringify(detail), audit);
    this.db.announce({ mac, at, type, actor, detail });
    // Every boot request appends noise: the ring is pruned every NOISE_PRUNE_EVERY appends, not each.
    if (!audit) this.db.keepNewest('node_events', 'id', mac, this.retention, 'audit = 0', NOISE_PRUNE_EVERY);
  }

  /**
   * Newest first, `limit` of them, before the event id `before`. Noise beyond the newest
   * `retention` (kept on disk until the next prune) is not shown: the ring reads exact.
   */
  list(mac: string, opts: { limit?: number; before?: number } = {}): NodeEvent[] {
    const rows = this.db
      .sql(
        `SELECT * FROM node_events WHERE mac = +@mac AND id < @before
           AND (audit = 1 OR id >= COALESCE((SELECT id FROM node_events WHERE mac = +@mac AND audit = 0 ORDER BY id DESC LIMIT 1 OFFSET +@skip), 0))
         ORDER BY id DESC LIMIT +@limit`,
      )
      .all({ mac, before: opts.before ?? Number.MAX_SAFE_INTEGER, skip: this.retention - 1, limit: opts.limit ?? 100 }) as Array<Omit<NodeEvent, 'detail'> & { detail: string }>;
    return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** Inside a write: true the first time this Talos event id is seen for the machine. */
  firstSight(mac: string, talosEventId: string): boolean {
    const fresh = this.db.sql('INSERT INTO talos_event_ids (mac, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING').run(mac, talosEventId).changes > 0;
    if (fresh) this.db.keepNewest('talos_event_ids', 'seq', mac, this.retention);
    return fresh;
  }

  /** Inside a write: the ids seen go with a deleted machine (one that comes back is a new story). */
  forgetTalosIds(mac: string): void {
    this.db.sql('DELETE FROM talos_event_ids WHERE mac = ?').run(mac);
  }
}
