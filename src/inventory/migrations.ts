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
  {
    version: 3,
    description: 'bootstrap lock, its history, and the operator-chosen bootstrap node',
    sql: `
      ALTER TABLE nodes ADD COLUMN bootstrap INTEGER NOT NULL DEFAULT 0 CHECK (bootstrap IN (0, 1));
      -- One row per cluster. Times are milliseconds since the epoch (lease arithmetic).
      CREATE TABLE bootstrap_lock (
        cluster          TEXT PRIMARY KEY,
        state            TEXT NOT NULL CHECK (state IN ('unclaimed', 'elected', 'bootstrap-sent', 'bootstrapped')),
        holder           TEXT,
        holder_addr      TEXT,
        epoch            INTEGER NOT NULL CHECK (epoch >= 0),
        owner            TEXT,
        lease_expires_at INTEGER,
        sent_at          INTEGER,
        retry_at         INTEGER,
        attempts         INTEGER NOT NULL DEFAULT 0,
        updated_at       INTEGER NOT NULL
      ) STRICT;
      -- Every transition, never pruned: the audit trail of how the cluster came to be.
      CREATE TABLE bootstrap_history (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        cluster    TEXT NOT NULL,
        at         INTEGER NOT NULL,
        from_state TEXT NOT NULL,
        to_state   TEXT NOT NULL,
        holder     TEXT,
        epoch      INTEGER NOT NULL,
        actor      TEXT NOT NULL,
        note       TEXT NOT NULL
      ) STRICT;
      CREATE INDEX bootstrap_history_cluster ON bootstrap_history (cluster, id);
    `,
  },
  {
    version: 4,
    description: 'what Talos reports: stage, readiness, addresses; event ids seen; the kernel-log ring',
    sql: `
      ALTER TABLE nodes ADD COLUMN talos_stage TEXT;
      ALTER TABLE nodes ADD COLUMN talos_ready INTEGER CHECK (talos_ready IN (0, 1));
      ALTER TABLE nodes ADD COLUMN talos_addresses TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE nodes ADD COLUMN talos_seen TEXT;
      -- Talos resends the event whose acknowledgement it did not get: remember what was recorded.
      CREATE TABLE talos_event_ids (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        mac      TEXT NOT NULL,
        event_id TEXT NOT NULL,
        UNIQUE (mac, event_id)
      ) STRICT;
      -- Kernel messages per node, a ring: the oldest lines are pruned as new ones arrive.
      CREATE TABLE kernel_logs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        mac         TEXT NOT NULL,
        received_at TEXT NOT NULL,
        talos_time  TEXT,
        level       TEXT,
        facility    TEXT,
        msg         TEXT NOT NULL,
        fields      TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX kernel_logs_mac ON kernel_logs (mac, id);
    `,
  },
  {
    version: 5,
    description: 'why an assigned machine is held back from installing',
    sql: `
      ALTER TABLE nodes ADD COLUMN waiting TEXT;
    `,
  },
  {
    version: 6,
    description: 'install windows bound to an address, conflicts, config tokens bound to the script address, audit events kept apart from boot noise, a write probe for readiness',
    sql: `
      ALTER TABLE nodes ADD COLUMN window_until TEXT;
      ALTER TABLE nodes ADD COLUMN window_ip TEXT;
      ALTER TABLE nodes ADD COLUMN conflict TEXT;
      ALTER TABLE config_tokens ADD COLUMN ip TEXT;
      -- Operator and system actions are never pruned to make room for what machines send.
      ALTER TABLE node_events ADD COLUMN audit INTEGER NOT NULL DEFAULT 0 CHECK (audit IN (0, 1));
      UPDATE node_events SET audit = 1 WHERE actor NOT IN ('boot', 'talos');
      CREATE INDEX node_events_noise ON node_events (mac, audit, id);
      -- Nodes without a window from before: an assigned, not yet installed machine keeps booting.
      UPDATE nodes SET window_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+4 hours')
        WHERE role != 'unassigned' AND state != 'installed';
      CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL) STRICT;
    `,
  },
  {
    version: 7,
    description: "firmware 'u-boot' (arm64 boards); SQLite cannot widen a CHECK in place, so the table is rebuilt",
    sql: `
      CREATE TABLE nodes_v7 (
        mac             TEXT PRIMARY KEY,
        role            TEXT NOT NULL DEFAULT 'unassigned' CHECK (role IN ('unassigned', 'controlplane', 'worker')),
        state           TEXT NOT NULL DEFAULT 'discovered'
                        CHECK (state IN ('discovered', 'assigned', 'installing', 'installed', 'reinstall-requested')),
        hostname        TEXT UNIQUE,
        arch            TEXT CHECK (arch IN ('amd64', 'arm64')),
        firmware        TEXT CHECK (firmware IN ('bios', 'uefi', 'u-boot')),
        uuid            TEXT,
        serial          TEXT,
        manufacturer    TEXT,
        product         TEXT,
        last_ip         TEXT,
        install_disk    TEXT,
        disk_selector   TEXT,
        labels          TEXT NOT NULL DEFAULT '{}',
        talos_version   TEXT,
        local_boot      TEXT NOT NULL DEFAULT 'exit' CHECK (local_boot IN ('exit', 'sanboot', 'http404')),
        first_seen      TEXT NOT NULL,
        last_seen       TEXT,
        updated_at      TEXT NOT NULL,
        network         TEXT,
        config_patch    TEXT,
        bootstrap       INTEGER NOT NULL DEFAULT 0 CHECK (bootstrap IN (0, 1)),
        talos_stage     TEXT,
        talos_ready     INTEGER CHECK (talos_ready IN (0, 1)),
        talos_addresses TEXT NOT NULL DEFAULT '[]',
        talos_seen      TEXT,
        waiting         TEXT,
        window_until    TEXT,
        window_ip       TEXT,
        conflict        TEXT
      ) STRICT;
      INSERT INTO nodes_v7 (mac, role, state, hostname, arch, firmware, uuid, serial, manufacturer, product, last_ip, install_disk, disk_selector, labels, talos_version, local_boot, first_seen, last_seen, updated_at, network, config_patch, bootstrap, talos_stage, talos_ready, talos_addresses, talos_seen, waiting, window_until, window_ip, conflict) SELECT mac, role, state, hostname, arch, firmware, uuid, serial, manufacturer, product, last_ip, install_disk, disk_selector, labels, talos_version, local_boot, first_seen, last_seen, updated_at, network, config_patch, bootstrap, talos_stage, talos_ready, talos_addresses, talos_seen, waiting, window_until, window_ip, conflict FROM nodes;
      DROP TABLE nodes;
      ALTER TABLE nodes_v7 RENAME TO nodes;
      CREATE INDEX nodes_role ON nodes (role);
    `,
  },
  {
    version: 8,
    description: 'indexes for every lookup on the boot path: last_ip, and the addresses Talos reported (kept by triggers)',
    sql: `
      CREATE INDEX nodes_last_ip ON nodes (last_ip, last_seen);
      -- talos_addresses is a JSON list, which SQLite cannot index; this table mirrors it, one row per
      -- address, and the triggers keep it equal to the list whatever writes the node.
      CREATE TABLE node_addresses (
        ip  TEXT NOT NULL,
        mac TEXT NOT NULL,
        PRIMARY KEY (ip, mac)
      ) STRICT, WITHOUT ROWID;
      INSERT OR IGNORE INTO node_addresses (ip, mac) SELECT value, mac FROM nodes, json_each(nodes.talos_addresses);
      CREATE TRIGGER node_addresses_insert AFTER INSERT ON nodes BEGIN
        INSERT OR IGNORE INTO node_addresses (ip, mac) SELECT value, NEW.mac FROM json_each(NEW.talos_addresses);
      END;
      CREATE TRIGGER node_addresses_update AFTER UPDATE OF talos_addresses ON nodes BEGIN
        DELETE FROM node_addresses WHERE mac = OLD.mac;
        INSERT OR IGNORE INTO node_addresses (ip, mac) SELECT value, NEW.mac FROM json_each(NEW.talos_addresses);
      END;
      CREATE TRIGGER node_addresses_delete AFTER DELETE ON nodes BEGIN
        DELETE FROM node_addresses WHERE mac = OLD.mac;
      END;
    `,
  },
  {
    version: 9,
    description: 'power settings per node (method, BMC address and user, the password file path; never the password)',
    sql: `ALTER TABLE nodes ADD COLUMN power TEXT;`,
  },
  {
    version: 10,
    description: "the bootstrap lock's recovering state and the snapshot a recovery restores",
    // SQLite cannot change a CHECK constraint in place: the table is rebuilt, rows copied.
    sql: `
      CREATE TABLE bootstrap_lock_v10 (
        cluster          TEXT PRIMARY KEY,
        state            TEXT NOT NULL CHECK (state IN ('unclaimed', 'elected', 'recovering', 'bootstrap-sent', 'bootstrapped')),
        holder           TEXT,
        holder_addr      TEXT,
        epoch            INTEGER NOT NULL CHECK (epoch >= 0),
        owner            TEXT,
        lease_expires_at INTEGER,
        sent_at          INTEGER,
        retry_at         INTEGER,
        attempts         INTEGER NOT NULL DEFAULT 0,
        updated_at       INTEGER NOT NULL,
        recovery         TEXT
      ) STRICT;
      INSERT INTO bootstrap_lock_v10 (cluster, state, holder, holder_addr, epoch, owner, lease_expires_at, sent_at, retry_at, attempts, updated_at)
        SELECT cluster, state, holder, holder_addr, epoch, owner, lease_expires_at, sent_at, retry_at, attempts, updated_at FROM bootstrap_lock;
      DROP TABLE bootstrap_lock;
      ALTER TABLE bootstrap_lock_v10 RENAME TO bootstrap_lock;
    `,
  },
  {
    version: 11,
    description: 'an index in the node list\'s order (first seen, then MAC), so a page of it is read, not the table sorted',
    sql: `CREATE INDEX nodes_listing ON nodes (first_seen, mac);`,
  },
  {
    version: 12,
    description: 'the node fields a fleet file sets (JSON list): read-only in the API while the file sets them',
    sql: `ALTER TABLE nodes ADD COLUMN fleet_fields TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 13,
    description: "the node's own boot profile (null: its role's or the cluster's, see profiles.*)",
    sql: `ALTER TABLE nodes ADD COLUMN profile TEXT;`,
  },
  {
    version: 14,
    description: 'an installed machine is never held: a conflict or hold left on one by an older Genesis is settled, and its history says so',
    // Older releases left both on a machine marked installed while held (node-lifecycle.ts now
    // clears them); the lists kept showing "held" for a machine that is served nothing anyway.
    sql: `
      INSERT INTO node_events (mac, at, type, actor, detail, audit)
        SELECT mac, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'conflict-resolved', 'system', json_object('was', conflict, 'by', 'upgrade'), 1
        FROM nodes WHERE state = 'installed' AND conflict IS NOT NULL;
      INSERT INTO node_events (mac, at, type, actor, detail, audit)
        SELECT mac, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'boot-waiting', 'system', json_object('reason', NULL), 1
        FROM nodes WHERE state = 'installed' AND waiting IS NOT NULL;
      UPDATE nodes SET conflict = NULL, waiting = NULL WHERE state = 'installed' AND (conflict IS NOT NULL OR waiting IS NOT NULL);
    `,
  },
];

export const LATEST_SCHEMA = MIGRATIONS.at(-1)!.version;
