// Repository for workspaces, their members and their lifecycle events.
import { randomUUID } from 'node:crypto';
import type { Db } from './database.js';
import type { Role, WorkspaceSpec } from '../config/spec.js';

export const WORKSPACE_STATUSES = ['creating', 'ready', 'degraded', 'quarantined', 'hibernating', 'stopped', 'deleting', 'failed'] as const;
export type WorkspaceStatus = (typeof WORKSPACE_STATUSES)[number];

export interface WorkspaceRecord {
  uid: string;
  name: string;
  owner: string;
  spec: WorkspaceSpec;
  status: WorkspaceStatus;
  generation: number;
  /** The generation the engine was last made to match by a converge that finished; undefined before the first. */
  convergedGeneration?: number;
  createdAt: string;
  updatedAt: string;
}

export interface EventRecord {
  id: number;
  type: string;
  at: string;
  server?: string;
  detail?: Record<string, unknown>;
}

interface WorkspaceRow {
  uid: string;
  name: string;
  owner: string;
  spec: string;
  status: WorkspaceStatus;
  generation: number;
  converged_generation: number | null;
  created_at: string;
  updated_at: string;
}

interface EventRow {
  id: number;
  type: string;
  at: string;
  server: string | null;
  detail: string | null;
}

function toRecord(r: WorkspaceRow): WorkspaceRecord {
  return {
    uid: r.uid,
    name: r.name,
    owner: r.owner,
    spec: JSON.parse(r.spec) as WorkspaceSpec,
    status: r.status,
    generation: r.generation,
    ...(r.converged_generation !== null ? { convergedGeneration: r.converged_generation } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function createWorkspaceStore(db: Db, hooks: { onEvent?(workspace: string, event: EventRecord): void } = {}) {
  const q = {
    insert: db.prepare(
      'INSERT INTO workspaces (uid, name, owner, spec, status, generation, created_at, updated_at) VALUES (@uid, @name, @owner, @spec, @status, 1, @now, @now)',
    ),
    byName: db.prepare('SELECT * FROM workspaces WHERE name = ?'),
    byUid: db.prepare('SELECT * FROM workspaces WHERE uid = ?'),
    all: db.prepare('SELECT * FROM workspaces ORDER BY name'),
    forUser: db.prepare(
      'SELECT w.* FROM workspaces w WHERE w.owner = @user OR EXISTS (SELECT 1 FROM members m WHERE m.workspace_uid = w.uid AND m.user = @user) ORDER BY w.name',
    ),
    setStatus: db.prepare('UPDATE workspaces SET status = ?, updated_at = ? WHERE uid = ?'),
    setConverged: db.prepare('UPDATE workspaces SET converged_generation = ? WHERE uid = ?'),
    setSpec: db.prepare('UPDATE workspaces SET spec = ?, generation = generation + 1, updated_at = ? WHERE uid = ?'),
    remove: db.prepare('DELETE FROM workspaces WHERE uid = ?'),
    clearMembers: db.prepare("DELETE FROM members WHERE workspace_uid = ? AND role != 'owner'"),
    upsertMember: db.prepare(
      'INSERT INTO members (workspace_uid, user, role) VALUES (?, ?, ?) ON CONFLICT (workspace_uid, user) DO UPDATE SET role = excluded.role',
    ),
    deleteMember: db.prepare('DELETE FROM members WHERE workspace_uid = ? AND user = ?'),
    role: db.prepare('SELECT role FROM members WHERE workspace_uid = ? AND user = ?'),
    members: db.prepare('SELECT user, role FROM members WHERE workspace_uid = ? ORDER BY user'),
    addEvent: db.prepare('INSERT INTO events (workspace_uid, type, at, server, detail) VALUES (?, ?, ?, ?, ?)'),
    events: db.prepare('SELECT id, type, at, server, detail FROM events WHERE workspace_uid = ? AND id > ? ORDER BY id'),
  };

  // Roles are read on every MCP request; only this store writes the members table, so a per-workspace cache that
  // each write to that workspace's members drops stays exact. Non-members are cached too (as null), bounded per
  // workspace so that a flood of unknown subjects cannot grow it without limit.
  const roleCache = new Map<string, Map<string, Role | null>>();
  const ROLE_CACHE_PER_WORKSPACE = 4096;
  const membersChanged = (uid: string) => roleCache.delete(uid);

  const syncMembers = (uid: string, owner: string, members: Record<string, Role>) => {
    membersChanged(uid);
    q.clearMembers.run(uid);
    q.upsertMember.run(uid, owner, 'owner');
    for (const [user, role] of Object.entries(members)) {
      if (user !== owner) q.upsertMember.run(uid, user, role);
    }
  };

  return {
    create(spec: WorkspaceSpec, owner: string): WorkspaceRecord {
      const uid = randomUUID();
      const now = new Date().toISOString();
      db.transaction(() => {
        q.insert.run({ uid, name: spec.name, owner, spec: JSON.stringify(spec), status: 'creating', now });
        syncMembers(uid, owner, spec.members);
      })();
      return toRecord(q.byUid.get(uid) as WorkspaceRow);
    },
    get(name: string): WorkspaceRecord | undefined {
      const r = q.byName.get(name) as WorkspaceRow | undefined;
      return r && toRecord(r);
    },
    getByUid(uid: string): WorkspaceRecord | undefined {
      const r = q.byUid.get(uid) as WorkspaceRow | undefined;
      return r && toRecord(r);
    },
    list(): WorkspaceRecord[] {
      return (q.all.all() as WorkspaceRow[]).map(toRecord);
    },
    listForUser(user: string): WorkspaceRecord[] {
      return (q.forUser.all({ user }) as WorkspaceRow[]).map(toRecord);
    },
    setStatus(uid: string, status: WorkspaceStatus): void {
      q.setStatus.run(status, new Date().toISOString(), uid);
    },
    /** Records that the engine matches this generation of the spec (a converge of it finished). */
    setConverged(uid: string, generation: number): void {
      q.setConverged.run(generation, uid);
    },
    replaceSpec(uid: string, spec: WorkspaceSpec): void {
      db.transaction(() => {
        q.setSpec.run(JSON.stringify(spec), new Date().toISOString(), uid);
        const owner = (q.byUid.get(uid) as WorkspaceRow).owner;
        syncMembers(uid, owner, spec.members);
      })();
    },
    remove(uid: string): void {
      membersChanged(uid);
      q.remove.run(uid);
    },
    roleOf(uid: string, user: string): Role | undefined {
      let users = roleCache.get(uid);
      const cached = users?.get(user);
      if (cached !== undefined) return cached ?? undefined;
      const role = (q.role.get(uid, user) as { role: Role } | undefined)?.role;
      if (!users || users.size >= ROLE_CACHE_PER_WORKSPACE) roleCache.set(uid, (users = new Map<string, Role | null>()));
      users.set(user, role ?? null);
      return role;
    },
    members(uid: string): { user: string; role: Role }[] {
      return q.members.all(uid) as { user: string; role: Role }[];
    },
    setMember(uid: string, user: string, role: Role): void {
      membersChanged(uid);
      q.upsertMember.run(uid, user, role);
    },
    removeMember(uid: string, user: string): void {
      membersChanged(uid);
      q.deleteMember.run(uid, user);
    },
    addEvent(uid: string, type: string, server?: string, detail?: Record<string, unknown>): EventRecord {
      const at = new Date().toISOString();
      const info = q.addEvent.run(uid, type, at, server ?? null, detail ? JSON.stringify(detail) : null);
      const record: EventRecord = { id: Number(info.lastInsertRowid), type, at, ...(server ? { server } : {}), ...(detail ? { detail } : {}) };
      if (hooks.onEvent) hooks.onEvent((q.byUid.get(uid) as WorkspaceRow | undefined)?.name ?? uid, record);
      return record;
    },
    events(uid: string, afterId = 0): EventRecord[] {
      return (q.events.all(uid, afterId) as EventRow[]).map((r) => ({
        id: r.id,
        type: r.type,
        at: r.at,
        ...(r.server ? { server: r.server } : {}),
        ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
      }));
    },
  };
}

export type WorkspaceStore = ReturnType<typeof createWorkspaceStore>;
