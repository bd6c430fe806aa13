// `mcpx audit verify` (on the data directory: checks the hash chain) and `mcpx audit export` (JSON lines from a
// running gateway).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AUDIT_HEAD_FILE, verifyAuditLog } from '../audit/index.js';
import type { AuditEntry, AuditHead } from '../audit/index.js';
import { prepareDataDir } from '../main.js';
import { openDatabase } from '../store/index.js';
import { createApiClient, CliError } from './api-client.js';

type Globals = { url: string; token?: string };

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('check that no entry was changed, removed or reordered; names the first bad one')
    .option('--data <dir>', 'data directory (MCPX_DATA_DIR, default ./.mcpx)')
    .action((o: { data?: string }) => {
      const dir = prepareDataDir(o.data ?? process.env.MCPX_DATA_DIR ?? '.mcpx');
      const headFile = join(dir, AUDIT_HEAD_FILE);
      const head = existsSync(headFile) ? (JSON.parse(readFileSync(headFile, 'utf8')) as AuditHead) : undefined;
      const db = openDatabase(join(dir, 'mcpx.db'));
      try {
        const r = verifyAuditLog(db, head);
        if (!r.ok) throw new CliError(`audit log is NOT intact${r.firstBadId !== null ? ` at entry ${r.firstBadId}` : ''}: ${r.reason}`);
        process.stdout.write(`audit log verified: ${r.entries} entries, chain intact\n`);
      } finally {
        db.close();
      }
    });
  audit
    .command('export')
    .description('print audit entries as JSON lines')
    .option('--workspace <name>', 'only this workspace')
    .option('--user <sub>', 'only this user')
    .option('--since <iso>', 'from this time')
    .option('--until <iso>', 'up to this time')
    .option('--decision <d>', 'allow or deny')
    .option('--kind <k>', 'mcp, admin or event')
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const api = createApiClient({ url: g.url, ...(g.token ? { token: g.token } : {}) });
      let after = 0;
      for (let page = 0; page < 100_000; page++) {
        const q = new URLSearchParams({ after: String(after), limit: '5000' });
        for (const k of ['workspace', 'user', 'since', 'until', 'decision', 'kind']) if (o[k]) q.set(k, o[k]);
        const entries = (await api<AuditEntry[]>('GET', `/api/v1/audit?${q.toString()}`)).body;
        for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
        if (entries.length < 5000) return;
        after = entries.at(-1)!.id;
      }
    });
}
