// `npm run bench [-- --quick] [--skip=cold,density] [--rows=b,e]`: measures mcpx on this machine and writes
// docs/benchmarks.md: create-to-ready (warm and cold image cache), request latency, throughput, and then the density
// bench (bench/density.ts, a child process that writes its own section). Each section sits between markers; a
// section left out with `--skip=` keeps its previous text. Traffic goes only to loopback and to containers this run
// starts; every loop is bounded.
import { execFileSync, spawn } from 'node:child_process';
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
import { composeDoc, DOC_FILE, marked, markedSections, readDoc, sectionSources } from './bench-doc.js';
import type { MarkedSection } from './bench-doc.js';
import { api, createPhases, MEMORY_SERVER, removeAppImage, workspaceEvents } from './create-to-ready.js';
import type { CreatePhases } from './create-to-ready.js';
import { installedVersion, measureRequests, ROW_PATHS } from './request-latency.js';
import type { LatencyPlan, LatencyReport, RowKey, RowResult } from './request-latency.js';
import { median, spread } from './measure.js';
import type { Spread } from './measure.js';
import { cleanupAll, installInterruptHandlers, isInterrupted, onCleanup, until } from './processes.js';

const quick = process.argv.includes('--quick');
// `--rows=b,e`: only these rows of the request section and no other section; for profiling and trials, so the
// results are printed and docs/benchmarks.md is left alone.
const onlyRows = process.argv
  .find((a) => a.startsWith('--rows='))
  ?.slice('--rows='.length)
  .split(',')
  .filter(Boolean);
/** The parts `--skip=` can leave out; a part left out keeps its previous text in docs/benchmarks.md. */
const PARTS = {
  ready: 'create-to-ready, warm image cache',
  cold: 'create-to-ready, cold image cache',
  latency: 'request latency (sequential)',
  throughput: 'throughput (1 to 128 in flight)',
  density: 'density, hibernation and wake-up (bench/density.ts)',
} as const;
type Part = keyof typeof PARTS;
const skipArg = process.argv
  .filter((a) => a.startsWith('--skip='))
  .flatMap((a) => a.slice('--skip='.length).split(','))
  .filter(Boolean);
const skip = new Set(skipArg as Part[]);
const runs = (p: Part) => !skip.has(p) && (onlyRows === undefined || p === 'latency' || p === 'throughput');
const COMMAND = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const TODAY = new Date().toISOString().slice(0, 10);
const REPO = resolve(import.meta.dirname, '..');
const log = (line: string) => console.error(`bench: ${line}`);

const ms = (v: number) => `${v.toFixed(0)} ms`;
const ms3 = (v: number) => `${v.toFixed(3)} ms`;

/** The part of a workspace's detail the bench reads. */
interface Detail {
  status?: string;
  servers?: { name: string; status: string; image?: string }[];
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

/** Detaches the loop devices whose backing file lies under `dir` (the quota images of this run's workspaces). */
function detachLoops(dir: string): void {
  const list = execFileSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).toString();
  for (const line of list.split('\n')) {
    const [dev, file] = line.split(/\s+/);
    if (dev && file?.startsWith(`${dir}/`)) execFileSync('losetup', ['--detach', dev], { stdio: 'ignore', timeout: 30_000 });
  }
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

/** One create to `ready` through the admin API, then DELETE; the client's time and the phases from the events. */
async function timedCreate(gateway: Gateway, token: string, name: string, timeoutMs: number): Promise<{ phases: CreatePhases; image: string }> {
  const t0 = performance.now();
  const r = await api<Detail>(gateway.url, 'POST', '/api/v1/workspaces', token, { name, servers: [MEMORY_SERVER] });
  if (r.status !== 201) throw new Error(`create ${name} failed: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  const untrack = trackWorkspace(gateway, token, name);
  try {
    let detail: Detail | undefined;
    await until(async () => {
      detail = (await api<Detail>(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).body;
      if (detail?.status === 'failed') throw new Error(`workspace ${name} failed: ${JSON.stringify(detail.servers).slice(0, 300)}`);
      return detail?.status === 'ready';
    }, timeoutMs).catch((err: unknown) => {
      throw new Error(`${name} did not become ready (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    });
    const totalMs = performance.now() - t0;
    return { phases: createPhases(await workspaceEvents(gateway.url, token, name), totalMs), image: detail?.servers?.[0]?.image ?? '' };
  } finally {
    await deleteWorkspace(gateway, token, name);
    untrack();
  }
}

interface CacheRuns {
  /** Runs asked for. */
  planned: number;
  runs: CreatePhases[];
  /** Runs not measured or not counted, and why. */
  notes: string[];
}

interface ReadyResult {
  image: string;
  warm?: CacheRuns;
  cold?: CacheRuns;
}

/**
 * Create to ready, one Node server (server-memory), after one warm-up run. Warm runs find the app image; before each
 * cold run the app image is removed (see removeAppImage for when it is not). Cold and warm runs alternate, so that
 * the machine's drift reaches both alike.
 */
async function createToReady(
  gateway: Gateway,
  token: string,
  plan: { warmRuns: number; coldRuns: number; coldWaitMs: number },
  docker: Docker,
  discarded: string[],
): Promise<ReadyResult> {
  const id = randomBytes(3).toString('hex');
  const gatewayId = readFileSync(join(gateway.dataDir, 'gateway-id'), 'utf8').trim();
  // The warm-up may build the image; a measured warm run that takes a minute has gone wrong (a lost container).
  const warmUp = await retried('create-to-ready warm-up', 3, docker, discarded, () => timedCreate(gateway, token, `bench-ready-${id}-0`, 300_000));
  const image = warmUp.image;
  const warm: CacheRuns | undefined = plan.warmRuns > 0 ? { planned: plan.warmRuns, runs: [], notes: [] } : undefined;
  const cold: CacheRuns | undefined = plan.coldRuns > 0 ? { planned: plan.coldRuns, runs: [], notes: [] } : undefined;
  let waitLeft = plan.coldWaitMs;

  /** Removes the app image, waiting (within the part's budget) while another run is active; a note if not removed. */
  const removeImage = async (run: number): Promise<string | undefined> => {
    for (let logged = false; ; ) {
      const r = await removeAppImage(docker, image, gatewayId);
      if (r.removed) return undefined;
      if (!r.busy || waitLeft <= 0 || isInterrupted()) return `cold run ${run}: ${r.note}${r.busy ? ` (the part's ${(plan.coldWaitMs / 1000).toFixed(0)} s of waiting for that to change are used up)` : ''}`;
      if (!logged) log(`cold run ${run}: ${r.note}; waiting (at most ${(waitLeft / 1000).toFixed(0)} s more in this part)`);
      logged = true;
      await new Promise((res) => setTimeout(res, 5000));
      waitLeft -= 5000;
    }
  };

  for (let i = 1; i <= Math.max(plan.warmRuns, plan.coldRuns) && !isInterrupted(); i++) {
    if (cold && i <= plan.coldRuns) {
      // One attempt = removing the image and creating: a create that failed may have rebuilt the image already.
      const r = await retried(`create-to-ready cold run ${i}`, 3, docker, discarded, async (): Promise<{ refused: string } | { run: Awaited<ReturnType<typeof timedCreate>> }> => {
        const refused = await removeImage(i);
        if (refused !== undefined) return { refused };
        return { run: await timedCreate(gateway, token, `bench-cold-${id}-${i}`, 600_000) };
      });
      if ('refused' in r) cold.notes.push(r.refused);
      else if (r.run.phases.cachedImage !== false) cold.notes.push(`cold run ${i}: not counted, the image was found in the cache (image_built cached: ${String(r.run.phases.cachedImage)})`);
      else cold.runs.push(r.run.phases);
      log('refused' in r ? r.refused : `cold run ${i}: ${r.run.phases.totalMs.toFixed(0)} ms (image ready at ${r.run.phases.imageMs} ms)`);
    }
    if (warm && i <= plan.warmRuns) {
      const r = await retried(`create-to-ready warm run ${i}`, 3, docker, discarded, () => timedCreate(gateway, token, `bench-ready-${id}-${i}`, 60_000));
      if (r.phases.cachedImage !== true) warm.notes.push(`warm run ${i}: not counted, the image was built (image_built cached: ${String(r.phases.cachedImage)})`);
      else warm.runs.push(r.phases);
      log(`warm run ${i}: ${r.phases.totalMs.toFixed(0)} ms`);
    }
  }
  return { image, ...(warm ? { warm } : {}), ...(cold ? { cold } : {}) };
}

/** The bench workspaces' cap on requests in flight to one server (default 64): above the largest level measured. */
const CONCURRENT_PER_SERVER = 256;

/** A workspace for the request benchmark: server-everything at the version installed here, default limits. */
async function createEchoWorkspace(gateway: Gateway, token: string, name: string, version: string, extra: Record<string, unknown> = {}): Promise<() => void> {
  const r = await api(gateway.url, 'POST', '/api/v1/workspaces', token, {
    name,
    servers: [{ name: 'everything', package: `@modelcontextprotocol/server-everything@${version}`, args: ['stdio'] }],
    // The default buckets (200/s per token) would turn the sequential and concurrent loops into a test of the rate
    // limiter, and the default cap of 64 requests in flight per server would refuse half of the calls at 128 in
    // flight; everything else (guardrails, audit trail, redaction) stays at its default.
    rateLimits: { perToken: { rate: 1_000_000, burst: 10_000_000 }, perWorkspace: { rate: 1_000_000, burst: 10_000_000 }, concurrentPerServer: CONCURRENT_PER_SERVER },
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
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

interface RequestContext {
  versions: Record<string, string>;
  loadStart: number[];
  loadEnd: number[];
  discarded: string[];
}

function renderLatency(rep: LatencyReport, ctx: RequestContext): MarkedSection {
  const { plan } = rep;
  const row = (k: RowKey) => rep.rows.find((r) => r.key === k);
  const lines: string[] = [];
  lines.push(`## Request latency: \`tools/call\` of \`echo\`, sequential

Written by \`${COMMAND}\` on ${TODAY}. One \`tools/call\` of the \`echo\` tool of \`@modelcontextprotocol/server-everything\` (args \`["stdio"]\`) at a time,
timed in the client from \`callTool()\` to its resolved, checked result; every row uses the same client: the SDK 1.x
\`Client\` with the SDK's stdio or Streamable HTTP client transport (or the gateway's channel for (b)).

- Versions: \`@modelcontextprotocol/sdk\` ${ctx.versions.sdk} (client), \`@modelcontextprotocol/server-everything\` ${ctx.versions.everything} (the same version on the host and, pinned in the workspace spec, in the container), \`mcp-proxy\` ${ctx.versions.mcpProxy}, \`supergateway\` ${ctx.versions.supergateway}.
- Calls: ${plan.rounds} rounds × ${plan.callsPerRound} calls per row (${plan.rounds * plan.callsPerRound} per row in all), after ${plan.warmupCalls} warm-up calls per row and ${plan.rewarmCalls} unrecorded calls before each row's turn.
- Rounds interleave every row, forward then backward (${plan.rows.join(' ')} / ${[...plan.rows].reverse().join(' ')} / ...), so that the machine's drift reaches every row alike; "rounds" gives the median of the rounds' p50 and their spread (min–max).
- The gateway runs in this process (as in the create-to-ready run), so for (b), (e), (g) and (f) the client and the server side share one event loop; (a), (c) and (d) run the server (and the bridge) in other processes. The containers of (b), (e) and (g) have the spec's default limits (0.5 CPU, 512 MiB, hardened); the servers of (a), (c) and (d) have no limits. The workspace keeps every default of the request path (guardrails, audit trail of each request, redaction) except the rate limits and the cap on requests in flight to one server, raised so that the loops measure requests rather than the limiter.
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
  return marked('request-latency', lines.join('\n'));
}

function renderThroughput(rep: LatencyReport, ctx: RequestContext): MarkedSection {
  const { plan } = rep;
  const levels = plan.inFlight.join(', ').replace(/, (\d+)$/, ' and $1');
  const lines: string[] = [];
  lines.push(`## Throughput: \`tools/call\` of \`echo\` with ${levels} requests in flight

Written by \`${COMMAND}\` on ${TODAY}. Concurrent promises over one client (one session) per row, the same rows, client and versions as the latency table. Each (row, in-flight) pair runs ${plan.throughputRounds} times for ${plan.throughputMs / 1000} s (after 0.2 s unrecorded at the same level), in interleaved rounds (the rows forward, then backward); no call starts after the time is up, and a rate counts the calls completed until the last one finished. "requests/s" is the median over the rounds (min–max); latency is per call, over every round. A failed call is counted under "errors" (those of the unrecorded warm-up at that level in brackets) and the loop goes on; the failures are listed under the table.

- The workspaces of (e) and (g) raise \`rateLimits.concurrentPerServer\` (requests in flight to one server through the gateway's MCP endpoint, default 64) to ${CONCURRENT_PER_SERVER}, so that 128 in flight measures the gateway rather than its cap: with the default, every call past the 64th in flight to the server is refused at once (JSON-RPC error -32029, "too many requests in flight"), which this table would count under "errors". Their request-rate buckets are raised too (see the latency section). (b) opens a channel on the attach bridge directly, which has no such cap.
- Every HTTP row's client is Node's fetch, which opens as many connections to the origin as there are requests in flight (no per-origin limit by default); (a) and (b) multiplex every call over one stdio stream or one attach channel.
- Machine load average (1/5/15 min) at the start of the request measurements (latency, then throughput): ${fmtLoad(ctx.loadStart)}; at the end: ${fmtLoad(ctx.loadEnd)}.

| | in flight | requests/s: median (min–max) | p50 | p99 | calls | errors (warm-up) |
|---|---:|---:|---:|---:|---:|---:|`);
  for (const t of rep.throughput) {
    lines.push(
      `| (${t.key}) | ${t.inFlight} | ${median(t.rates).toFixed(0)} (${Math.min(...t.rates).toFixed(0)}–${Math.max(...t.rates).toFixed(0)}) | ${t.latency ? ms3(t.latency.p50) : '–'} | ${t.latency ? ms3(t.latency.p99) : '–'} | ${t.calls} | ${t.errors} (${t.warmupErrors}) |`,
    );
  }
  for (const s of rep.skipped) if (plan.throughputRows.includes(s.key)) lines.push(`| (${s.key}) | – | not measured: ${cell(s.reason).slice(0, 300)} | | | | |`);
  lines.push('');
  const failed = rep.throughput.filter((t) => t.errorKinds.length > 0);
  if (failed.length === 0) lines.push('No call failed at any level, recorded or warm-up.');
  else {
    lines.push('**Failed calls** (recorded and warm-up; the most frequent messages):');
    lines.push('');
    for (const t of failed) lines.push(`- (${t.key}) at ${t.inFlight} in flight: ${t.errorKinds.slice(0, 3).map((k) => `${k.count} × \`${cell(k.message)}\``).join('; ')}`);
  }
  lines.push('');
  lines.push(
    '(b), (e), (g) and (f) run the client and the server side on one event loop (this process), so their rate is that of one thread doing both; (a), (c) and (d) put the server and the bridge in processes of their own, on the other core. The server of (b), (e) and (g) is capped at 0.5 CPU by the workspace default.',
  );
  for (const a of ctx.discarded) lines.push('', `Discarded and measured again: ${cell(a)}.`);
  return marked('throughput', lines.join('\n'));
}

const WARM_ROW = '| warm |';
const COLD_ROW = '| cold (app image removed) |';
const WARM_NOTE = '- **Warm image cache.**';
const COLD_NOTE = '- **Cold image cache.**';

/**
 * The create-to-ready section: one table with a warm and a cold row. A row this run left out (`--skip=ready` or
 * `--skip=cold`) keeps its previous line and note, which name the command and date that measured them.
 */
function renderReady(r: ReadyResult | undefined, discarded: string[], previous: MarkedSection | undefined): MarkedSection {
  const prevLines = previous?.text.split('\n') ?? [];
  const kept = (prefix: string) => prevLines.find((l) => l.startsWith(prefix));
  const by = `measured by \`${COMMAND}\` on ${TODAY}`;
  const medianOf = (runs: CreatePhases[], k: 'imageMs' | 'startedMs' | 'readyMs') => ms(median(runs.map((p) => p[k])));
  const row = (label: string, c: CacheRuns | undefined, part: Part, target: string): string => {
    if (!c) return kept(label) ?? `${label} – | not measured: left out (\`--skip=${part}\`), and no earlier row was found | | | | | | | | | |`;
    if (c.runs.length === 0) return `${label} 0 of ${c.planned} | not measured (see below) | | | | | | | | ${by} | ${target} |`;
    const st: Spread = spread(c.runs.map((p) => p.totalMs));
    return `${label} ${st.n}${st.n < c.planned ? ` of ${c.planned}` : ''} | ${ms(st.median)} | ${ms(st.p10)} | ${ms(st.p90)} | ${ms(st.min)} | ${ms(st.max)} | ${medianOf(c.runs, 'imageMs')} | ${medianOf(c.runs, 'startedMs')} | ${medianOf(c.runs, 'readyMs')} | ${by} | ${target} |`;
  };
  const runList = (c: CacheRuns) => c.runs.map((p) => `${p.totalMs.toFixed(0)} (${p.imageMs}/${p.startedMs}/${p.readyMs})`).join(', ');
  const warmNote = (c: CacheRuns | undefined) => {
    if (!c) return kept(WARM_NOTE) ?? `${WARM_NOTE} Not measured (\`--skip=ready\`).`;
    return (
      `${WARM_NOTE} Every run finds the app image present (\`image_built\` with \`cached: true\`). Includes: the image cache check, the ext4 quota image on a loop device, volume and ` +
      `container creation with the full hardening, attach, start, Node start-up inside the container at 0.5 CPU, and the MCP \`initialize\` round trip. ` +
      `Runs, ${by}: client ms (image ready / container started / ready): ${runList(c)}.${c.notes.length > 0 ? ` ${cell(c.notes.join('; '))}.` : ''}`
    );
  };
  const coldNote = (c: CacheRuns | undefined, image: string) => {
    if (!c) return kept(COLD_NOTE) ?? `${COLD_NOTE} Not measured (\`--skip=cold\`).`;
    return (
      `${COLD_NOTE} Before each run the app image of server-memory (\`${image}\`) is removed with \`docker rmi\`: that image only, never forced, never the base image (\`mcpx-base\`), and only when no container ` +
      'uses it and no other test or bench run and no workspace of another gateway is active on the machine, as such a run could be about to use the same image (the bench waits a bounded time for that, then leaves the run out). ' +
      "So a cold run includes rebuilding the app image: a new staging folder, `npm install` of the package into it against the host's warm npm cache (`~/.npm`, so no download from the registry), and the image build on the Engine; " +
      "it does not include resolving the package (`npm view`: the gateway reuses the warm-up's answer for 10 minutes), a download, or building the base image, which a first start on a new host would also pay. " +
      `Runs, ${by}: client ms (image ready / container started / ready): ${c.runs.length > 0 ? runList(c) : 'none'}.${c.notes.length > 0 ? ` ${cell(c.notes.join('; '))}.` : ''}`
    );
  };
  const L: string[] = [];
  L.push('## Workspace create to `ready`: warm and cold image cache');
  L.push('');
  L.push(
    `Written by \`${COMMAND}\` on ${TODAY}. One workspace with one Node server (\`@modelcontextprotocol/server-memory\`), created through \`POST /api/v1/workspaces\` ` +
      'and polled every 5 ms until `status` is `ready` (every server answered the MCP handshake), then deleted; one warm-up run first (it builds the image if it is missing). ' +
      'Cold and warm runs alternate. The times are the client\'s, from the POST to the poll that saw `ready`; the phase columns are medians of the workspace\'s own event times, ' +
      'in ms after its `workspace_created` event: the server\'s image is present (`image_built`), `docker start` has returned (`container_started`), and `ready`. ' +
      'Each row names the command that measured it (a row left out with `--skip=` keeps its earlier line).',
  );
  L.push('');
  L.push('| image cache | runs | median | p10 | p90 | min | max | image ready | container started | ready (event) | measured by | target |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  L.push(row(WARM_ROW, r?.warm, 'ready', '< 1.5 s (issue 2), < 1.0 s (issue 7)'));
  L.push(row(COLD_ROW, r?.cold, 'cold', ''));
  L.push('');
  L.push(warmNote(r?.warm));
  L.push(coldNote(r?.cold, r?.image ?? ''));
  for (const a of discarded) L.push(`- Discarded and measured again: ${cell(a)}.`);
  return marked('create-to-ready', L.join('\n'));
}

/** The sections `npm run bench` writes, in this order; every other marked section follows, as it was. */
const OWN_SECTIONS = ['create-to-ready', 'request-latency', 'throughput', 'density'];

interface RunSummary {
  facts: { machine: string; versions: string };
  /** Seconds per part of this run, in order. */
  timings: [string, number][];
  left: string[];
}

function head(sections: MarkedSection[], run: RunSummary): string {
  const L: string[] = [];
  L.push('# Benchmarks');
  L.push('');
  L.push(
    `Last written by \`${COMMAND}\` on ${TODAY}. Figures are from one machine; rerun to compare. \`npm run bench\` writes every section below except the isolation ` +
      'and guardrails ones (their own scripts, see the README); a section left out with `--skip=` keeps the text of the run that wrote it, so each section names its command and date, listed here.',
  );
  L.push('');
  L.push(`- Machine: ${run.facts.machine}`);
  L.push(`- ${run.facts.versions}`);
  const total = run.timings.reduce((a, [, s]) => a + s, 0);
  const dur = (s: number) => (s < 90 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`);
  const timings = run.timings.length > 0 ? `${run.timings.map(([what, s]) => `${what} ${dur(s)}`).join(', ')}; ${dur(total)} in all.` : 'nothing measured.';
  L.push(`- This run: ${timings}${run.left.length > 0 ? ` Left out: ${run.left.join('; ')}.` : ''}`);
  L.push('');
  L.push('| section | written by |');
  L.push('|---|---|');
  for (const s of sections) {
    const { title, sources } = sectionSources(s);
    L.push(`| ${cell(title)} | ${sources.length > 0 ? sources.join('; ') : '–'} |`);
  }
  return L.join('\n');
}

function writeDoc(fresh: MarkedSection[], run: RunSummary): void {
  writeFileSync(DOC_FILE, composeDoc(readDoc(), fresh, OWN_SECTIONS, (sections) => head(sections, run)));
}

/**
 * The density bench as a child process (in its own process group, so that a Ctrl-C reaches it once, forwarded by
 * this process). It writes its own section. Bounded: past `limitMs` it is asked to stop (it then cleans up and
 * leaves its section alone), and forced 5 minutes later.
 */
async function runDensity(limitMs: number): Promise<string | undefined> {
  const args = ['--import', 'tsx', join(REPO, 'bench/density.ts'), ...(quick ? ['--quick'] : []), '--no-cold', `--invoked-as=${COMMAND}`];
  log(`density: node ${args.join(' ')} (at most ${(limitMs / 60_000).toFixed(0)} min)`);
  const child = spawn(process.execPath, args, { cwd: REPO, detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
  let exited = false;
  const stop = () => {
    try {
      if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const unregister = onCleanup({ sync: stop, async: () => Promise.resolve(stop()) });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  void done.then(() => (exited = true));
  const started = Date.now();
  let asked = 0;
  while (!exited) {
    const overdue = Date.now() - started > limitMs;
    if ((isInterrupted() || overdue) && asked === 0) {
      log(isInterrupted() ? 'density: stopping it' : `density: over its ${(limitMs / 60_000).toFixed(0)} min, stopping it`);
      stop();
      asked = Date.now();
    } else if (asked > 0 && Date.now() - asked > 5 * 60_000) {
      stop(); // a second signal: it removes what is left of its run and exits
      asked = Date.now();
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
  }
  unregister();
  const { code, signal } = await done;
  if (code === 0) return undefined;
  return `density bench ${asked > 0 ? 'stopped' : 'failed'} (exit ${code ?? signal}); its previous section is kept`;
}

async function main(): Promise<void> {
  installInterruptHandlers();
  const unknownParts = skipArg.filter((p) => !(p in PARTS));
  if (unknownParts.length > 0) throw new Error(`--skip: unknown part ${unknownParts.join(', ')} (parts: ${Object.keys(PARTS).join(', ')})`);
  const rows: RowKey[] = ['b', 'e', 'g', 'a', 'c', 'd', 'f'];
  const throughputRows: RowKey[] = ['a', 'b', 'c', 'd', 'e', 'g', 'f'];
  const inFlight = [1, 8, 32, 128];
  const plan: LatencyPlan = quick
    ? { rows, rounds: 3, callsPerRound: 300, warmupCalls: 300, rewarmCalls: 20, maxMsPerTurn: 30_000, throughputRows, inFlight, throughputRounds: 2, throughputMs: 500 }
    : { rows, rounds: 5, callsPerRound: 2000, warmupCalls: 2000, rewarmCalls: 50, maxMsPerTurn: 60_000, throughputRows, inFlight, throughputRounds: 3, throughputMs: 1000 };
  const readyPlan = {
    warmRuns: runs('ready') ? (quick ? 5 : 10) : 0,
    coldRuns: runs('cold') ? (quick ? 2 : 5) : 0,
    // Waiting for other runs to end before removing the image, in all over the cold runs.
    coldWaitMs: quick ? 60_000 : 300_000,
  };
  if (onlyRows) {
    const unknown = onlyRows.filter((k) => !(k in ROW_PATHS));
    if (unknown.length > 0) throw new Error(`--rows: unknown row ${unknown.join(', ')} (rows: ${Object.keys(ROW_PATHS).join(', ')})`);
    plan.rows = plan.rows.filter((k) => onlyRows.includes(k));
    plan.throughputRows = plan.throughputRows.filter((k) => onlyRows.includes(k));
  }
  if (!runs('latency')) {
    plan.rounds = 0;
    plan.rows = plan.throughputRows;
  }
  if (!runs('throughput')) plan.throughputRows = [];
  const requests = runs('latency') || runs('throughput');
  const ready = readyPlan.warmRuns > 0 || readyPlan.coldRuns > 0;

  const docker = new Docker();
  const engine = await docker.version();
  const run: RunSummary = { facts: machineFacts(engine), timings: [], left: [...skip].map((p) => `${PARTS[p]} (\`--skip=${p}\`)`) };
  const versions = {
    sdk: installedVersion('@modelcontextprotocol/sdk'),
    everything: installedVersion('@modelcontextprotocol/server-everything'),
    mcpProxy: installedVersion('mcp-proxy'),
    supergateway: installedVersion('supergateway'),
  };
  const fresh: MarkedSection[] = [];
  const previous = markedSections(readDoc());

  if (ready || requests) {
    await waitForQuietEngine(docker, 300_000);
    // Not "$TMPDIR/mcpx-*": the integration suites' global set-up and tear-down (detachTestLoops in
    // test/helpers/docker.ts) detach every loop device on a quota image under that prefix, whoever owns it.
    const dataDir = mkdtempSync(join(tmpdir(), 'bench-run-'));
    const loaded = loadGatewayConfig({ port: 0, dataDir }, {});
    if (!loaded.ok) throw new Error(loaded.errors.join('; '));
    const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }) });
    const removeGateway = onCleanup({
      // Last resort (after the workspaces' own, which remove their containers and volumes): their loop devices.
      sync: () => {
        try {
          detachLoops(gateway.dataDir);
        } catch {
          // best effort: the process is leaving
        }
        rmSync(dataDir, { recursive: true, force: true });
      },
      async: async () => {
        await gateway.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    });
    try {
      const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 3600 });
      if (ready) {
        const t0 = performance.now();
        const discarded: string[] = [];
        log(`create-to-ready: ${readyPlan.warmRuns} warm and ${readyPlan.coldRuns} cold runs`);
        const r = await createToReady(gateway, token, readyPlan, docker, discarded);
        fresh.push(renderReady(r, discarded, previous.find((s) => s.key === 'create-to-ready')));
        run.timings.push(['create-to-ready', (performance.now() - t0) / 1000]);
      }
      if (requests) {
        const t0 = performance.now();
        const discarded: string[] = [];
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
              const events = await workspaceEvents(gateway.url, token, name).catch(() => undefined);
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
        const ctx = { versions, loadStart, loadEnd, discarded };
        if (onlyRows) {
          if (report.rows.length > 0) console.log(renderLatency(report, ctx).text);
          if (report.throughput.length > 0) console.log(renderThroughput(report, ctx).text);
          return;
        }
        if (runs('latency')) fresh.push(renderLatency(report, ctx));
        if (runs('throughput')) fresh.push(renderThroughput(report, ctx));
        run.timings.push([runs('latency') && runs('throughput') ? 'latency and throughput' : runs('latency') ? 'latency' : 'throughput', (performance.now() - t0) / 1000]);
      }
    } finally {
      await cleanupAll();
      removeGateway();
    }
  }
  if (isInterrupted()) throw new Error('interrupted');
  // Written now and again after the density bench, so that a failure there loses nothing measured before.
  writeDoc(fresh, run);
  wrote = true;
  log(`wrote docs/benchmarks.md (${fresh.map((s) => s.key).join(', ') || 'the head only'})`);
  if (runs('density')) {
    const t0 = performance.now();
    const failed = await runDensity(quick ? 20 * 60_000 : 45 * 60_000);
    run.timings.push(['density', (performance.now() - t0) / 1000]);
    if (failed) {
      run.left.push(failed);
      log(failed);
    }
    writeDoc(fresh, run);
    log(`wrote docs/benchmarks.md again (the head${failed ? '' : ', with the density section'})`);
    if (failed && isInterrupted()) throw new Error('interrupted');
  }
}

/** True once this run's own sections are in docs/benchmarks.md (before the density bench). */
let wrote = false;

try {
  await main();
} catch (err) {
  if (isInterrupted()) {
    console.error(`bench: interrupted; cleaned up, ${wrote ? "docs/benchmarks.md has this run's sections; the density bench was stopped and its previous section is kept" : 'docs/benchmarks.md left alone'}`);
  } else {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    console.error("bench: if a server's container went away mid-run, another run on this Docker Engine most likely removed it; run the bench alone.");
  }
  await cleanupAll();
  process.exitCode = isInterrupted() ? 130 : 1;
}
