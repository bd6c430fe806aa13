// `mcpx token create`: signs a token with the embedded issuer's key from the data directory.
import type { Command } from 'commander';
import { loadOrCreateSigningKey, parseDuration, signToken } from '../auth/index.js';
import { prepareDataDir } from '../main.js';
import { CliError } from './api-client.js';

export function registerToken(program: Command): void {
  const token = program.command('token').description('tokens of the embedded issuer');
  token
    .command('create')
    .description('print one signed JWT on stdout')
    .requiredOption('--sub <user>', 'the user (sub claim)')
    .option('--admin', 'grant the mcpx:admin scope', false)
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--data <dir>', 'data directory holding the signing key (MCPX_DATA_DIR, default ./.mcpx)')
    .action(async (o: { sub: string; admin: boolean; ttl: string; data?: string }) => {
      const ttlSeconds = parseDuration(o.ttl);
      if (ttlSeconds === undefined) throw new CliError(`--ttl: "${o.ttl}" is not a duration (use e.g. 30m, 1h, 7d)`);
      if (!o.sub.trim()) throw new CliError('--sub: must not be empty');
      const dir = prepareDataDir(o.data ?? process.env.MCPX_DATA_DIR ?? '.mcpx');
      const key = await loadOrCreateSigningKey(dir);
      process.stdout.write(`${await signToken(key, { sub: o.sub, admin: o.admin, ttlSeconds })}\n`);
    });
}
