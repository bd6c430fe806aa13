// Repository for wrapped data keys and sealed secret values. It never sees a plaintext.
import type { Db } from './database.js';

export interface WrappedKey {
  workspaceUid: string;
  masterKeyId: string;
  wrapped: Buffer;
}

export function createSecretStore(db: Db) {
  const q = {
    key: db.prepare('SELECT workspace_uid AS workspaceUid, master_key_id AS masterKeyId, wrapped FROM workspace_keys WHERE workspace_uid = ?'),
    keys: db.prepare('SELECT workspace_uid AS workspaceUid, master_key_id AS masterKeyId, wrapped FROM workspace_keys'),
    insertKey: db.prepare('INSERT INTO workspace_keys (workspace_uid, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?)'),
    rewrap: db.prepare('UPDATE workspace_keys SET master_key_id = ?, wrapped = ?, rotated_at = ? WHERE workspace_uid = ?'),
    put: db.prepare(
      'INSERT INTO secrets (workspace_uid, name, sealed, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (workspace_uid, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at',
    ),
    get: db.prepare('SELECT sealed FROM secrets WHERE workspace_uid = ? AND name = ?'),
    list: db.prepare('SELECT name, updated_at AS updatedAt FROM secrets WHERE workspace_uid = ? ORDER BY name'),
    all: db.prepare('SELECT name, sealed FROM secrets WHERE workspace_uid = ?'),
    remove: db.prepare('DELETE FROM secrets WHERE workspace_uid = ? AND name = ?'),
  };
  return {
    key(uid: string): WrappedKey | undefined {
      return q.key.get(uid) as WrappedKey | undefined;
    },
    keys(): WrappedKey[] {
      return q.keys.all() as WrappedKey[];
    },
    insertKey(uid: string, masterKeyId: string, wrapped: Buffer): void {
      q.insertKey.run(uid, masterKeyId, wrapped, new Date().toISOString());
    },
    /** Re-wraps many data keys in one transaction: all or nothing. */
    rewrapAll(items: { workspaceUid: string; masterKeyId: string; wrapped: Buffer }[]): void {
      const now = new Date().toISOString();
      db.transaction(() => {
        for (const i of items) q.rewrap.run(i.masterKeyId, i.wrapped, now, i.workspaceUid);
      })();
    },
    put(uid: string, name: string, sealed: Buffer): void {
      q.put.run(uid, name, sealed, new Date().toISOString());
    },
    get(uid: string, name: string): Buffer | undefined {
      return (q.get.get(uid, name) as { sealed: Buffer } | undefined)?.sealed;
    },
    list(uid: string): { name: string; updatedAt: string }[] {
      return q.list.all(uid) as { name: string; updatedAt: string }[];
    },
    all(uid: string): { name: string; sealed: Buffer }[] {
      return q.all.all(uid) as { name: string; sealed: Buffer }[];
    },
    remove(uid: string, name: string): boolean {
      return q.remove.run(uid, name).changes > 0;
    },
  };
}

export type SecretStore = ReturnType<typeof createSecretStore>;
