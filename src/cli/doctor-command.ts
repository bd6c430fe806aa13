// `mcpx doctor`: what this machine gives the gateway (engine, runtimes, cgroups, firewall and quota tools), what is
// missing, and the fix. Talks to the engine and the host directly; needs no running gateway. Changes nothing.
import type { Command } from 'commander';
import Docker from 'dockerode';
import { checkEngine, checkHostTools, createDockerRuntimeClient, runCommand } from '../runtime/index.js';
import type { EngineFacts, HostCheck } from '../runtime/index.js';
import { CliError } from './api-client.js';

async function engineFacts(): Promise<EngineFacts> {
  const runtime = createDockerRuntimeClient(new Docker());
  try {
    const [info, version] = await Promise.all([runtime.info(), runtime.version()]);
    return {
      reachable: true,
      ...(version.Version ? { version: version.Version } : {}),
      ...(version.ApiVersion ? { apiVersion: version.ApiVersion } : {}),
      runtimes: Object.keys((info.Runtimes as Record<string, unknown> | undefined) ?? {}),
      ...(typeof info.CgroupVersion === 'string' ? { cgroupVersion: info.CgroupVersion } : {}),
      ...(typeof info.CgroupDriver === 'string' ? { cgroupDriver: info.CgroupDriver } : {}),
    };
  } catch (err) {
    return { reachable: false, runtimes: [], error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

export function formatChecks(checks: HostCheck[]): string {
  const rows = [['CHECK', 'STATUS', 'NEEDED FOR', 'DETAIL'], ...checks.map((c) => [c.name, c.status, c.needed, c.detail])];
  const width = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
  let out = rows.map((r) => `${r[0]!.padEnd(width[0]!)}${r[1]!.padEnd(width[1]!)}${r[2]!.padEnd(width[2]!)}${r[3]}`.trimEnd()).join('\n');
  const fixes = checks.filter((c) => c.fix);
  if (fixes.length > 0) out += `\n\nto fix:\n${fixes.map((c) => `  ${c.name}: ${c.fix}`).join('\n')}`;
  return `${out}\n`;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the engine, its runtimes (runc, runsc), cgroups and the host tools the gateway needs')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (o: { output: string }) => {
      const major = Number(process.versions.node.split('.')[0]);
      const node: HostCheck = {
        name: 'node',
        status: major >= 22 ? 'ok' : 'missing',
        detail: process.version,
        fix: major >= 22 ? '' : 'npm i -g --prefix /usr/local node@22, or run `bash scripts/setup.sh`',
        needed: 'required',
      };
      const checks = [node, ...checkEngine(await engineFacts()), ...(await checkHostTools(runCommand, process.getuid?.()))];
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
      else process.stdout.write(formatChecks(checks));
      const missing = checks.filter((c) => c.status === 'missing');
      if (missing.length > 0) throw new CliError(`missing: ${missing.map((c) => c.name).join(', ')}`);
    });
}
