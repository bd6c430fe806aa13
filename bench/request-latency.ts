// Request latency and throughput of `tools/call` (the echo tool of server-everything) along seven paths, every one
// driven by the same client (the SDK 1.x Client): stdio, the attach bridge, mcp-proxy, supergateway, the gateway's
// MCP endpoint (with and without the audit trail), and an HTTP floor. Rows are measured in interleaved rounds so that
// drift on a noisy machine hits every row alike.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Gateway } from '../src/main.js';
import { startHttpFloor } from './http-floor.js';
import { latencyStats, median, mergeErrorKinds, sequential, throughput } from './measure.js';
import type { LatencyStats, ThroughputResult } from './measure.js';
import { freePort, isInterrupted, onCleanup, startHelper } from './processes.js';

export type RowKey = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g';

export const ROW_PATHS: Record<RowKey, string> = {
  a: 'stdio, no container (SDK `StdioClientTransport` spawning the server with node)',
  b: 'attach bridge to the hardened container (`openChannel()` as the Transport)',
  c: '`mcp-proxy` (Streamable HTTP on 127.0.0.1) → stdio, no container',
  d: '`supergateway --stateful` (Streamable HTTP on 127.0.0.1) → stdio, no container',
  e: 'mcpx gateway `/mcp/{ws}` (bearer JWT) → attach bridge → hardened container',
  f: 'HTTP floor: in-process `node:http` answering the echo itself (no auth, no upstream)',
  g: 'as (e), in a second workspace with `audit.requests: false` (no audit-trail entry per request)',
};

const require = createRequire(import.meta.url);

/** A package's installed manifest, looked up where Node would look for the package (its `exports` may hide it). */
function manifestOf(pkg: string): { dir: string; manifest: { version: string; bin?: string | Record<string, string> } } {
  for (const base of require.resolve.paths(pkg) ?? []) {
    const dir = join(base, pkg);
    if (existsSync(join(dir, 'package.json'))) {
      return { dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; bin?: string | Record<string, string> } };
    }
  }
  throw new Error(`${pkg} is not installed (npm ci)`);
}

/** The installed version and the file of a package's bin. */
export function installedBin(pkg: string, bin?: string): { version: string; path: string } {
  const { dir, manifest } = manifestOf(pkg);
  const rel = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[bin ?? Object.keys(manifest.bin ?? {})[0] ?? ''];
  if (!rel) throw new Error(`${pkg} has no bin`);
  return { version: manifest.version, path: join(dir, rel) };
}

export function installedVersion(pkg: string): string {
  return manifestOf(pkg).manifest.version;
}

/**
 * supergateway has no option for its listening address and binds every interface; this preload makes a listen
 * without a host bind 127.0.0.1, so that no port of the benchmark is reachable from outside the machine.
 */
const LOOPBACK_ONLY_PRELOAD =
  'data:text/javascript,' +
  encodeURIComponent(`import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  else if (args[0] && typeof args[0] === 'object' && args[0].path === undefined && args[0].host === undefined) args[0] = { ...args[0], host: '127.0.0.1' };
  return listen.apply(this, args);
};`);

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * The SDK's HTTP client transport passes its one long-lived AbortSignal to every fetch. Node's fetch adds a listener
 * to it per request, releases it only when the request object is garbage collected, and counts the signal's
 * listeners on every request, so the cost of a call grows with the number of calls made since the last collection
 * (tens of µs per call after a few thousand, plus a MaxListenersExceededWarning printed per call past 1,500). That is
 * the client's cost, not the server's, and it would make a long run slower than a short one; so POSTs go without
 * that signal. The GET stream keeps it, so that closing the client still ends the stream; the bench closes a client
 * only when none of its calls is in flight.
 */
export const fetchWithoutSharedSignal: FetchLike = (url, init) => fetch(url, init?.method === 'POST' ? { ...init, signal: null } : init);

interface OpenRow {
  key: RowKey;
  client: Client;
  serverInfo: string;
  call(): Promise<void>;
  close(): Promise<void>;
}

const MESSAGE = 'bench';

async function connectClient(key: RowKey, transport: Transport, close: () => Promise<void>): Promise<OpenRow> {
  const client = new Client({ name: 'mcpx-bench', version: '0.1.0' });
  try {
    await client.connect(transport, { timeout: 30_000 });
    const tools = await client.listTools(undefined, { timeout: 30_000 });
    if (!tools.tools.some((t) => t.name === 'echo')) throw new Error(`row ${key}: the server has no echo tool`);
  } catch (err) {
    await client.close().catch(() => undefined);
    await close();
    throw err;
  }
  const v = client.getServerVersion();
  return {
    key,
    client,
    serverInfo: v ? `${v.name} ${v.version}` : '?',
    async call() {
      const r = await client.callTool({ name: 'echo', arguments: { message: MESSAGE } }, undefined, { timeout: 10_000 });
      const first = (r.content as { type: string; text?: string }[] | undefined)?.[0];
      if (r.isError || first?.text !== `Echo: ${MESSAGE}`) throw new Error(`row ${key}: unexpected echo result ${JSON.stringify(r).slice(0, 300)}`);
    },
    async close() {
      await client.close().catch(() => undefined);
      await close();
    },
  };
}

export interface RowsContext {
  gateway: Gateway;
  token: string;
  workspace: string;
  /** The same server in a workspace whose spec turns the per-request audit trail off (row g). */
  workspaceWithoutAudit: string;
  server: string;
}

/** Opens one client per row; every row's resources are registered for clean-up before anything can fail. */
async function openRow(key: RowKey, ctx: RowsContext): Promise<OpenRow> {
  const entry = installedBin('@modelcontextprotocol/server-everything').path;
  const http = (url: string, headers: Record<string, string> = {}) => new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: fetchWithoutSharedSignal });
  switch (key) {
    case 'a': {
      const t = new StdioClientTransport({ command: process.execPath, args: [entry, 'stdio'], stderr: 'ignore' });
      let pid: number | null = null;
      const unregister = onCleanup({
        sync: () => {
          if (pid !== null) process.kill(pid, 'SIGKILL');
        },
        async: () => t.close(),
      });
      const row = await connectClient(key, t, async () => {
        await t.close().catch(() => undefined);
        unregister();
      });
      pid = t.pid;
      return row;
    }
    case 'b': {
      const conn = ctx.gateway.manager.connection(ctx.workspace, ctx.server);
      if (!conn) throw new Error(`row b: no live connection to ${ctx.workspace}/${ctx.server}`);
      // The channel has the SDK's Transport shape (declared in src/ without depending on the SDK's types).
      return connectClient(key, conn.openChannel() as unknown as Transport, () => Promise.resolve());
    }
    case 'c': {
      const port = await freePort();
      const bin = installedBin('mcp-proxy').path;
      const helper = await startHelper('mcp-proxy', [bin, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--endpoint', '/mcp', '--', process.execPath, entry, 'stdio'], port);
      return connectClient(key, http(`http://127.0.0.1:${port}/mcp`), () => helper.stop());
    }
    case 'd': {
      const port = await freePort();
      const bin = installedBin('supergateway').path;
      const helper = await startHelper(
        'supergateway',
        ['--import', LOOPBACK_ONLY_PRELOAD, bin, '--stdio', `${shellQuote(process.execPath)} ${shellQuote(entry)} stdio`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'],
        port,
      );
      return connectClient(key, http(`http://127.0.0.1:${port}/mcp`), () => helper.stop());
    }
    case 'e':
    case 'g': {
      const ws = key === 'e' ? ctx.workspace : ctx.workspaceWithoutAudit;
      return connectClient(key, http(`${ctx.gateway.url}/mcp/${ws}`, { authorization: `Bearer ${ctx.token}` }), () => Promise.resolve());
    }
    case 'f': {
      const floor = await startHttpFloor();
      const unregister = onCleanup({ sync: () => undefined, async: () => floor.close() });
      return connectClient(key, http(floor.url), async () => {
        await floor.close();
        unregister();
      });
    }
  }
}

export interface LatencyPlan {
  /** The rows to open (in this order); the throughput rows must be among them. */
  rows: RowKey[];
  /** Rounds of the sequential latency table; 0 leaves the table out (throughput only). */
  rounds: number;
  callsPerRound: number;
  warmupCalls: number;
  /** Unrecorded calls before each row's turn in a round (the previous row ran in between). */
  rewarmCalls: number;
  /** Budget for one row's turn in one round. */
  maxMsPerTurn: number;
  throughputRows: RowKey[];
  inFlight: number[];
  /** Each (row, in-flight) pair is measured once per round, for this long, after a short warm-up at that level. */
  throughputRounds: number;
  throughputMs: number;
}

export interface RowResult {
  key: RowKey;
  serverInfo: string;
  all: LatencyStats;
  rounds: LatencyStats[];
  /** Median of the rounds' p50 and their spread. */
  p50Median: number;
  p50Min: number;
  p50Max: number;
}

export interface ThroughputRow {
  key: RowKey;
  inFlight: number;
  /** Per round: completed calls per second. */
  rates: number[];
  calls: number;
  errors: number;
  /** Failed calls of the unrecorded warm-up at this level (reported apart from `errors`). */
  warmupErrors: number;
  /** The failures (recorded and warm-up) by message, most frequent first. */
  errorKinds: { message: string; count: number }[];
  /** Per-call latency over every round; undefined when no call succeeded. */
  latency: LatencyStats | undefined;
}

export interface LatencyReport {
  plan: LatencyPlan;
  rows: RowResult[];
  throughput: ThroughputRow[];
  skipped: { key: RowKey; reason: string }[];
}

export async function measureRequests(ctx: RowsContext, plan: LatencyPlan, log: (line: string) => void): Promise<LatencyReport> {
  const open = new Map<RowKey, OpenRow>();
  const skipped: { key: RowKey; reason: string }[] = [];
  const limits = (count: number) => ({ count, maxMs: plan.maxMsPerTurn, stopped: isInterrupted });
  try {
    for (const key of plan.rows) {
      try {
        const row = await openRow(key, ctx);
        open.set(key, row);
        log(`row ${key}: connected to ${row.serverInfo}; warming up (${plan.warmupCalls} calls)`);
        await sequential(() => row.call(), limits(plan.warmupCalls));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        // Only the baselines may be skipped; the gateway's own rows must work.
        if (key !== 'c' && key !== 'd') throw err;
        skipped.push({ key, reason });
        log(`row ${key}: skipped: ${reason}`);
        await open.get(key)?.close();
        open.delete(key);
      }
    }
    const keys = plan.rows.filter((k) => open.has(k));
    const samples = new Map<RowKey, number[]>(keys.map((k) => [k, []]));
    const perRound = new Map<RowKey, LatencyStats[]>(keys.map((k) => [k, []]));
    for (let r = 0; r < plan.rounds && !isInterrupted(); r++) {
      // Forward, then backward: a drift in time hits both ends of the order alike.
      const order = r % 2 === 0 ? keys : [...keys].reverse();
      for (const key of order) {
        const row = open.get(key)!;
        await sequential(() => row.call(), limits(plan.rewarmCalls));
        const s = await sequential(() => row.call(), limits(plan.callsPerRound));
        if (s.length < plan.callsPerRound && !isInterrupted()) log(`row ${key}: round ${r + 1} hit its time budget after ${s.length} calls`);
        samples.get(key)!.push(...s);
        const st = latencyStats(s);
        perRound.get(key)!.push(st);
        log(`round ${r + 1}/${plan.rounds} row ${key}: n=${st.n} p50=${st.p50.toFixed(3)} p90=${st.p90.toFixed(3)} p99=${st.p99.toFixed(3)} ms`);
      }
    }
    if (isInterrupted()) throw new Error('interrupted');

    const rows: RowResult[] = (plan.rounds > 0 ? keys : []).map((key) => {
      const p50s = perRound.get(key)!.map((s) => s.p50);
      return {
        key,
        serverInfo: open.get(key)!.serverInfo,
        all: latencyStats(samples.get(key)!),
        rounds: perRound.get(key)!,
        p50Median: median(p50s),
        p50Min: Math.min(...p50s),
        p50Max: Math.max(...p50s),
      };
    });

    // Throughput, also in interleaved rounds: a burst of load elsewhere on the machine then costs one round of
    // one row, and the median over rounds shows it.
    const tpKeys = plan.throughputRows.filter((k) => open.has(k));
    const tpRuns = new Map<string, ThroughputResult[]>();
    const tpWarmups = new Map<string, ThroughputResult[]>();
    const add = (m: Map<string, ThroughputResult[]>, k: string, t: ThroughputResult) => m.set(k, [...(m.get(k) ?? []), t]);
    for (let r = 0; r < plan.throughputRounds; r++) {
      const order = r % 2 === 0 ? tpKeys : [...tpKeys].reverse();
      for (const key of order) {
        const row = open.get(key)!;
        for (const n of plan.inFlight) {
          if (isInterrupted()) throw new Error('interrupted');
          add(tpWarmups, `${key}:${n}`, await throughput(() => row.call(), n, Math.min(200, plan.throughputMs), 1_000_000, isInterrupted));
          const t = await throughput(() => row.call(), n, plan.throughputMs, 1_000_000, isInterrupted);
          add(tpRuns, `${key}:${n}`, t);
          log(
            `throughput round ${r + 1}/${plan.throughputRounds} row ${key}, ${n} in flight: ${t.perSecond.toFixed(0)}/s p50=${t.latency?.p50.toFixed(3) ?? '-'} p99=${t.latency?.p99.toFixed(3) ?? '-'} ms errors=${t.errors}` +
              (t.errorKinds[0] ? ` (${t.errorKinds[0].message})` : ''),
          );
        }
      }
    }
    const tp: ThroughputRow[] = tpKeys.flatMap((key) =>
      plan.inFlight.map((n) => {
        const runs = tpRuns.get(`${key}:${n}`)!;
        const warmups = tpWarmups.get(`${key}:${n}`) ?? [];
        const samples = runs.flatMap((t) => t.samples);
        return {
          key,
          inFlight: n,
          rates: runs.map((t) => t.perSecond),
          calls: runs.reduce((a, t) => a + t.completed, 0),
          errors: runs.reduce((a, t) => a + t.errors, 0),
          warmupErrors: warmups.reduce((a, t) => a + t.errors, 0),
          errorKinds: [...runs, ...warmups].reduce<{ message: string; count: number }[]>((a, t) => mergeErrorKinds(a, t.errorKinds), []),
          latency: samples.length > 0 ? latencyStats(samples) : undefined,
        };
      }),
    );
    return { plan, rows, throughput: tp, skipped };
  } finally {
    for (const row of open.values()) await row.close();
  }
}
