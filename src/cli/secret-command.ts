// `mcpx secret set|ls|rm` on a running gateway (values are write-only), and `mcpx keys rotate` on a data directory.
import { join } from 'node:path';
import type { Command } from 'commander';
import { prepareDataDir } from '../main.js';
import { createSecretService } from '../secrets/index.js';
import { createSecretStore, openDatabase } from '../store/index.js';
import { createApiClient, CliError } from './api-client.js';

type Globals = { url: string; token?: string };

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('the value is read from stdin: pipe it in, e.g. `printf %s "$VALUE" | mcpx secret set WS NAME`');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // One trailing newline is what `echo` adds, not part of the value.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerSecret(program: Command): void {
  const secret = program.command('secret').description("a workspace's secrets (write-only)");
  const client = (cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    return createApiClient({ url: g.url, ...(g.token ? { token: g.token } : {}) });
  };
  secret
    .command('set <workspace> <name>')
    .description('set a secret; the value is read from stdin')
    .action(async (ws: string, name: string, _o: unknown, cmd: Command) => {
      const value = await readStdin();
      if (!value) throw new CliError('the value on stdin is empty');
      await client(cmd)('PUT', `/api/v1/workspaces/${encodeURIComponent(ws)}/secrets/${encodeURIComponent(name)}`, { value });
      process.stdout.write(`secret ${name} set\n`);
    });
  secret
    .command('ls <workspace>')
    .description('list secret names and when they changed')
    .action(async (ws: string, _o: unknown, cmd: Command) => {
      const list = (await client(cmd)<{ name: string; updatedAt: string }[]>('GET', `/api/v1/workspaces/${encodeURIComponent(ws)}/secrets`)).body;
      for (const s of list) process.stdout.write(`${s.name.padEnd(32)} ${s.updatedAt}\n`);
    });
  secret
    .command('rm <workspace> <name>')
    .description('remove a secret (servers lose it at their next restart)')
    .action(async (ws: string, name: string, _o: unknown, cmd: Command) => {
      await client(cmd)('DELETE', `/api/v1/workspaces/${encodeURIComponent(ws)}/secrets/${encodeURIComponent(name)}`);
      process.stdout.write(`secret ${name} removed\n`);
    });

  program
    .command('keys')
    .description('the secrets master key')
    .command('rotate')
    .description('re-wrap every data key under a new master key (the gateway may keep running)')
    .option('--data <dir>', 'data directory (MCPX_DATA_DIR, default ./.mcpx)')
    .action((o: { data?: string }) => {
      const dir = prepareDataDir(o.data ?? process.env.MCPX_DATA_DIR ?? '.mcpx');
      const keyFile = process.env.MCPX_MASTER_KEY_FILE;
      const db = openDatabase(join(dir, 'mcpx.db'));
      try {
        const service = createSecretService({ store: createSecretStore(db), masterKeyFile: keyFile ?? join(dir, 'master.key'), createMasterKey: keyFile === undefined });
        const before = service.masterKeyId;
        const r = service.rotate();
        process.stdout.write(`master key rotated: ${before} -> ${r.masterKeyId}; ${r.keys} data key(s) re-wrapped\n`);
      } finally {
        db.close();
      }
    });
}
