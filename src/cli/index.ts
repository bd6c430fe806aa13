// The mcpx command line: parses arguments, runs one command, returns its exit status.
import { Command, CommanderError } from 'commander';
import { registerAudit } from './audit-command.js';
import { registerSecret } from './secret-command.js';
import { registerDoctor } from './doctor-command.js';
import { registerServe } from './serve-command.js';
import { registerToken } from './token-command.js';
import { registerWorkspace } from './workspace-command.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('mcpx')
    .description('run third-party MCP servers in hardened containers behind one authenticated gateway')
    .option('--url <url>', 'gateway URL (MCPX_URL)', process.env.MCPX_URL ?? 'http://127.0.0.1:7470')
    .option('--token <jwt>', 'bearer token (MCPX_TOKEN)', process.env.MCPX_TOKEN)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerServe(program);
  registerToken(program);
  registerWorkspace(program);
  registerSecret(program);
  registerAudit(program);
  registerDoctor(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : err.exitCode || 1;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mcpx: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
