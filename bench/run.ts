// `npm run bench [-- --quick]`: measures mcpx on this machine and writes docs/benchmarks.md.
// Traffic goes only to loopback and to containers this run starts; every loop is bounded.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { loadGatewayConfig } from '../src/config/index.js';
import { startGateway } from '../src/main.js';
import type { Gateway } from '../src/main.js';
import { installedVersion, measureRequests, ROW_PATHS } from './request-latency.js';
import type { LatencyPlan, LatencyReport, RowKey, RowResult } from './request-latency.js';
import { median } from './measure.js';
import { cleanupAll, installInterruptHandlers, isInterrupted, onCleanup } from './processes.js';

const quick = process.argv.includes('--quick');
// `--rows=b,e`: only these rows of the request section and no create-to-ready; for profiling and trials, so the
// results are printed and docs/benchmarks.md is left alone.
const onlyRows = process.argv
  .find((a) => a.startsWith('--rows='))
  ?.slice('--rows='.length)
  .split(',')
  .filter(Boolean);
const REPO = resolve(import.meta.dirname, '..');
const log = (line: string) => console.error(`bench: ${line}`);

interface Stats {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))]!;
  return { n: s.length, median: q(0.5), p10: q(0.1), p90: q(0.9), min: s[0]!, max: s.at(-1)! };
}

const ms = (v: number) => `${v.toFixed(0)} ms`;
const ms3 = (v: number) => `${v.toFixed(3)} ms`;

async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as { status?: string; servers?: unknown } | undefined };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    if (isInterrupted()) throw new Error('interrupted');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A gateway's start-up reconcile removes the workspace containers that carry no gateway id (made before ids
 * existed) along with its own orphans, so starting the bench's gateway while such containers belong to a live run
 * would destroy them. Waits a bounded time for them to go, else refuses to start. Containers labelled with another
 * gateway's id are left alone by every reconcile and do not hold the bench up.
 */
async function waitForQuietEngine(docker: Docker, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let first = true; ; first = false) {
    const all = await docker.listContainers({ all: true, filters: { label: ['mcpx.workspace'] } });
    const unowned = all.filter((c) => c.Labels['mcpx.gateway'] === undefined);
    if (unowned.length === 0) return;
    const names = unowned.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)).join(', ');
    if (Date.now() > deadline || isInterrupted()) {
      throw new Error(
        `mcpx workspace containers without a gateway id are present (${names}); starting the bench's gateway would remove them. ` +
          'Wait for the run that owns them to finish (or remove leftovers of a crashed one with `docker rm -f`), then retry.',
      );
    }
    if (first) log(`waiting (at most ${timeoutMs / 1000} s) for mcpx workspace containers without a gateway id to go: ${names}`);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

/** Makes sure the workspace's Docker resources go even if the process dies without unwinding. */
function trackWorkspace(gateway: Gateway, token: string, name: string): () => void {
  const uid = gateway.manager.uidOf(name);
  const label = `label=mcpx.workspace-uid=${uid ?? 'none'}`;
  const docker = (...args: string[]) => execFileSync('docker', args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).toString().split('\n').filter(Boolean);
  return onCleanup({
    sync: () => {
      if (!uid) return;
      const containers = docker('ps', '-aq', '--filter', label);
      if (containers.length > 0) docker('rm', '-f', ...containers);
      const volumes = docker('volume', 'ls', '-q', '--filter', label);
      if (volumes.length > 0) docker('volume', 'rm', '-f', ...volumes);
    },
    async: () => deleteWorkspace(gateway, token, name),
  });
}

async function deleteWorkspace(gateway: Gateway, token: string, name: string): Promise<void> {
  const r = await api(gateway.url, 'DELETE', `/api/v1/workspaces/${name}`, token);
  if (r.status === 404) return;
  const deadline = Date.now() + 60_000;
  while ((await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).status !== 404) {
    if (Date.now() > deadline) throw new Error(`workspace ${name} was not deleted within 60 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs `attempt` again (at most `tries` times in all) after a failure, once no workspace container without a gateway
 * id is left: on a shared engine the usual cause is another run removing our container (a gateway's start-up reconcile
 * before gateway ids, or a test that cleans up by label).
 * Each discarded attempt is recorded for the report.
 */
async function retried<T>(what: string, tries: number, docker: Docker, discarded: string[], attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= tries || isInterrupted()) throw err;
      discarded.push(`${what}: attempt ${n} failed (${(err instanceof Error ? err.message : String(err)).slice(0, 300)})`);
      log(`${discarded.at(-1)!}; trying again`);
      await waitForQuietEngine(docker, 300_000);
    }
  }
}

/** Workspace create to ready, through the admin API, one Node server, warm image cache. */
async function createToReady(gateway: Gateway, token: string, runs: number, docker: Docker, discarded: string[]): Promise<Stats> {
  const spec = (i: number) => ({
    name: `bench-ready-${i}`,
    servers: [{ name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } }],
  });
  const once = async (i: number): Promise<number> => {
    const name = spec(i + 1).name;
    const t0 = performance.now();
    const r = await api(gateway.url, 'POST', '/api/v1/workspaces', token, spec(i + 1));
    if (r.status !== 201) throw new Error(`create failed: ${r.status}`);
    const untrack = trackWorkspace(gateway, token, name);
    try {
      // The warm-up may build the image; a measured run that takes a minute has gone wrong (a lost container).
      await until(async () => (await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).body?.status === 'ready', i < 0 ? 300_000 : 60_000).catch((err: unknown) => {
        throw new Error(`${name} did not become ready (${err instanceof Error ? err.message : String(err)})`, { cause: err });
      });
      return performance.now() - t0;
    } finally {
      await deleteWorkspace(gateway, token, name);
      untrack();
    }
  };
  const samples: number[] = [];
  // One warm-up run fills the image cache and the npm resolution cache.
  for (let i = -1; i < runs; i++) {
    const elapsed = await retried(`create-to-ready run ${i + 1}`, 3, docker, discarded, () => once(i));
    if (i >= 0) samples.push(elapsed);
  }
  return stats(samples);
}

/** A workspace for the request benchmark: server-everything at the version installed here, default limits. */
async function createEchoWorkspace(gateway: Gateway, token: string, name: string, version: string, extra: Record<string, unknown> = {}): Promise<() => void> {
  const r = await api(gateway.url, 'POST', '/api/v1/workspaces', token, {
    name,
    servers: [{ name: 'everything', package: `@modelcontextprotocol/server-everything@${version}`, args: ['stdio'] }],
    // The default buckets (200/s per token) would turn the sequential and concurrent loops into a test of the rate
    // limiter; everything else (guardrails, audit trail, redaction) stays at its default.
    rateLimits: { perToken: { rate: 1_000_000, burst: 10_000_000 }, perWorkspace: { rate: 1_000_000, burst: 10_000_000 } },
    ...extra,
  });
  if (r.status !== 201) throw new Error(`create ${name} failed: ${r.status} ${JSON.stringify(r.body)}`);
  const untrack = trackWorkspace(gateway, token, name);
  let last: unknown;
  try {
    await until(async () => {
      const g = await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token);
      last = g.body;
      if (g.body?.status === 'failed') throw new Error(`workspace ${name} failed: ${JSON.stringify(g.body.servers)}`);
      return g.body?.status === 'ready';
    }, 600_000, 50);
  } catch (err) {
    untrack();
    await deleteWorkspace(gateway, token, name);
    if (err instanceof Error && err.message === 'timed out') throw new Error(`workspace ${name} not ready within 600 s: ${JSON.stringify(last)}`, { cause: err });
    throw err;
  }
  return untrack;
}

function machineFacts(engine: Docker.DockerVersion) {
  const cpuList = cpus();
  return {
    machine: `${cpuList.length} × ${cpuList[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, ${process.platform} ${execFileSync('uname', ['-r']).toString().trim()}`,
    versions: `Node ${process.version} (undici ${process.versions.undici ?? '?'}); Docker Engine ${engine.Version} (API ${engine.ApiVersion}); mcpx ${(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version}`,
  };
}

const fmtLoad = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');

function renderLatency(rep: LatencyReport, ctx: { command: string; versions: Record<string, string>; loadStart: number[]; loadEnd: number[]; discarded: string[] }): string {
  const { plan } = rep;
  const row = (k: RowKey) => rep.rows.find((r) => r.key === k);
  const lines: string[] = [];
  lines.push(`## Request latency: \`tools/call\` of \`echo\`, sequential

One \`tools/call\` of the \`echo\` tool of \`@modelcontextprotocol/server-everything\` (args \`["stdio"]\`) at a time,
timed in the client from \`callTool()\` to its resolved, checked result; every row uses the same client: the SDK 1.x
\`Client\` with the SDK's stdio or Streamable HTTP client transport (or the gateway's channel for (b)).

- Versions: \`@modelcontextprotocol/sdk\` ${ctx.versions.sdk} (client), \`@modelcontextprotocol/server-everything\` ${ctx.versions.everything} (the same version on the host and, pinned in the workspace spec, in the container), \`mcp-proxy\` ${ctx.versions.mcpProxy}, \`supergateway\` ${ctx.versions.supergateway}.
- Command: \`${ctx.command}\`. Calls: ${plan.rounds} rounds × ${plan.callsPerRound} calls per row (${plan.rounds * plan.callsPerRound} per row in all), after ${plan.warmupCalls} warm-up calls per row and ${plan.rewarmCalls} unrecorded calls before each row's turn.
- Rounds interleave every row, forward then backward (${plan.rows.join(' ')} / ${[...plan.rows].reverse().join(' ')} / ...), so that the machine's drift reaches every row alike; "rounds" gives the median of the rounds' p50 and their spread (min–max).
- The gateway runs in this process (as in the create-to-ready run), so for (b), (e), (g) and (f) the client and the server side share one event loop; (a), (c) and (d) run the server (and the bridge) in other processes. The containers of (b), (e) and (g) have the spec's default limits (0.5 CPU, 512 MiB, hardened); the servers of (a), (c) and (d) have no limits. The workspace keeps every default of the request path (guardrails, audit trail of each request, redaction) except the rate limits, raised so that the loops measure requests rather than the limiter.
- Machine load average (1/5/15 min) at the start of this section: ${fmtLoad(ctx.loadStart)}; at the end: ${fmtLoad(ctx.loadEnd)}.

| | path | calls | p50 | p90 | p99 | mean | p50 by round: median (min–max) |
|---|---|---:|---:|---:|---:|---:|---|`);
  for (const r of rep.rows) {
    lines.push(`| (${r.key}) | ${ROW_PATHS[r.key]} | ${r.all.n} | ${ms3(r.all.p50)} | ${ms3(r.all.p90)} | ${ms3(r.all.p99)} | ${ms3(r.all.mean)} | ${ms3(r.p50Median)} (${r.p50Min.toFixed(3)}–${r.p50Max.toFixed(3)}) |`);
  }
  for (const s of rep.skipped) lines.push(`| (${s.key}) | ${ROW_PATHS[s.key]} | – | not measured: ${s.reason.replaceAll('|', '\\|').replaceAll('\n', ' ').slice(0, 300)} | | | | |`);
  const b = row('b');
  const e = row('e');
  const f = row('f');
  const g = row('g');
  /** Per round: p50(x) - p50(y); the rows of one round ran back to back. */
  const roundDiffs = (x: RowResult, y: RowResult) => x.rounds.map((s, i) => s.p50 - y.rounds[i]!.p50);
  if (b && e) {
    const diffs = roundDiffs(e, b);
    const med = median(diffs);
    lines.push('');
    lines.push(
      `**(e) − (b) at p50: ${ms3(med)}** (median of the ${diffs.length} rounds' differences; per round: ${diffs.map((d) => d.toFixed(3)).join(', ')} ms; over all calls: ${ms3(e.all.p50 - b.all.p50)}). ` +
        `Target: at most 0.5 ms — **${med <= 0.5 ? 'met' : 'not met'}**.`,
    );
    const parts: string[] = [];
    if (f) parts.push(`the HTTP hop itself with this client costs about the floor (f), ${ms3(f.p50Median)} at p50 (the SDK client's fetch and a bare \`node:http\` exchange on loopback, with a trivial answer)`);
    if (g) {
      const audit = median(roundDiffs(e, g));
      parts.push(`the audit-trail entry of each request costs ${ms3(audit)} at p50 ((e) − (g), median of the rounds' differences: ${roundDiffs(e, g).map((d) => d.toFixed(3)).join(', ')} ms)`);
    }
    if (parts.length > 0) {
      lines.push('');
      lines.push(
        `Of that, ${parts.join('; ')}. The rest is the gateway's other per-request work (bearer check against its cache of verified tokens, role lookup, rate limiting, guardrails: limits, policy and input-schema validation, routing, id rewriting, redaction of the answer, metrics) and the cost of two hops instead of one on the same thread.`,
      );
    }
  }
  lines.push('');
  lines.push('### Notes');
  lines.push('');
  lines.push(
    "- HTTP rows give the SDK transport a `fetch` that leaves out the transport's shared AbortSignal on POSTs: with it, Node's fetch keeps one listener per request on that signal until the request is garbage collected and counts them on every request, a client-side cost that grows with the number of calls (and prints a warning per call past 1,500). Everything else is the stock client.",
  );
  lines.push('- (d) runs `supergateway --stateful`: its default (stateless) mode starts a new server process for every request. supergateway has no option for its listening address; the bench preloads a module that makes it bind 127.0.0.1.');
  lines.push('- `mcp-proxy` runs with its defaults apart from `--server stream --host 127.0.0.1`.');
  for (const a of ctx.discarded) lines.push(`- Discarded and measured again: ${a.replaceAll('|', '\\|')}.`);
  lines.push(`- Server identities seen by the client: ${rep.rows.map((r) => `(${r.key}) ${r.serverInfo}`).join('; ')}.`);

  if (rep.throughput.length > 0) {
    lines.push('');
    lines.push(`## Throughput: \`tools/call\` of \`echo\` with 1, 8 and 32 requests in flight

Concurrent promises over one client (one session) per row. Each (row, in-flight) pair runs ${plan.throughputRounds} times for ${plan.throughputMs / 1000} s (after 0.2 s unrecorded at the same level), in interleaved rounds like the latency table; no call starts after the time is up, and a rate counts the calls completed until the last one finished. "requests/s" is the median over the rounds (min–max); latency is per call, over every round.

| | in flight | requests/s: median (min–max) | p50 | p99 | calls | errors |
|---|---:|---:|---:|---:|---:|---:|`);
    for (const t of rep.throughput) {
      lines.push(
        `| (${t.key}) | ${t.inFlight} | ${median(t.rates).toFixed(0)} (${Math.min(...t.rates).toFixed(0)}–${Math.max(...t.rates).toFixed(0)}) | ${ms3(t.latency.p50)} | ${ms3(t.latency.p99)} | ${t.calls} | ${t.errors} |`,
      );
    }
    lines.push('');
    lines.push(
      '(b), (e), (g) and (f) run the client and the server side on one event loop (this process), so their rate is that of one thread doing both; (a), (c) and (d) put the server and the bridge in processes of their own, on the other core. The server of (b), (e) and (g) is capped at 0.5 CPU by the workspace default.',
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  installInterruptHandlers();
  const runs = quick ? 5 : 10;
  const rows: RowKey[] = ['b', 'e', 'g', 'a', 'c', 'd', 'f'];
  const throughputRows: RowKey[] = ['a', 'b', 'c', 'd', 'e', 'g', 'f'];
  const plan: LatencyPlan = quick
    ? { rows, rounds: 3, callsPerRound: 300, warmupCalls: 300, rewarmCalls: 20, maxMsPerTurn: 30_000, throughputRows, inFlight: [1, 8, 32], throughputRounds: 2, throughputMs: 500 }
    : { rows, rounds: 5, callsPerRound: 2000, warmupCalls: 2000, rewarmCalls: 50, maxMsPerTurn: 60_000, throughputRows, inFlight: [1, 8, 32], throughputRounds: 3, throughputMs: 1000 };
  if (onlyRows) {
    const unknown = onlyRows.filter((k) => !(k in ROW_PATHS));
    if (unknown.length > 0) throw new Error(`--rows: unknown row ${unknown.join(', ')} (rows: ${Object.keys(ROW_PATHS).join(', ')})`);
    plan.rows = plan.rows.filter((k) => onlyRows.includes(k));
    plan.throughputRows = plan.throughputRows.filter((k) => onlyRows.includes(k));
  }
  const docker = new Docker();
  const engine = await docker.version();
  const facts = machineFacts(engine);
  const versions = {
    sdk: installedVersion('@modelcontextprotocol/sdk'),
    everything: installedVersion('@modelcontextprotocol/server-everything'),
    mcpProxy: installedVersion('mcp-proxy'),
    supergateway: installedVersion('supergateway'),
  };
  await waitForQuietEngine(docker, 300_000);

  const dataDir = mkdtempSync(join(tmpdir(), 'mcpx-bench-'));
  const loaded = loadGatewayConfig({ port: 0, dataDir }, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }) });
  const removeGateway = onCleanup({
    sync: () => rmSync(dataDir, { recursive: true, force: true }),
    async: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
  let doc: string | undefined;
  try {
    const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 3600 });
    const discarded: string[] = [];
    let ready: Stats | undefined;
    if (!onlyRows) {
      log(`create-to-ready: ${runs} runs`);
      ready = await createToReady(gateway, token, runs, docker, discarded);
      log(JSON.stringify(ready));
    }

    // The request section is measured again from a new workspace when its container was lost (see retried).
    let loadStart: number[] = [];
    let loadEnd: number[] = [];
    const report = await retried('request latency', 3, docker, discarded, async () => {
      const id = randomBytes(3).toString('hex');
      const ws = `bench-echo-${id}`;
      const wsNoAudit = `bench-echo-noaudit-${id}`;
      const created: [string, () => void][] = [];
      try {
        log(`request latency: creating ${ws} and ${wsNoAudit} (server-everything ${versions.everything}; the first run builds its image)`);
        created.push([ws, await createEchoWorkspace(gateway, token, ws, versions.everything)]);
        created.push([wsNoAudit, await createEchoWorkspace(gateway, token, wsNoAudit, versions.everything, { audit: { requests: false } })]);
        loadStart = loadavg();
        const r = await measureRequests({ gateway, token, workspace: ws, workspaceWithoutAudit: wsNoAudit, server: 'everything' }, plan, log);
        loadEnd = loadavg();
        return r;
      } catch (err) {
        for (const [name] of created) {
          const events = (await api(gateway.url, 'GET', `/api/v1/workspaces/${name}/events`, token).catch(() => undefined))?.body as { type: string; detail?: unknown }[] | undefined;
          const exit = events?.find((e) => e.type === 'container_exited');
          if (exit) throw new Error(`the container of ${name} went away (${JSON.stringify(exit.detail)}): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        throw err;
      } finally {
        for (const [name, untrack] of created) {
          await deleteWorkspace(gateway, token, name);
          untrack();
        }
      }
    });

    const latency = renderLatency(report, {
      command: `npm run bench${quick ? ' -- --quick' : ''}`,
      versions,
      loadStart,
      loadEnd,
      discarded,
    });
    if (!ready) {
      console.log(latency);
      return;
    }
    doc = `# Benchmarks

Written by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}. Figures are from one machine; rerun to compare.

- Machine: ${facts.machine}
- ${facts.versions}

## Workspace create to \`ready\` (warm image cache)

One workspace with one Node server (\`@modelcontextprotocol/server-memory\`), created through \`POST /api/v1/workspaces\`
and polled every 5 ms until \`status\` is \`ready\` (every server answered the MCP handshake), then deleted; one
warm-up run first. Includes: the image cache check, volume and container creation with the full hardening, attach,
start, Node start-up inside the container at 0.5 CPU, and the MCP \`initialize\` round trip.

| runs | median | p10 | p90 | min | max | target |
|---:|---:|---:|---:|---:|---:|---|
| ${ready.n} | ${ms(ready.median)} | ${ms(ready.p10)} | ${ms(ready.p90)} | ${ms(ready.min)} | ${ms(ready.max)} | < 1.5 s (issue 2), < 1.0 s (issue 7) |

${latency}
`;
  } finally {
    await cleanupAll();
    removeGateway();
  }
  if (doc !== undefined) {
    // Sections written by the other bench scripts (between their markers) are kept as they are.
    const file = join(REPO, 'docs/benchmarks.md');
    let previous = '';
    try {
      previous = readFileSync(file, 'utf8');
    } catch {
      // first run
    }
    const kept = [...previous.matchAll(/<!-- ([a-z-]+):start -->[\s\S]*?<!-- \1:end -->/g)].map((m) => m[0]);
    writeFileSync(file, [doc.trimEnd(), ...kept].join('\n\n') + '\n');
    log('wrote docs/benchmarks.md');
  }
}

try {
  await main();
} catch (err) {
  if (isInterrupted()) {
    console.error('bench: interrupted; cleaned up, docs/benchmarks.md left alone');
  } else {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    console.error("bench: if a server's container went away mid-run, another run on this Docker Engine most likely removed it; run the bench alone.");
  }
  await cleanupAll();
  process.exitCode = isInterrupted() ? 130 : 1;
}
