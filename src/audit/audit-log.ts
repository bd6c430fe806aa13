// The audit trail: append-only, every entry chained to the one before by a SHA-256 hash, so that a changed,
// removed or reordered entry is detected by `verify`. Appends are batched into one transaction every 20 ms to keep
// them off the request path's latency (at most 20 ms of entries are held in memory).
import { createHash } from 'node:crypto';
import type { Db } from '../store/index.js';

export type AuditKind = 'mcp' | 'admin' | 'event';

export interface AuditInput {
  kind: AuditKind;
  actor?: string;
  workspace?: string;
  server?: string;
  method?: string;
  /** The tool, prompt or resource a request named. */
  target?: string;
  decision?: 'allow' | 'deny';
  reason?: string;
  latencyMs?: number;
  outcome?: string;
  argsHash?: string;
  detail?: Record<string, unknown>;
}

export interface AuditEntry extends AuditInput {
  id: number;
  at: string;
  prevHash: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);
/** Beside the database: the newest entry's id and hash. */
export const AUDIT_HEAD_FILE = 'audit-head.json';

interface Row {
  id: number;
  at: string;
  kind: AuditKind;
  actor: string | null;
  workspace: string | null;
  server: string | null;
  method: string | null;
  target: string | null;
  decision: 'allow' | 'deny' | null;
  reason: string | null;
  latency_ms: number | null;
  outcome: string | null;
  args_hash: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

/** The canonical text an entry's hash covers: fixed field order, nulls explicit. */
export function entryHash(prevHash: string, r: Omit<Row, 'prev_hash' | 'hash'> & Partial<Pick<Row, 'prev_hash' | 'hash'>>): string {
  const fields = [r.id, r.at, r.kind, r.actor, r.workspace, r.server, r.method, r.target, r.decision, r.reason, r.latency_ms, r.outcome, r.args_hash, r.detail];
  return createHash('sha256').update(prevHash).update('\n').update(JSON.stringify(fields)).digest('hex');
}

/** A digest of a request's arguments, for the trail instead of their values. */
export function argumentsHash(args: unknown): string | undefined {
  if (args === undefined) return undefined;
  return `sha256:${createHash('sha256').update(JSON.stringify(args)).digest('hex')}`;
}

function toEntry(r: Row): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    kind: r.kind,
    ...(r.actor !== null ? { actor: r.actor } : {}),
    ...(r.workspace !== null ? { workspace: r.workspace } : {}),
    ...(r.server !== null ? { server: r.server } : {}),
    ...(r.method !== null ? { method: r.method } : {}),
    ...(r.target !== null ? { target: r.target } : {}),
    ...(r.decision !== null ? { decision: r.decision } : {}),
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ...(r.latency_ms !== null ? { latencyMs: r.latency_ms } : {}),
    ...(r.outcome !== null ? { outcome: r.outcome } : {}),
    ...(r.args_hash !== null ? { argsHash: r.args_hash } : {}),
    ...(r.detail !== null ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditQuery {
  workspace?: string;
  actor?: string;
  since?: string;
  until?: string;
  decision?: 'allow' | 'deny';
  kind?: AuditKind;
  afterId?: number;
  limit?: number;
}

export interface AuditHead {
  id: number;
  hash: string;
}

/**
 * `onFlush` receives the newest entry after each write: kept outside the database (a file beside it), it lets
 * `verify` notice entries cut off the end, which the chain alone cannot show.
 */
const FLUSH_EVERY_MS = 20;
const FLUSH_AT = 500;

export function createAuditLog(db: Db, onFlush?: (head: AuditHead) => void) {
  const insert = db.prepare(
    'INSERT INTO audit (id, at, kind, actor, workspace, server, method, target, decision, reason, latency_ms, outcome, args_hash, detail, prev_hash, hash) VALUES (@id, @at, @kind, @actor, @workspace, @server, @method, @target, @decision, @reason, @latency_ms, @outcome, @args_hash, @detail, @prev_hash, @hash)',
  );
  const last = db.prepare('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
  let nextId = (last?.id ?? 0) + 1;
  let prevHash = last?.hash ?? GENESIS;
  let queue: Row[] = [];
  let scheduled = false;
  const writeAll = db.transaction((rows: Row[]) => {
    for (const r of rows) insert.run(r);
  });

  const flush = () => {
    scheduled = false;
    if (queue.length === 0) return;
    const rows = queue;
    queue = [];
    writeAll(rows);
    const head = rows.at(-1)!;
    onFlush?.({ id: head.id, hash: head.hash });
  };

  return {
    append(input: AuditInput): void {
      const base = {
        id: nextId++,
        at: new Date().toISOString(),
        kind: input.kind,
        actor: input.actor ?? null,
        workspace: input.workspace ?? null,
        server: input.server ?? null,
        method: input.method ?? null,
        target: input.target ?? null,
        decision: input.decision ?? null,
        reason: input.reason ?? null,
        latency_ms: input.latencyMs === undefined ? null : Math.round(input.latencyMs * 1000) / 1000,
        outcome: input.outcome ?? null,
        args_hash: input.argsHash ?? null,
        detail: input.detail ? JSON.stringify(input.detail) : null,
      };
      const hash = entryHash(prevHash, base);
      queue.push({ ...base, prev_hash: prevHash, hash });
      prevHash = hash;
      // Batched: one transaction every few milliseconds under load instead of one per request.
      if (queue.length >= FLUSH_AT) flush();
      else if (!scheduled) {
        scheduled = true;
        setTimeout(flush, FLUSH_EVERY_MS).unref();
      }
    },
    flush,
    query(q: AuditQuery): AuditEntry[] {
      flush();
      const filters: [unknown, string, string][] = [
        [q.workspace, 'workspace = @workspace', 'workspace'],
        [q.actor, 'actor = @actor', 'actor'],
        [q.since, 'at >= @since', 'since'],
        [q.until, 'at <= @until', 'until'],
        [q.decision, 'decision = @decision', 'decision'],
        [q.kind, 'kind = @kind', 'kind'],
        [q.afterId, 'id > @afterId', 'afterId'],
      ];
      const where: string[] = [];
      const params: Record<string, unknown> = {};
      for (const [value, clause, name] of filters) {
        if (value === undefined || value === '' || value === 0) continue;
        where.push(clause);
        params[name] = value;
      }
      const limit = Math.min(Math.max(q.limit ?? 1000, 1), 10_000);
      const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${limit}`;
      return (db.prepare(sql).all(params) as Row[]).map(toEntry);
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

export type VerifyResult = { ok: true; entries: number } | { ok: false; entries: number; firstBadId: number | null; reason: string };

/** Walks the whole chain. Reports the first entry that was changed, removed before, or moved. */
export function verifyAuditLog(db: Db, head?: AuditHead): VerifyResult {
  const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'").all() as { name: string }[];
  let prev = GENESIS;
  let expectedId = 1;
  let n = 0;
  for (const r of db.prepare('SELECT * FROM audit ORDER BY id').iterate() as IterableIterator<Row>) {
    n++;
    if (r.id !== expectedId) return { ok: false, entries: n, firstBadId: r.id, reason: `entry ${r.id} follows entry ${expectedId - 1}: entries are missing or were moved` };
    if (r.prev_hash !== prev) return { ok: false, entries: n, firstBadId: r.id, reason: `entry ${r.id} does not chain to the entry before it (removed, reordered or changed)` };
    if (entryHash(prev, r) !== r.hash) return { ok: false, entries: n, firstBadId: r.id, reason: `entry ${r.id} was changed after it was written` };
    prev = r.hash;
    expectedId++;
  }
  if (head && (expectedId - 1 < head.id || prev !== head.hash)) {
    return { ok: false, entries: n, firstBadId: expectedId - 1 < head.id ? expectedId : head.id, reason: `the log ends at entry ${expectedId - 1} but entry ${head.id} was written: entries were cut off the end or changed` };
  }
  if (triggers.length < 2) return { ok: false, entries: n, firstBadId: null, reason: 'the append-only triggers on the audit table were removed' };
  return { ok: true, entries: n };
}
