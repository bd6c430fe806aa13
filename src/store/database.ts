// The embedded SQLite store: opens the database in the data directory and applies migrations in order.
import Database from 'better-sqlite3';

type Db = Database.Database;

/** Ordered migrations; each runs once, inside a transaction, and is recorded in schema_migrations. */
const MIGRATIONS: readonly { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: 'workspaces-events-members',
    sql: `
      CREATE TABLE workspaces (
        uid TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE members (
        workspace_uid TEXT NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
        user TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('owner','member','viewer')),
        PRIMARY KEY (workspace_uid, user)
      );
      -- Events outlive their workspace row on purpose: they are the record of what happened.
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_uid TEXT NOT NULL,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        server TEXT,
        detail TEXT
      );
      CREATE INDEX events_by_workspace ON events(workspace_uid, id);
    `,
  },
  {
    id: 2,
    name: 'secrets',
    sql: `
      -- One data key per workspace, wrapped by the master key named by master_key_id.
      CREATE TABLE workspace_keys (
        workspace_uid TEXT PRIMARY KEY REFERENCES workspaces(uid) ON DELETE CASCADE,
        master_key_id TEXT NOT NULL,
        wrapped BLOB NOT NULL,
        created_at TEXT NOT NULL,
        rotated_at TEXT
      );
      -- Values are stored sealed only: nonce || ciphertext || tag under the workspace's data key.
      CREATE TABLE secrets (
        workspace_uid TEXT NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sealed BLOB NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace_uid, name)
      );
    `,
  },
  {
    id: 3,
    name: 'audit',
    sql: `
      -- Append-only and hash-chained: each row's hash covers its fields and the previous row's hash.
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        workspace TEXT,
        server TEXT,
        method TEXT,
        target TEXT,
        decision TEXT,
        reason TEXT,
        latency_ms REAL,
        outcome TEXT,
        args_hash TEXT,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_by_workspace ON audit(workspace, id);
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `,
  },
  {
    id: 4,
    name: 'converged-generation',
    sql: `
      -- The spec generation the engine was last made to match: a start-up adopts what runs when it is the current
      -- one, and finishes a create or an apply cut short when it is not.
      ALTER TABLE workspaces ADD COLUMN converged_generation INTEGER;
      -- A workspace caught mid-create or mid-apply (creating) is not known to match: it is converged in full.
      UPDATE workspaces SET converged_generation = generation WHERE status IN ('ready', 'degraded', 'hibernating');
    `,
  },
];

export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // With WAL, NORMAL syncs at checkpoints: a crash of the process loses nothing, a power cut only the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare('SELECT id FROM schema_migrations').all().map((r) => (r as { id: number }).id));
  for (const m of MIGRATIONS) {
    if (applied.has(m.id)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, new Date().toISOString());
    })();
  }
}

export type { Db };
