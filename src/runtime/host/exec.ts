// Runs a host tool (iptables, losetup, mkfs.ext4) without a shell, bounded in time; failures carry stderr.
import { execFile } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export type CommandRunner = (cmd: string, args: readonly string[]) => Promise<CommandResult>;

export class HostCommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly code: number | string | undefined,
    readonly stderr: string,
  ) {
    super(`${cmd} ${args.join(' ')} failed (${String(code)}): ${stderr.trim().split('\n')[0] ?? ''}`);
    this.name = 'HostCommandError';
  }
}

export const runCommand: CommandRunner = (cmd, args) =>
  new Promise((ok, fail) => {
    execFile(cmd, [...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) fail(new HostCommandError(cmd, args, (err as NodeJS.ErrnoException).code ?? undefined, String(stderr || err.message)));
      else ok({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
