import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../store/index.js';
import { argumentsHash, createAuditLog, verifyAuditLog } from './audit-log.js';
import type { AuditHead } from './audit-log.js';

const dir = mkdtempSync(join(tmpdir(), 'mcpx-audit-'));
const heads: Record<string, AuditHead> = {};
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logWith(n: number, file: string) {
  const db = openDatabase(join(dir, file));
  const log = createAuditLog(db, (h) => (heads[file] = h));
  for (let i = 0; i < n; i++) {
    log.append({ kind: 'mcp', actor: `user${i % 3}`, workspace: 'demo', method: 'tools/call', target: 'echo', decision: i % 4 ? 'allow' : 'deny', latencyMs: i / 7, argsHash: argumentsHash({ i }) });
  }
  log.flush();
  return { db, log };
}

describe('audit log', () => {
  it('verifies an untouched log, across restarts of the writer', () => {
    const { db } = logWith(20, 'a.db');
    const again = createAuditLog(db);
    again.append({ kind: 'admin', actor: 'root', method: 'DELETE /api/v1/workspaces/demo', outcome: '202' });
    again.flush();
    expect(verifyAuditLog(db)).toEqual({ ok: true, entries: 21 });
    expect(again.query({ actor: 'user1' }).length).toBe(7);
    expect(again.query({ decision: 'deny' }).map((e) => e.id)).toEqual([1, 5, 9, 13, 17]);
    db.close();
  });

  it('refuses updates and deletes through SQL', () => {
    const { db } = logWith(3, 'b.db');
    expect(() => db.prepare("UPDATE audit SET actor = 'x' WHERE id = 2").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit WHERE id = 2').run()).toThrow(/append-only/);
    db.close();
  });

  it('names the first changed, removed or reordered entry', () => {
    const tamper = (file: string, sql: string[]) => {
      const { db } = logWith(10, file);
      db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
      for (const s of sql) db.exec(s);
      const r = verifyAuditLog(db, heads[file]);
      db.close();
      return r;
    };
    expect(tamper('c.db', ["UPDATE audit SET decision = 'allow' WHERE id = 5"])).toMatchObject({ ok: false, firstBadId: 5, reason: expect.stringContaining('changed') as string });
    expect(tamper('d.db', ['DELETE FROM audit WHERE id = 4'])).toMatchObject({ ok: false, firstBadId: 5 });
    expect(tamper('e.db', ['UPDATE audit SET id = 100 WHERE id = 3', 'UPDATE audit SET id = 3 WHERE id = 7', 'UPDATE audit SET id = 7 WHERE id = 100'])).toMatchObject({ ok: false, firstBadId: 3 });
    expect(tamper('f.db', ['DELETE FROM audit WHERE id = 10'])).toMatchObject({ ok: false, firstBadId: 10, reason: expect.stringContaining('cut off') as string });
    expect(tamper('g.db', [])).toMatchObject({ ok: false, firstBadId: null, reason: expect.stringContaining('triggers') as string });
  });
});
