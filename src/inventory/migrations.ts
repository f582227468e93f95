// Versioned schema migrations. PRAGMA user_version holds the version the file is at; each step
// runs in its own transaction. Never edit a released step: append a new one.

export type Migration = { version: number; description: string; sql: string };

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'nodes and node events',
    sql: `
      CREATE TABLE nodes (
        mac           TEXT PRIMARY KEY,
        role          TEXT NOT NULL DEFAULT 'unassigned' CHECK (role IN ('unassigned', 'controlplane', 'worker')),
        state         TEXT NOT NULL DEFAULT 'discovered'
                      CHECK (state IN ('discovered', 'assigned', 'installing', 'installed', 'reinstall-requested')),
        hostname      TEXT UNIQUE,
        arch          TEXT CHECK (arch IN ('amd64', 'arm64')),
        firmware      TEXT CHECK (firmware IN ('bios', 'uefi')),
        uuid          TEXT,
        serial        TEXT,
        manufacturer  TEXT,
        product       TEXT,
        last_ip       TEXT,
        install_disk  TEXT,
        disk_selector TEXT,
        labels        TEXT NOT NULL DEFAULT '{}',
        talos_version TEXT,
        local_boot    TEXT NOT NULL DEFAULT 'exit' CHECK (local_boot IN ('exit', 'sanboot', 'http404')),
        first_seen    TEXT NOT NULL,
        last_seen     TEXT,
        updated_at    TEXT NOT NULL
      ) STRICT;
      CREATE INDEX nodes_role ON nodes (role);
      -- Events outlive their node (an audit trail), so no foreign key.
      CREATE TABLE node_events (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        mac    TEXT NOT NULL,
        at     TEXT NOT NULL,
        type   TEXT NOT NULL,
        actor  TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX node_events_mac ON node_events (mac, id);
    `,
  },
  {
    version: 2,
    description: 'per-node network and config patch; config fetch tokens',
    sql: `
      ALTER TABLE nodes ADD COLUMN network TEXT;
      ALTER TABLE nodes ADD COLUMN config_patch TEXT;
      -- One outstanding machine-config token per node: issuing a new one replaces the old.
      -- Only the SHA-256 of the token is stored.
      CREATE TABLE config_tokens (
        mac          TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL,
        issued_at    TEXT NOT NULL,
        expires_at   TEXT NOT NULL,
        fetches_left INTEGER NOT NULL CHECK (fetches_left >= 0)
      ) STRICT;
    `,
  },
];

export const LATEST_SCHEMA = MIGRATIONS.at(-1)!.version;
