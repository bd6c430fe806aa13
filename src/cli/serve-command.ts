// `mcpx serve`: runs the gateway in the foreground until SIGTERM or SIGINT.
import type { Command } from 'commander';
import { loadGatewayConfig } from '../config/index.js';
import { createLogger, startGateway } from '../main.js';
import { CliError } from './api-client.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the gateway in the foreground')
    .option('--host <host>', 'address to listen on (MCPX_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (MCPX_PORT, default 7470)')
    .option('--data <dir>', 'data directory (MCPX_DATA_DIR, default ./.mcpx)')
    .action(async (o: { host?: string; port?: string; data?: string }) => {
      const loaded = loadGatewayConfig({ host: o.host, port: o.port, dataDir: o.data }, process.env);
      if (!loaded.ok) throw new CliError(`bad configuration: ${loaded.errors.join('; ')}`);
      const logger = createLogger(loaded.config.logLevel);
      const gateway = await startGateway(loaded.config, { logger });
      process.stdout.write(`mcpx listening on ${gateway.url}\n`);
      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          gateway.close().then(done, (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            done();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
