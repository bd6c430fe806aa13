// `mcpx workspace ...`: apply (with progress), ls, get, rm, events, logs.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { createApiClient, CliError } from './api-client.js';
import type { ApiClient } from './api-client.js';

interface ServerSummary {
  name: string;
  status: string;
  phase?: string;
}
interface WorkspaceDetail {
  name: string;
  status: string;
  servers: ServerSummary[];
}
interface EventView {
  id: number;
  type: string;
  at: string;
  server?: string;
  detail?: Record<string, unknown>;
}

const TERMINAL_FAIL = new Set(['failed', 'degraded']);

interface VerifyView {
  workspace: string;
  ok: boolean;
  servers: { server: string; ok: boolean; properties: { property: string; ok: boolean; detail: string; source: string }[] }[];
}

export function formatVerify(r: VerifyView): string {
  const rows = [['SERVER', 'PROPERTY', 'RESULT', 'DETAIL']];
  for (const s of r.servers) {
    for (const p of s.properties) rows.push([s.server, p.property, p.ok ? 'holds' : 'FAILS', p.source === 'engine' ? `${p.detail} [engine]` : p.detail]);
  }
  const width = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)) + 2);
  const table = rows.map((row) => `${row[0]!.padEnd(width[0]!)}${row[1]!.padEnd(width[1]!)}${row[2]!.padEnd(width[2]!)}${row[3]}`.trimEnd()).join('\n');
  const failed = r.servers.reduce((n, s) => n + s.properties.filter((p) => !p.ok).length, 0);
  return `${table}\n\nworkspace ${r.workspace}: ${r.ok ? 'every property holds' : `${failed} propert${failed === 1 ? 'y fails' : 'ies fail'}`}\n`;
}

function formatEvent(e: EventView): string {
  const d = e.detail;
  const extra =
    e.type === 'image_built' && d
      ? `${String(d.image)}${d.cached ? ' (cached)' : ''}`
      : (e.type === 'egress_allowed' || e.type === 'egress_denied') && d
        ? `${String(d.method)} ${String(d.destination)} ${e.type === 'egress_allowed' ? `${String(d.bytesOut)} B out, ${String(d.bytesIn)} B in` : String(d.reason)}`
      : typeof d?.reason === 'string'
        ? d.reason
        : typeof d?.exitCode === 'number'
          ? `exit code ${d.exitCode}`
          : '';
  return `${e.at}  ${e.type.padEnd(20)} ${(e.server ?? '').padEnd(16)} ${extra}`.trimEnd();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows a workspace until it is ready (0) or fails (1), printing events and build progress. */
async function follow(api: ApiClient, name: string, afterId: number, timeoutMs: number, out: NodeJS.WritableStream): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let after = afterId;
  const phases = new Map<string, string>();
  while (Date.now() < deadline) {
    const events = (await api<EventView[]>('GET', `/api/v1/workspaces/${name}/events?after=${after}`)).body;
    for (const e of events) {
      out.write(`${formatEvent(e)}\n`);
      after = e.id;
    }
    const ws = (await api<WorkspaceDetail>('GET', `/api/v1/workspaces/${name}`)).body;
    for (const s of ws.servers) {
      if (s.phase && phases.get(s.name) !== s.phase && s.status !== 'running') {
        phases.set(s.name, s.phase);
        out.write(`  ${s.name}: ${s.phase}\n`);
      }
    }
    if (ws.status === 'ready') {
      out.write(`workspace ${name} is ready\n`);
      return 0;
    }
    if (TERMINAL_FAIL.has(ws.status)) {
      const reasons = ws.servers.filter((s) => s.status !== 'running').map((s) => `${s.name}: ${s.phase ?? s.status}`);
      throw new CliError(`workspace ${name} is ${ws.status}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
    }
    await sleep(200);
  }
  throw new CliError(`workspace ${name} did not become ready within ${Math.round(timeoutMs / 1000)} s`);
}

type Globals = { url: string; token?: string };

export function registerWorkspace(program: Command): void {
  const ws = program.command('workspace').alias('ws').description('manage workspaces on a running gateway');
  const client = (cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    return createApiClient({ url: g.url, ...(g.token ? { token: g.token } : {}) });
  };

  ws.command('apply')
    .description('create or update a workspace from a YAML/JSON spec; exits 0 once it is ready')
    .requiredOption('-f, --file <file>', 'the spec file (- for stdin)')
    .option('--no-wait', 'return once the spec is accepted')
    .option('--timeout <seconds>', 'how long to wait for ready', '600')
    .action(async (o: { file: string; wait: boolean; timeout: string }, cmd: Command) => {
      const api = client(cmd);
      let text: string;
      try {
        text = readFileSync(o.file === '-' ? 0 : o.file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      let spec: unknown;
      try {
        spec = parseYaml(text);
      } catch (err) {
        throw new CliError(`${o.file} is not valid YAML or JSON: ${err instanceof Error ? err.message.split('\n')[0] : ''}`);
      }
      const name = (spec as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') throw new CliError(`${o.file}: name: required`);
      // Remember where the event log stands so that only this apply's events are shown.
      const before = await api<EventView[]>('GET', `/api/v1/workspaces/${encodeURIComponent(name)}/events`, undefined, [404, 400]);
      const lastId = before.status === 200 ? (before.body.at(-1)?.id ?? 0) : 0;
      const created = await api('POST', '/api/v1/workspaces', spec, [409]);
      if (created.status === 409) {
        await api('PUT', `/api/v1/workspaces/${name}`, spec);
        process.stdout.write(`workspace ${name} updated\n`);
      } else {
        process.stdout.write(`workspace ${name} created\n`);
      }
      if (!o.wait) return;
      await follow(api, name, lastId, Number(o.timeout) * 1000, process.stdout);
    });

  ws.command('ls')
    .description('list your workspaces')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (o: { output: string }, cmd: Command) => {
      const list = (await client(cmd)<WorkspaceDetail[]>('GET', '/api/v1/workspaces')).body;
      if (o.output === 'json') {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const rows = [['NAME', 'STATUS', 'SERVERS'], ...list.map((w) => [w.name, w.status, w.servers.map((s) => `${s.name}(${s.status})`).join(',')])];
      const width = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
      for (const r of rows) process.stdout.write(`${r[0]!.padEnd(width[0]!)}${r[1]!.padEnd(width[1]!)}${r[2]}\n`);
    });

  ws.command('get <name>')
    .description('show one workspace as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const w = (await client(cmd)('GET', `/api/v1/workspaces/${encodeURIComponent(name)}`)).body;
      process.stdout.write(`${JSON.stringify(w, null, 2)}\n`);
    });

  ws.command('rm <name>')
    .description('delete a workspace and everything it created')
    .option('--no-wait', 'return once the delete is accepted')
    .action(async (name: string, o: { wait: boolean }, cmd: Command) => {
      const api = client(cmd);
      await api('DELETE', `/api/v1/workspaces/${encodeURIComponent(name)}`);
      if (o.wait) {
        const deadline = Date.now() + 120_000;
        while ((await api('GET', `/api/v1/workspaces/${encodeURIComponent(name)}`, undefined, [404])).status !== 404) {
          if (Date.now() > deadline) throw new CliError(`workspace ${name} is still being deleted`);
          await sleep(200);
        }
      }
      process.stdout.write(`workspace ${name} deleted\n`);
    });

  ws.command('events <name>')
    .description('lifecycle and security events, oldest first')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (name: string, o: { output: string }, cmd: Command) => {
      const events = (await client(cmd)<EventView[]>('GET', `/api/v1/workspaces/${encodeURIComponent(name)}/events`)).body;
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
      else for (const e of events) process.stdout.write(`${formatEvent(e)}\n`);
    });

  ws.command('verify <name>')
    .description("probe each of the workspace's containers and show which isolation properties hold; exits non-zero if any fails")
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (name: string, o: { output: string }, cmd: Command) => {
      const r = (await client(cmd)<VerifyView>('POST', `/api/v1/workspaces/${encodeURIComponent(name)}/verify`)).body;
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else process.stdout.write(formatVerify(r));
      const failed = r.servers.flatMap((s) => s.properties.filter((p) => !p.ok).map((p) => `${s.server}: ${p.property}`));
      if (!r.ok) throw new CliError(`isolation does not hold: ${failed.join(', ') || 'no server to probe'}`);
    });

  ws.command('logs <name> [server]')
    .description("a workspace's server logs (their stderr)")
    .option('--tail <n>', 'how many lines', '200')
    .action(async (name: string, server: string | undefined, o: { tail: string }, cmd: Command) => {
      const q = new URLSearchParams({ tail: o.tail, ...(server ? { server } : {}) });
      const lines = (await client(cmd)<{ server: string; at: string; line: string }[]>('GET', `/api/v1/workspaces/${encodeURIComponent(name)}/logs?${q.toString()}`)).body;
      for (const l of lines) process.stdout.write(server ? `${l.line}\n` : `[${l.server}] ${l.line}\n`);
    });
}
