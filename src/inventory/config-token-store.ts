// Config tokens: the hash of each machine's one live token, when it expires, how many fetches it
// has left and the address its script went to. The plaintext is never stored. Whether a token may
// be used is the install window's rule (install-window.ts); this file only keeps the rows, and
// `revoke` is the one way a token is taken back.

import type { InventoryDatabase } from './database.ts';

export type ConfigTokenRow = { mac: string; tokenSha256: string; issuedAt: string; expiresAt: string; fetchesLeft: number; ip: string | null };

type Row = { mac: string; token_sha256: string; issued_at: string; expires_at: string; fetches_left: number; ip: string | null };

export class ConfigTokenStore {
  private readonly db: InventoryDatabase;
  constructor(db: InventoryDatabase) {
    this.db = db;
  }

  /** Inside a write: the machine's token is `tokenSha256` from now on, replacing any earlier one. */
  issue(mac: string, tokenSha256: string, issuedAt: Date, ttlMs: number, fetches: number, ip: string | null): { expiresAt: string } {
    const expiresAt = new Date(issuedAt.getTime() + ttlMs).toISOString();
    this.db
      .sql(
        `INSERT INTO config_tokens (mac, token_sha256, issued_at, expires_at, fetches_left, ip) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET token_sha256 = excluded.token_sha256, issued_at = excluded.issued_at,
           expires_at = excluded.expires_at, fetches_left = excluded.fetches_left, ip = excluded.ip`,
      )
      .run(mac, tokenSha256, issuedAt.toISOString(), expiresAt, fetches, ip);
    return { expiresAt };
  }

  find(mac: string): ConfigTokenRow | undefined {
    const r = this.db.sql('SELECT * FROM config_tokens WHERE mac = ?').get(mac) as Row | undefined;
    return r && { mac: r.mac, tokenSha256: r.token_sha256, issuedAt: r.issued_at, expiresAt: r.expires_at, fetchesLeft: r.fetches_left, ip: r.ip };
  }

  /** Inside a write: one fetch spent. */
  spend(mac: string): void {
    this.db.sql('UPDATE config_tokens SET fetches_left = fetches_left - 1 WHERE mac = ?').run(mac);
  }

  /** Inside a write: nobody may fetch the machine's config with the token it had. */
  revoke(mac: string): void {
    this.db.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
  }
}
