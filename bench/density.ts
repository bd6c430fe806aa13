// `node --import tsx bench/density.ts [--quick] [--cold | --no-cold] [--no-wait]`: how many workspaces one gateway runs
// on this machine, what each one costs, how fast a hibernating one wakes, and create-to-ready from a cold image cache.
// Writes its own section of docs/benchmarks.md (between the density markers; the rest of the file is left as it is).
// `npm run bench` runs it last, with `--no-cold` (its own create-to-ready section measures the cold cache).
//
//   1. density: N running workspaces (server-memory, hibernate "never") in steps; at each step the gateway's RSS and
//      heap, each container's cgroup v1 memory, the host's available memory, and tools/call read_graph latency to
//      random workspaces at light load (sequential calls);
//   2. registered with hibernation: M workspaces created in batches and put to sleep right after `ready`;
//   3. wake-up: hibernateNow, then one tools/call on a session opened before (event detail.ms and the client's view);
//   4. create-to-ready with the app image removed (cold), then warm.
//
// Traffic goes only to loopback and to the containers this run starts. Every loop is bounded in count and time, and
// every workspace this run creates is deleted through the API (and waited for until 404) on every way out; a run
// killed without unwinding removes its containers, volumes and loop devices (found by this gateway's id) on exit.
// `--quick`: small numbers, no cold-cache run (`--cold` forces it, `--no-cold` leaves it out of a full run).
// `--no-wait`: do not wait for a quiet machine. `--invoked-as=<command>`: the command named in the section (set by
// `npm run bench`). `--hibernate-after=<duration>`: part 2's idle time (default 1s); `--sweep-every-ms=<n>`: the
// gateway's idle sweep interval (default the gateway's 5 s); `--registered=<n>`: part 2's target. All three for trials.
// `--only-wake`: part 3 alone (both gateways), e.g. to compare wake-ups before and after a change;
// `--wake-runs=<n>`: part 3's runs on each gateway (default 10, 5 with the resolution expired; 3 and 2 with --quick).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Docker from 'dockerode';
import { pino } from 'pino';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { loadGatewayConfig } from '../src/config/index.js';
import { startGateway } from '../src/main.js';
import type { Gateway } from '../src/main.js';
import { marked, writeSection } from './bench-doc.js';
import type { MarkedSection } from './bench-doc.js';
import { api, createPhases, MEMORY_SERVER, otherGatewaysContainers, removeAppImage, workspaceEvents } from './create-to-ready.js';
import type { CreatePhases, EventView } from './create-to-ready.js';
import { otherRuns } from './processes.js';

const quick = process.argv.includes('--quick');
const cold = process.argv.includes('--cold') || (!quick && !process.argv.includes('--no-cold'));
const noWait = process.argv.includes('--no-wait');
/** Part 2's `hibernate.after` (trials: a very short one makes the idle sweeper's race at `ready` frequent). */
const REG_AFTER = process.argv.find((a) => a.startsWith('--hibernate-after='))?.slice('--hibernate-after='.length) ?? '1s';
/** The gateway's idle sweep interval (trials only; default: the gateway's own, 5 s). */
const SWEEP_EVERY = Number(process.argv.find((a) => a.startsWith('--sweep-every-ms='))?.slice('--sweep-every-ms='.length) ?? NaN);
const INVOKED_AS = process.argv.find((a) => a.startsWith('--invoked-as='))?.slice('--invoked-as='.length);
const OWN_ARGS = process.argv.slice(2).filter((a) => !a.startsWith('--invoked-as='));
const COMMAND = INVOKED_AS ?? `node --import tsx bench/density.ts${OWN_ARGS.length > 0 ? ` ${OWN_ARGS.join(' ')}` : ''}`;
const REPO = resolve(import.meta.dirname, '..');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const RUN = randomBytes(3).toString('hex');

const PLAN_BASE = quick
  ? { steps: [5, 10], createConcurrency: 4, latencyCalls: 100, registered: 20, registerConcurrency: 6, wakeRuns: 3, expiredWakeRuns: 2, part1BudgetMs: 4 * 60_000, part2BudgetMs: 3 * 60_000, totalBudgetMs: 12 * 60_000 }
  : { steps: [25, 50, 100, 150, 200, 300, 400], createConcurrency: 4, latencyCalls: 300, registered: 2000, registerConcurrency: 6, wakeRuns: 10, expiredWakeRuns: 5, part1BudgetMs: 12 * 60_000, part2BudgetMs: 10 * 60_000, totalBudgetMs: 30 * 60_000 };
/** `--registered=<n>`: part 2's target (trials). */
const REGISTERED = Number(process.argv.find((a) => a.startsWith('--registered='))?.slice('--registered='.length) ?? NaN);
const onlyWake = process.argv.includes('--only-wake');
const WAKE_RUNS = Number(process.argv.find((a) => a.startsWith('--wake-runs='))?.slice('--wake-runs='.length) ?? NaN);
const PLAN = {
  ...PLAN_BASE,
  ...(Number.isInteger(REGISTERED) && REGISTERED > 0 ? { registered: REGISTERED } : {}),
  ...(Number.isInteger(WAKE_RUNS) && WAKE_RUNS > 0 ? { wakeRuns: WAKE_RUNS, expiredWakeRuns: WAKE_RUNS } : {}),
};
/** Stop adding workspaces below this much available host memory. */
const MIN_AVAILABLE = 3 * GiB;

const log = (line: string) => console.error(`density: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- interruption and last-resort clean-up ---------------------------------------------------------------

let interrupted = false;
/** Last-resort clean-ups (the process leaves without unwinding), one per gateway this run started. */
const lastResorts = new Set<() => void>();
const lastResort = () => {
  for (const f of [...lastResorts]) f();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      lastResort();
      process.exit(130);
    }
    interrupted = true;
    log(`${sig} received: stopping and deleting this run's workspaces (send it again to force)`);
  });
}
process.on('exit', lastResort);

// ---- small helpers -----------------------------------------------------------------------------------------

interface Pct {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles (no interpolation). */
function pct(samples: readonly number[]): Pct {
  const s = [...samples].sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), min: s[0]!, max: s.at(-1)!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}
const median = (v: readonly number[]) => pct(v).p50;

const fms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : '–');
const fms1 = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '–');
const fmib = (v: number) => (Number.isFinite(v) ? `${(v / MiB).toFixed(1)} MiB` : '–');
const fgib = (v: number) => (Number.isFinite(v) ? `${(v / GiB).toFixed(2)} GiB` : '–');
const fload = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

/** Runs `fn` over `items` with at most `limit` in flight; no new item starts once `stop()` is true. */
async function pool<T>(items: readonly T[], limit: number, stop: () => boolean, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---- measuring the host ---------------------------------------------------------------------------------------

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function meminfo(): { available: number; free: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { available: field('MemAvailable'), free: field('MemFree') };
}

/** Pids and RSS of processes whose command name starts with `prefix` (from /proc). */
function processesNamed(prefix: string): { pid: number; rss: number }[] {
  const out: { pid: number; rss: number }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const status = readFileSync(`/proc/${e}/status`, 'utf8');
      const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '';
      if (!name.startsWith(prefix)) continue;
      out.push({ pid: Number(e), rss: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024 });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

function ownFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
}

interface GatewayMem {
  rss: number;
  heapUsed: number;
  external: number;
  fds: number;
}

/** The gateway process (this process: gateway and bench client share it) after a full collection. */
function gatewayMem(): GatewayMem {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers, fds: ownFds() };
}

/** One container's memory from cgroup v1 (usage_in_bytes and the rss/cache split); docker stats as fallback. */
async function containerMemory(docker: Docker, id: string): Promise<{ usage: number; rss: number; cache: number }> {
  const dir = `/sys/fs/cgroup/memory/docker/${id}`;
  try {
    const usage = Number(readFileSync(`${dir}/memory.usage_in_bytes`, 'utf8').trim());
    const stat = readFileSync(`${dir}/memory.stat`, 'utf8');
    const f = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(stat)?.[1] ?? NaN);
    return { usage, rss: f('total_rss'), cache: f('total_cache') };
  } catch {
    const s = (await docker.getContainer(id).stats({ stream: false, 'one-shot': true } as { stream: false })) as { memory_stats?: { usage?: number; stats?: Record<string, number> } };
    return { usage: s.memory_stats?.usage ?? NaN, rss: s.memory_stats?.stats?.total_rss ?? NaN, cache: s.memory_stats?.stats?.total_cache ?? NaN };
  }
}

// ---- is the machine quiet? ------------------------------------------------------------------------------------

interface Quietness {
  waitedMs: number;
  quiet: boolean;
  others: string[];
  loadAtStart: number[];
}

/** Full mode: waits (at most 10 minutes, polling every 20 s) for no other vitest or bench run. */
async function waitForQuiet(): Promise<Quietness> {
  const started = performance.now();
  let others = otherRuns();
  if (quick || noWait) return { waitedMs: 0, quiet: others.length === 0, others, loadAtStart: loadavg() };
  for (let i = 0; others.length > 0 && i < 30 && !interrupted; i++) {
    log(`waiting for a quiet machine (${others.length} other run(s): ${others.map((o) => o.slice(0, 60)).join(' | ')})`);
    await sleep(20_000);
    others = otherRuns();
  }
  return { waitedMs: performance.now() - started, quiet: others.length === 0, others, loadAtStart: loadavg() };
}

// ---- the gateway and its workspaces ---------------------------------------------------------------------------

const RATE_LIMITS = {
  perToken: { rate: 100_000, burst: 100_000 },
  perWorkspace: { rate: 100_000, burst: 100_000 },
  concurrentPerServer: 1000,
};

function memorySpec(name: string, after: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    servers: [MEMORY_SERVER],
    rateLimits: RATE_LIMITS,
    hibernate: { after },
    ...extra,
  };
}

interface Detail {
  status: string;
  servers: { name: string; status: string; image?: string; container?: { id: string } }[];
}

const noSharedSignal: FetchLike = (url, init) => fetch(url, init?.method === 'POST' ? { ...init, signal: null } : init);

class Bench {
  /** Workspaces that may exist (POST answered 201 and not yet seen gone). */
  readonly live = new Set<string>();
  readonly docker = new Docker();
  constructor(
    readonly gateway: Gateway,
    readonly token: string,
    readonly gatewayId: string,
  ) {}

  get url() {
    return this.gateway.url;
  }

  /** POST, then polls until ready; returns the milliseconds from the POST to `ready`. */
  /**
   * POST, then polls until ready; returns the milliseconds from the POST to `ready` as the client saw it. A workspace
   * with a short `hibernate.after` may be put to sleep by the gateway's idle sweeper the moment it is ready (see the
   * notes of the section): `hibernating` after a `ready` event counts as ready, with `sleptAtReady` and the ms from the
   * workspace's own `workspace_created` to `ready` events.
   */
  async create(spec: { name: string }, everyMs: number, timeoutMs = 180_000): Promise<{ ms: number; detail: Detail; sleptAtReady?: { idleMs: unknown; afterReadyMs: number } }> {
    const t0 = performance.now();
    const r = await api(this.url, 'POST', '/api/v1/workspaces', this.token, spec);
    if (r.status !== 201) throw new Error(`create ${spec.name}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    this.live.add(spec.name);
    const deadline = t0 + timeoutMs;
    for (;;) {
      const g = await api<Detail>(this.url, 'GET', `/api/v1/workspaces/${spec.name}`, this.token);
      if (g.body?.status === 'ready') return { ms: performance.now() - t0, detail: g.body };
      if (g.body?.status === 'hibernating') {
        const ev = await this.events(spec.name);
        const at = (t: string) => Date.parse(ev.find((e) => e.type === t)?.at ?? '');
        const slept = ev.find((e) => e.type === 'workspace_hibernated');
        if (Number.isFinite(at('ready')) && slept) {
          return { ms: at('ready') - at('workspace_created'), detail: g.body, sleptAtReady: { idleMs: slept.detail?.idleMs, afterReadyMs: Date.parse(slept.at) - at('ready') } };
        }
      }
      if (g.body?.status === 'failed') throw new Error(`${spec.name} failed: ${JSON.stringify(g.body.servers).slice(0, 300)}`);
      if (performance.now() > deadline) throw new Error(`${spec.name} not ready within ${timeoutMs / 1000} s (status ${g.body?.status})`);
      if (interrupted) throw new Error('interrupted');
      await sleep(everyMs);
    }
  }

  /** DELETE and wait for 404. */
  async remove(name: string): Promise<void> {
    const r = await api(this.url, 'DELETE', `/api/v1/workspaces/${name}`, this.token);
    if (r.status !== 404) {
      const deadline = Date.now() + 120_000;
      while ((await api(this.url, 'GET', `/api/v1/workspaces/${name}`, this.token)).status !== 404) {
        if (Date.now() > deadline) throw new Error(`workspace ${name} was not deleted within 120 s`);
        await sleep(50);
      }
    }
    this.live.delete(name);
  }

  /** Deletes every workspace this run may have created; returns the time it took and any failures. */
  async removeAll(concurrency = 8): Promise<{ n: number; ms: number; failures: string[] }> {
    const names = [...this.live];
    const failures: string[] = [];
    const t0 = performance.now();
    // Clean-up ignores interruption: it is what an interrupted run must still do.
    await pool(names, concurrency, () => false, async (name) => {
      await this.remove(name).catch((err: unknown) => failures.push(`${name}: ${errText(err)}`));
    });
    return { n: names.length, ms: performance.now() - t0, failures };
  }

  async events(name: string, after = 0): Promise<EventView[]> {
    return workspaceEvents(this.url, this.token, name, after);
  }

  async ownContainers(running: boolean): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: !running, filters: { label: [`mcpx.gateway=${this.gatewayId}`], ...(running ? { status: ['running'] } : {}) } });
  }

  async connect(name: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(`${this.url}/mcp/${name}`), {
      requestInit: { headers: { authorization: `Bearer ${this.token}` } },
      fetch: noSharedSignal,
    });
    const client = new Client({ name: 'mcpx-density', version: '0.1.0' });
    await client.connect(transport, { timeout: 60_000 });
    return { client, transport };
  }

  async readGraph(client: Client): Promise<void> {
    const r = await client.callTool({ name: 'read_graph', arguments: {} }, undefined, { timeout: 60_000 });
    if (r.isError || !Array.isArray(r.content)) throw new Error(`read_graph: unexpected result ${JSON.stringify(r).slice(0, 200)}`);
  }
}

async function closeSession(s: { client: Client; transport: StreamableHTTPClientTransport }): Promise<void> {
  // Ends the session on the gateway too (DELETE); a client close alone leaves it until the idle sweep.
  await s.transport.terminateSession().catch(() => undefined);
  await s.client.close().catch(() => undefined);
}

/** Where a wake-up's time went, from the events after `before` (ms after the wake-up began). */
interface WakePhases {
  adopted: number;
  started: number;
  initialized: number;
  woken: number;
}

function wakePhases(events: EventView[]): WakePhases | undefined {
  const woken = events.find((e) => e.type === 'workspace_woken');
  if (typeof woken?.detail?.ms !== 'number') return undefined;
  const begin = Date.parse(woken.at) - woken.detail.ms;
  const at = (t: string) => Date.parse(events.find((e) => e.type === t)?.at ?? '') - begin;
  return { adopted: at('container_adopted'), started: at('container_started'), initialized: at('server_initialized'), woken: woken.detail.ms };
}

// ---- 1. density -------------------------------------------------------------------------------------------------

interface StepResult {
  n: number;
  createdInStep: number;
  createMs: Pct;
  stepCreateSeconds: number;
  gateway: GatewayMem;
  containers: { n: number; usage: Pct; rss: Pct; total: number };
  host: { available: number; free: number; dockerdRss: number; shims: number; shimsRss: number };
  latency: Pct;
  latencyFirst: Pct;
  latencyLater: Pct;
  sessionsOpened: number;
  load: number[];
  others: number;
}

interface DensityResult {
  steps: StepResult[];
  stopReason: string;
  baseline: { gateway: GatewayMem; available: number; dockerdRss: number };
  failures: string[];
}

async function measureLatency(b: Bench, names: readonly string[], calls: number): Promise<{ all: Pct; first: Pct; later: Pct; opened: number }> {
  const sessions = new Map<string, { client: Client; transport: StreamableHTTPClientTransport }>();
  const all: number[] = [];
  const first: number[] = [];
  const later: number[] = [];
  const deadline = performance.now() + 120_000;
  try {
    for (let i = 0; i < calls && !interrupted && performance.now() < deadline; i++) {
      const name = names[Math.floor(Math.random() * names.length)]!;
      let s = sessions.get(name);
      const fresh = !s;
      if (!s) {
        s = await b.connect(name); // not timed: the session is opened lazily before its first call
        sessions.set(name, s);
      }
      const t0 = performance.now();
      await b.readGraph(s.client);
      const d = performance.now() - t0;
      all.push(d);
      (fresh ? first : later).push(d);
    }
  } finally {
    await pool([...sessions.values()], 16, () => false, closeSession);
  }
  return { all: pct(all), first: pct(first), later: pct(later), opened: sessions.size };
}

async function density(b: Bench): Promise<DensityResult> {
  const names: string[] = [];
  const failures: string[] = [];
  const started = performance.now();
  gatewayMem();
  const base = { gateway: gatewayMem(), available: meminfo().available, dockerdRss: processesNamed('dockerd').reduce((a, p) => a + p.rss, 0) };
  const steps: StepResult[] = [];
  let stopReason = `reached the last step (${PLAN.steps.at(-1)})`;
  outer: for (const target of PLAN.steps) {
    if (interrupted) {
      stopReason = 'interrupted';
      break;
    }
    const avail = meminfo().available;
    if (avail < MIN_AVAILABLE) {
      stopReason = `host available memory ${fgib(avail)} < 3 GiB before the step to ${target}`;
      break;
    }
    if (performance.now() - started > PLAN.part1BudgetMs) {
      stopReason = `time budget of part 1 (${PLAN.part1BudgetMs / 60_000} min) used up before the step to ${target}`;
      break;
    }
    const todo = Array.from({ length: target - names.length }, (_, i) => `dens-${RUN}-${names.length + i + 1}`);
    const createMs: number[] = [];
    let failed: string | undefined;
    let lowMemory: number | undefined;
    const stepStart = performance.now();
    log(`density: creating ${todo.length} workspaces (to ${target}), ${PLAN.createConcurrency} at a time`);
    await pool(todo, PLAN.createConcurrency, () => interrupted || failed !== undefined || lowMemory !== undefined, async (name) => {
      const avail = meminfo().available;
      if (avail < MIN_AVAILABLE) {
        lowMemory = avail;
        return;
      }
      try {
        const r = await b.create(memorySpec(name, 'never'), 25);
        createMs.push(r.ms);
        names.push(name);
      } catch (err) {
        failed ??= `${name}: ${errText(err)}`;
        failures.push(`${name}: ${errText(err)}`);
      }
    });
    const stepCreateSeconds = (performance.now() - stepStart) / 1000;
    if (names.length === 0) {
      stopReason = failed ? `create failed: ${failed}` : 'no workspace created';
      break;
    }
    await sleep(2000); // let the last servers settle after their handshake
    const gw = gatewayMem();
    const running = await b.ownContainers(true);
    const mems = await Promise.all(running.map((c) => containerMemory(b.docker, c.Id).catch(() => ({ usage: NaN, rss: NaN, cache: NaN }))));
    const host = meminfo();
    const shims = processesNamed('containerd-shim');
    const lat = await measureLatency(b, names, PLAN.latencyCalls);
    const step: StepResult = {
      n: names.length,
      createdInStep: createMs.length,
      createMs: pct(createMs),
      stepCreateSeconds,
      gateway: gw,
      containers: { n: running.length, usage: pct(mems.map((m) => m.usage)), rss: pct(mems.map((m) => m.rss)), total: mems.reduce((a, m) => a + (Number.isFinite(m.usage) ? m.usage : 0), 0) },
      host: { available: host.available, free: freemem(), dockerdRss: processesNamed('dockerd').reduce((a, p) => a + p.rss, 0), shims: shims.length, shimsRss: shims.reduce((a, p) => a + p.rss, 0) },
      latency: lat.all,
      latencyFirst: lat.first,
      latencyLater: lat.later,
      sessionsOpened: lat.opened,
      load: loadavg(),
      others: otherRuns().length,
    };
    steps.push(step);
    log(
      `density: ${step.n} running: gateway rss ${fmib(gw.rss)} heap ${fmib(gw.heapUsed)}; containers ${fmib(step.containers.usage.p50)} median, ${fgib(step.containers.total)} total; ` +
        `available ${fgib(host.available)}; read_graph p50 ${fms1(lat.all.p50)} p99 ${fms1(lat.all.p99)} (${lat.all.n} calls); load ${fload(step.load)}`,
    );
    if (failed) {
      stopReason = `a create failed at ${names.length + 1}: ${failed}`;
      break outer;
    }
    if (lowMemory !== undefined) {
      stopReason = `host available memory fell to ${fgib(lowMemory)} (< 3 GiB) at ${names.length} workspaces`;
      break outer;
    }
    if (names.length < target) {
      stopReason = interrupted ? 'interrupted' : `stopped at ${names.length} of ${target}`;
      break outer;
    }
  }
  return { steps, stopReason, baseline: base, failures };
}

// ---- 2. registered, hibernating ----------------------------------------------------------------------------------

interface RegisterSample {
  registered: number;
  seconds: number;
  rss: number;
  heapUsed: number;
  fds: number;
  running: number;
  available: number;
  dockerdRss: number;
  createP50: number;
  hibernateP50: number;
  others: number;
}

interface RegisterResult {
  target: number;
  registered: number;
  hibernated: number;
  runningAtEnd: number;
  statusCounts: Record<string, number>;
  seconds: number;
  stopReason: string;
  samples: RegisterSample[];
  baseline: GatewayMem;
  end: GatewayMem;
  createMs: Pct;
  hibernateMs: Pct;
  failures: string[];
  sleptAtReady: string[];
  wakes: { name: string; connectMs: number; callMs: number; eventMs: number | undefined; answered: boolean; phases: WakePhases | undefined; sequence: string }[];
  diskBytes: number;
}

async function registered(b: Bench, budgetMs: number): Promise<RegisterResult> {
  const M = PLAN.registered;
  const names = Array.from({ length: M }, (_, i) => `hib-${RUN}-${i + 1}`);
  const done: string[] = [];
  const failures: string[] = [];
  const sleptAtReady: string[] = [];
  const createMs: number[] = [];
  const hibernateMs: number[] = [];
  const recentCreate: number[] = [];
  const recentHibernate: number[] = [];
  let hibernated = 0;
  const baseline = gatewayMem();
  const samples: RegisterSample[] = [];
  const every = Math.max(1, Math.floor(M / 10));
  const t0 = performance.now();
  let stopReason = `all ${M} registered`;
  let stopping = false;
  const sample = async () => {
    const gw = gatewayMem();
    samples.push({
      registered: done.length,
      seconds: (performance.now() - t0) / 1000,
      rss: gw.rss,
      heapUsed: gw.heapUsed,
      fds: gw.fds,
      running: (await b.ownContainers(true)).length,
      available: meminfo().available,
      dockerdRss: processesNamed('dockerd').reduce((a, p) => a + p.rss, 0),
      createP50: median(recentCreate.splice(0)),
      hibernateP50: median(recentHibernate.splice(0)),
      others: otherRuns().length,
    });
    const s = samples.at(-1)!;
    log(`registered ${s.registered} in ${s.seconds.toFixed(0)} s: rss ${fmib(s.rss)} heap ${fmib(s.heapUsed)}, running ${s.running}, create p50 ${fms(s.createP50)}, available ${fgib(s.available)}`);
  };
  let nextSample = every;
  let sampling: Promise<void> = Promise.resolve();
  const stop = () => {
    if (stopping) return true;
    if (interrupted) stopReason = 'interrupted';
    else if (performance.now() - t0 > budgetMs) stopReason = `time budget (${(budgetMs / 60_000).toFixed(1)} min) used up`;
    else if (failures.length >= 3) stopReason = `${failures.length} creates failed`;
    else if (meminfo().available < MIN_AVAILABLE) stopReason = 'host available memory < 3 GiB';
    else return false;
    stopping = true;
    return true;
  };
  log(`registered: creating up to ${M} workspaces (hibernate after ${REG_AFTER}), ${PLAN.registerConcurrency} at a time, for at most ${(budgetMs / 60_000).toFixed(1)} min`);
  await pool(names, PLAN.registerConcurrency, stop, async (name) => {
    try {
      // A 16 MiB /workspace: the default 1 GiB ext4 image writes 33 MiB of journal, 66 GB for 2000 (see the notes).
      const r = await b.create(memorySpec(name, REG_AFTER, { resources: { disk: '16m' } }), 25);
      createMs.push(r.ms);
      recentCreate.push(r.ms);
      if (r.sleptAtReady) {
        sleptAtReady.push(`${name}: hibernated ${r.sleptAtReady.afterReadyMs} ms after ready, event idleMs ${String(r.sleptAtReady.idleMs)}`);
        log(`registered: ${name} was hibernated by the gateway ${r.sleptAtReady.afterReadyMs} ms after ready (idleMs ${String(r.sleptAtReady.idleMs)})`);
      } else {
        const h0 = performance.now();
        const asleep = await b.gateway.manager.hibernateNow(name);
        const hm = performance.now() - h0;
        hibernateMs.push(hm);
        recentHibernate.push(hm);
        // The idle sweeper may have queued its own hibernation during the create: it ran first (negative idleMs).
        const slept = (await b.events(name)).find((e) => e.type === 'workspace_hibernated');
        const idle = slept?.detail?.idleMs;
        if (typeof idle === 'number' && idle < 0) sleptAtReady.push(`${name}: hibernated by the idle sweeper at ready, event idleMs ${idle}`);
        else if (asleep) hibernated++;
      }
      done.push(name);
      if (done.length >= nextSample) {
        nextSample += every;
        sampling = sampling.then(sample);
      }
    } catch (err) {
      failures.push(`${name}: ${errText(err)}`);
      log(`registered: ${name} failed: ${errText(err)}`);
    }
  });
  await sampling;
  const seconds = (performance.now() - t0) / 1000;
  if (!stopping && done.length < M) stopReason = `every create was attempted; ${M - done.length} failed`;
  if (samples.at(-1)?.registered !== done.length) await sample();
  // Let the idle sweeper see anything that was busy when hibernateNow ran.
  await sleep(quick ? 2000 : 6000);

  const statusCounts: Record<string, number> = {};
  await pool(done, 16, () => false, async (name) => {
    const st = (await api<Detail>(b.url, 'GET', `/api/v1/workspaces/${name}`, b.token)).body?.status ?? 'unknown';
    statusCounts[st] = (statusCounts[st] ?? 0) + 1;
  });
  const runningAtEnd = (await b.ownContainers(true)).length;
  const end = gatewayMem();

  // A request to random hibernating workspaces is answered: the first request (initialize) wakes it.
  const wakes: RegisterResult['wakes'] = [];
  for (let i = 0; i < 3 && done.length > 0 && !interrupted; i++) {
    const name = done[Math.floor(Math.random() * done.length)]!;
    const before = (await b.events(name)).at(-1)?.id ?? 0;
    const status = (await api<Detail>(b.url, 'GET', `/api/v1/workspaces/${name}`, b.token)).body?.status;
    if (status !== 'hibernating') {
      log(`registered: ${name} is ${status}, not hibernating; picking another`);
      continue;
    }
    const c0 = performance.now();
    let s: Awaited<ReturnType<Bench['connect']>> | undefined;
    let answered = false;
    let connectMs = NaN;
    let callMs = NaN;
    try {
      s = await b.connect(name);
      connectMs = performance.now() - c0;
      const k0 = performance.now();
      await b.readGraph(s.client);
      callMs = performance.now() - k0;
      answered = true;
    } catch (err) {
      failures.push(`wake ${name}: ${errText(err)}`);
    } finally {
      if (s) await closeSession(s);
    }
    const woken = (await b.events(name, before)).find((e) => e.type === 'workspace_woken');
    const after = await b.events(name, before);
    const phases = wakePhases(after);
    const sequence = after.map((e) => e.type).join(' → ');
    wakes.push({ name, connectMs, callMs, eventMs: typeof woken?.detail?.ms === 'number' ? woken.detail.ms : undefined, answered, phases, sequence });
  }
  let diskBytes = NaN;
  try {
    diskBytes = Number(execFileSync('du', ['-s', '-B1', join(b.gateway.dataDir, 'volumes')], { timeout: 60_000 }).toString().split('\t')[0]);
  } catch {
    // not measured
  }
  return {
    target: M,
    registered: done.length,
    hibernated,
    runningAtEnd,
    statusCounts,
    seconds,
    stopReason,
    samples,
    baseline,
    end,
    createMs: pct(createMs),
    hibernateMs: pct(hibernateMs),
    failures,
    sleptAtReady,
    wakes,
    diskBytes,
  };
}

// ---- 3. wake-up ------------------------------------------------------------------------------------------------------

interface WakeResult {
  runs: { eventMs: number; callMs: number; hibernateMs: number; phases: WakePhases | undefined }[];
  eventMs: Pct;
  callMs: Pct;
  firstCallAwakeMs: Pct;
}

async function wakeUps(b: Bench, runs_: number, prefix = 'wake'): Promise<WakeResult> {
  const name = `${prefix}-${RUN}`;
  await b.create(memorySpec(name, 'never'), 25);
  const s = await b.connect(name);
  const runs: WakeResult['runs'] = [];
  const awake: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const a0 = performance.now();
      await b.readGraph(s.client);
      awake.push(performance.now() - a0);
    }
    for (let i = 0; i < runs_ && !interrupted; i++) {
      const before = (await b.events(name)).at(-1)?.id ?? 0;
      const h0 = performance.now();
      if (!(await b.gateway.manager.hibernateNow(name))) throw new Error(`${name} did not hibernate (run ${i + 1})`);
      const hibernateMs = performance.now() - h0;
      // A real sleep: the container has exited before the request comes.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const info = await b.docker.getContainer(`mcpx-${name}-memory`).inspect().catch(() => undefined);
        if (!info?.State.Running) break;
        if (Date.now() > deadline) throw new Error(`${name}: container still running 10 s after hibernateNow`);
        await sleep(20);
      }
      await sleep(300);
      const c0 = performance.now();
      await b.readGraph(s.client);
      const callMs = performance.now() - c0;
      const woken = (await b.events(name, before)).find((e) => e.type === 'workspace_woken');
      if (typeof woken?.detail?.ms !== 'number') throw new Error(`${name}: no workspace_woken event with detail.ms after run ${i + 1}`);
      runs.push({ eventMs: woken.detail.ms, callMs, hibernateMs, phases: wakePhases(await b.events(name, before)) });
      log(`${prefix} ${i + 1}: event ${woken.detail.ms} ms, call ${fms(callMs)}`);
      // The next call on the awake workspace, for comparison.
      const a0 = performance.now();
      await b.readGraph(s.client);
      awake.push(performance.now() - a0);
    }
  } finally {
    await closeSession(s);
    await b.remove(name);
  }
  return { runs, eventMs: pct(runs.map((r) => r.eventMs)), callMs: pct(runs.map((r) => r.callMs)), firstCallAwakeMs: pct(awake) };
}

// ---- 4. cold image cache -------------------------------------------------------------------------------------------

interface ColdResult {
  image: string;
  removed: boolean;
  note: string;
  cold?: CreatePhases;
  warm: CreatePhases[];
}

async function timedCreate(b: Bench, name: string): Promise<{ phases: CreatePhases; image: string }> {
  const r = await b.create(memorySpec(name, 'never'), 5, 600_000);
  const phases = createPhases(await b.events(name), r.ms);
  await b.remove(name);
  return { phases, image: r.detail.servers[0]?.image ?? '' };
}

async function coldCache(b: Bench): Promise<ColdResult> {
  // A first (warm) create names the image and fills the package resolution cache.
  const first = await timedCreate(b, `cold-${RUN}-0`);
  const image = first.image;
  const removal = interrupted ? { removed: false as const, busy: false, note: 'interrupted' } : await removeAppImage(b.docker, image, b.gatewayId);
  const removed = removal.removed;
  const note = removal.removed ? '' : removal.note;
  let coldRun: CreatePhases | undefined;
  if (removed) coldRun = (await timedCreate(b, `cold-${RUN}-1`)).phases;
  const warm: CreatePhases[] = [];
  for (let i = 2; i < 5 && !interrupted; i++) warm.push((await timedCreate(b, `cold-${RUN}-${i}`)).phases);
  return { image, removed, note, ...(coldRun ? { cold: coldRun } : {}), warm };
}

// ---- the report -----------------------------------------------------------------------------------------------------

interface Report {
  date: string;
  machine: string;
  versions: string;
  quiet: Quietness;
  loadEnd: number[];
  othersDuring: string[];
  density?: DensityResult;
  wake?: WakeResult;
  /** Wake-ups on a gateway whose npm resolution is always expired (imageCacheTtlMs 0). */
  wakeExpired?: WakeResult;
  reg?: RegisterResult;
  cold?: ColdResult;
  skipped: string[];
  errors: string[];
  cleanup: { n: number; ms: number; failures: string[] }[];
  totalSeconds: number;
}

function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

function render(r: Report): MarkedSection {
  const L: string[] = [];
  L.push(`## Density, hibernation and wake-up`);
  L.push('');
  L.push(
    `Written by \`${COMMAND}\` on ${r.date} in ${(r.totalSeconds / 60).toFixed(1)} min. ${r.machine}; ${r.versions}. The gateway runs in the bench's own process ` +
      `(started like \`bench/isolation.ts\` does, logs silent), so "gateway RSS" also holds the bench's client sessions while they are open; heap figures ` +
      `are after a full garbage collection. Every workspace runs \`@modelcontextprotocol/server-memory\` (one container each, the spec's default limits: 0.5 CPU, 512 MiB, ` +
      `hardened, network none), with rate limits raised to 100000/s so that they do not interfere. ` +
      (r.cold
        ? 'The parts ran in the order 4, 1, 3, 2 (the app image can be removed only while no container of the run uses it), each starting with no workspace of the run present.'
        : 'The parts ran in the order 1, 3, 2, each starting with no workspace of the run present.'),
  );
  L.push('');
  const q = r.quiet;
  L.push(
    `**Machine load.** ${q.quiet ? 'No other `vitest` or `bench/` run was seen when the run started' : `Other runs were still present when the run started (after waiting ${(q.waitedMs / 1000).toFixed(0)} s): ${q.others.map((o) => `\`${o.replaceAll('|', '\\|')}\``).join(', ')}`}` +
      `${q.waitedMs > 1000 && q.quiet ? ` (after waiting ${(q.waitedMs / 1000).toFixed(0)} s for one to finish)` : ''}. ` +
      `Load average (1/5/15 min) at the start: ${fload(q.loadAtStart)}; at the end: ${fload(r.loadEnd)}. ` +
      (r.othersDuring.length > 0 ? `Seen during the run: ${r.othersDuring.map((o) => `\`${o.replaceAll('|', '\\|')}\``).join(', ')}.` : 'No other vitest or bench run was seen at any measuring point during the run.'),
  );
  const d = r.density;
  if (d) {
    L.push('');
    L.push(`### 1. Running workspaces (hibernate "never")`);
    L.push('');
    L.push(
      `Created through \`POST /api/v1/workspaces\`, ${PLAN.createConcurrency} at a time, each polled until \`ready\`; at each step, 2 s after the last \`ready\`: the gateway process, ` +
        `each container's cgroup v1 memory (\`memory.usage_in_bytes\`, which counts page cache; its \`total_rss\` in brackets), the host's \`MemAvailable\`, ` +
        `and then ${PLAN.latencyCalls} sequential \`tools/call\` \`read_graph\` calls, each to a random workspace of the step, over SDK 1.x Streamable HTTP client sessions ` +
        `opened lazily (the opening is not timed; sessions are ended with DELETE after the step). Stop rule: a failed create, available memory under 3 GiB, ` +
        `or the part's time budget (${PLAN.part1BudgetMs / 60_000} min). Baseline before any workspace: gateway RSS ${fmib(d.baseline.gateway.rss)}, heap ${fmib(d.baseline.gateway.heapUsed)}, ` +
        `available ${fgib(d.baseline.available)}, dockerd RSS ${fmib(d.baseline.dockerdRss)}.`,
    );
    L.push('');
    L.push('| running | create-to-ready p50 / p90 (step) | gateway RSS | gateway heap | container memory p50 (rss) | max | containers total | host available | dockerd RSS | shims (RSS) | read_graph p50 | p90 | p99 | max | load 1 min | other runs |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of d.steps) {
      L.push(
        `| ${s.n} | ${fms(s.createMs.p50)} / ${fms(s.createMs.p90)} (${s.createdInStep} in ${s.stepCreateSeconds.toFixed(0)} s) | ${fmib(s.gateway.rss)} | ${fmib(s.gateway.heapUsed)} | ${fmib(s.containers.usage.p50)} (${fmib(s.containers.rss.p50)}) | ${fmib(s.containers.usage.max)} | ${fgib(s.containers.total)} | ${fgib(s.host.available)} | ${fmib(s.host.dockerdRss)} | ${s.host.shims} (${fmib(s.host.shimsRss)}) | ${fms1(s.latency.p50)} | ${fms1(s.latency.p90)} | ${fms1(s.latency.p99)} | ${fms1(s.latency.max)} | ${s.load[0]!.toFixed(2)} | ${s.others} |`,
      );
    }
    const last = d.steps.at(-1);
    if (last) {
      // Over the steps only: the first workspace also pays one-time costs (modules, caches, the image check).
      const xs = d.steps.map((s) => s.n);
      const perWsRss = slope(xs, d.steps.map((s) => s.gateway.rss));
      const perWsHeap = slope(xs, d.steps.map((s) => s.gateway.heapUsed));
      const perWsHost = slope(xs, d.steps.map((s) => s.host.available));
      const perWsDockerd = slope(xs, d.steps.map((s) => s.host.dockerdRss));
      const perFd = slope(xs, d.steps.map((s) => s.gateway.fds));
      const at200 = d.steps.find((s) => s.n === 200);
      const perShim = last.host.shims > 0 ? last.host.shimsRss / last.host.shims : NaN;
      L.push('');
      L.push(
        `**Stopped:** ${d.stopReason}. **Reached ${last.n} running workspaces; read_graph p99 ${fms1(last.latency.p99)}** at ${last.n} ` +
          `(target: 200 running with p99 under 50 ms — ${at200 ? `at 200: p99 ${fms1(at200.latency.p99)}, ` : ''}**${at200 && at200.latency.p99 < 50 ? 'met' : 'not met'}**). ` +
          `Per running workspace (least-squares slope over the steps): gateway RSS +${(perWsRss / 1024).toFixed(0)} KiB, gateway heap +${(perWsHeap / 1024).toFixed(1)} KiB, ` +
          `gateway file descriptors +${perFd.toFixed(1)}, dockerd RSS +${(perWsDockerd / 1024).toFixed(0)} KiB, host available memory −${fmib(-perWsHost)} ` +
          `(the container, its containerd shim, dockerd and the gateway together); each container's \`containerd-shim-runc-v2\` holds ${fmib(perShim)} RSS (partly shared pages). At ${last.n}, the latency of a session's first call was p50 ${fms1(last.latencyFirst.p50)} / p99 ${fms1(last.latencyFirst.p99)} (${last.latencyFirst.n} calls), ` +
          `of later calls p50 ${fms1(last.latencyLater.p50)} / p99 ${fms1(last.latencyLater.p99)} (${last.latencyLater.n} calls).`,
      );
      if (Number.isFinite(perWsHost) && perWsHost < 0 && last.host.available > MIN_AVAILABLE) {
        const more = Math.floor((last.host.available - MIN_AVAILABLE) / -perWsHost);
        L.push('');
        L.push(`Extrapolated from that slope (not measured): about ${more} more running workspaces before available memory reaches 3 GiB, i.e. about ${last.n + more} on this 24 GiB machine, if memory were the only limit.`);
      }
    }
    if (d.failures.length > 0) L.push('', `Failed creates: ${d.failures.map((f) => `\`${f.replaceAll('|', '\\|')}\``).join('; ')}.`);
  }
  const g = r.reg;
  if (g) {
    L.push('');
    L.push(`### 2. Registered workspaces with hibernation`);
    L.push('');
    L.push(
      `Target ${g.target} workspaces (\`hibernate: {after: "${REG_AFTER}"}\`, \`resources.disk: "16m"\`), created ${PLAN.registerConcurrency} at a time; each is put to sleep with ` +
        `\`gateway.manager.hibernateNow(name)\` as soon as it is \`ready\` (its container is killed and kept, its loop device and volume stay). ` +
        `Time budget ${(PLAN.part2BudgetMs / 60_000).toFixed(0)} min (less if the run's ${(PLAN.totalBudgetMs / 60_000).toFixed(0)}-minute limit needed it for clean-up).`,
    );
    L.push('');
    L.push(
      `**Registered ${g.registered} of ${g.target}** in ${g.seconds.toFixed(0)} s (${(g.registered / g.seconds).toFixed(2)} workspaces/s; stopped because: ${g.stopReason}); ` +
        `hibernated by hibernateNow: ${g.hibernated}, by the gateway's idle sweeper at the moment they became ready: ${g.sleptAtReady.length}; at the end, before the wake-up requests below: ${g.runningAtEnd} running containers, statuses ${Object.entries(g.statusCounts).map(([k, v]) => `${k} ${v}`).join(', ')}. ` +
        `Gateway RSS ${fmib(g.baseline.rss)} before, ${fmib(g.end.rss)} after (heap ${fmib(g.baseline.heapUsed)} → ${fmib(g.end.heapUsed)}). ` +
        `Create-to-ready p50 ${fms(g.createMs.p50)}, p90 ${fms(g.createMs.p90)}, max ${fms(g.createMs.max)}; hibernateNow p50 ${fms(g.hibernateMs.p50)}. ` +
        `The quota images of the registered workspaces take ${fmib(g.diskBytes)} on disk.`,
    );
    L.push('');
    L.push('| registered | elapsed | rate since previous row | create p50 (since previous row) | gateway RSS | gateway heap | gateway fds | running containers (being created or just killed) | dockerd RSS | host available | other runs |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    let prev = { registered: 0, seconds: 0 };
    for (const s of g.samples) {
      const rate = (s.registered - prev.registered) / Math.max(0.001, s.seconds - prev.seconds);
      L.push(`| ${s.registered} | ${s.seconds.toFixed(0)} s | ${rate.toFixed(2)}/s | ${fms(s.createP50)} | ${fmib(s.rss)} | ${fmib(s.heapUsed)} | ${s.fds} | ${s.running} | ${fmib(s.dockerdRss)} | ${fgib(s.available)} | ${s.others} |`);
      prev = s;
    }
    const xs = g.samples.map((s) => s.registered);
    const heapPer = slope(xs, g.samples.map((s) => s.heapUsed));
    const rssPer = slope(xs, g.samples.map((s) => s.rss));
    const dockerdPer = g.samples.length >= 2 ? (g.samples.at(-1)!.dockerdRss - g.samples[0]!.dockerdRss) / Math.max(1, g.samples.at(-1)!.registered - g.samples[0]!.registered) : NaN;
    L.push('');
    L.push(`Per registered, hibernating workspace: gateway heap +${(heapPer / 1024).toFixed(1)} KiB, gateway RSS +${(rssPer / 1024).toFixed(1)} KiB, dockerd RSS +${(dockerdPer / 1024).toFixed(1)} KiB (slopes over the rows).`);
    if (g.sleptAtReady.length > 0) {
      L.push('');
      L.push(
        `**Hibernated at the moment of \`ready\`** (${g.sleptAtReady.length} of ${g.registered}; a gateway issue, see the notes): ${g.sleptAtReady.slice(0, 5).map((x) => `\`${x}\``).join('; ')}. ` +
          'These count as registered; their create-to-ready is taken from their own events.',
      );
    }
    if (g.registered < g.target && !g.stopReason.startsWith('every create was attempted')) {
      const tail = g.samples.length >= 2 ? g.samples.slice(-Math.min(4, g.samples.length)) : g.samples;
      const rate = tail.length >= 2 ? (tail.at(-1)!.registered - tail[0]!.registered) / (tail.at(-1)!.seconds - tail[0]!.seconds) : g.registered / g.seconds;
      const rest = (g.target - g.registered) / rate;
      L.push('');
      L.push(
        `**${g.target} was not reached: ${g.registered} is the number actually registered.** Extrapolation (not measured): at the rate of the last rows (${rate.toFixed(2)}/s) ` +
          `the remaining ${g.target - g.registered} would take about ${(rest / 60).toFixed(1)} min more (${((g.seconds + rest) / 60).toFixed(1)} min in all), if the rate held; ` +
          `gateway heap at ${g.target} about ${fmib(g.end.heapUsed + heapPer * (g.target - g.registered))}, RSS about ${fmib(g.end.rss + rssPer * (g.target - g.registered))}.`,
      );
    }
    if (g.wakes.length > 0) {
      L.push('');
      L.push(
        `A request to a random hibernating workspace (new client session, whose \`initialize\` wakes it, then \`read_graph\`): ` +
          g.wakes
            .map(
              (x) =>
                `${x.name}: ${x.answered ? 'answered' : '**not answered**'}, event ${x.eventMs ?? '–'} ms, connect ${fms(x.connectMs)} + call ${fms(x.callMs)}` +
                (x.phases ? ` (container adopted at ${fms(x.phases.adopted)}, started ${fms(x.phases.started)}, initialized ${fms(x.phases.initialized)})` : '') +
                ` [events: ${x.sequence}]`,
            )
            .join('; ') +
          '.',
      );
    }
    if (g.failures.length > 0) L.push('', `Failures: ${g.failures.slice(0, 5).map((f) => `\`${f.replaceAll('|', '\\|')}\``).join('; ')}${g.failures.length > 5 ? ` (and ${g.failures.length - 5} more)` : ''}.`);
  }
  const w = r.wake;
  if (w) {
    L.push('');
    L.push(`### 3. Wake-up from hibernation`);
    L.push('');
    L.push(
      `One workspace (hibernate "never", so only \`hibernateNow\` puts it to sleep), one client session opened while it was awake. Each run: \`gateway.manager.hibernateNow(name)\`, ` +
        `wait until the container has exited, 300 ms more, then one \`tools/call\` \`read_graph\` on the same session; "event" is \`detail.ms\` of the \`workspace_woken\` event ` +
        `(the gateway's wake-up: the disk check, adopt the stopped container with the image it was made from, attach, start, Node start-up at 0.5 CPU, MCP \`initialize\`), "client" is the call as the client saw it ` +
        `(the wake-up plus the call itself, including the tools/list the gateway asks a fresh server for before validating a call). Measured with no other workspace of this run present.`,
    );
    L.push('');
    L.push('| | runs | median | p90 | min | max | target |');
    L.push('|---|---:|---:|---:|---:|---:|---|');
    L.push(`| \`workspace_woken\` detail.ms | ${w.eventMs.n} | ${fms(w.eventMs.p50)} | ${fms(w.eventMs.p90)} | ${fms(w.eventMs.min)} | ${fms(w.eventMs.max)} | < 0.8 s: **${w.eventMs.p50 < 800 ? 'met' : 'not met'}** |`);
    L.push(`| client-observed tools/call | ${w.callMs.n} | ${fms(w.callMs.p50)} | ${fms(w.callMs.p90)} | ${fms(w.callMs.min)} | ${fms(w.callMs.max)} | < 0.8 s: **${w.callMs.p50 < 800 ? 'met' : 'not met'}** |`);
    const xe = r.wakeExpired;
    if (xe) {
      L.push(`| \`workspace_woken\` detail.ms, npm resolution expired (second gateway, \`imageCacheTtlMs: 0\`) | ${xe.eventMs.n} | ${fms(xe.eventMs.p50)} | ${fms(xe.eventMs.p90)} | ${fms(xe.eventMs.min)} | ${fms(xe.eventMs.max)} | < 0.8 s: **${xe.eventMs.p50 < 800 ? 'met' : 'not met'}** |`);
      L.push(`| client-observed tools/call, npm resolution expired | ${xe.callMs.n} | ${fms(xe.callMs.p50)} | ${fms(xe.callMs.p90)} | ${fms(xe.callMs.min)} | ${fms(xe.callMs.max)} | < 0.8 s: **${xe.callMs.p50 < 800 ? 'met' : 'not met'}** |`);
    }
    L.push(`| the same call, awake (for comparison) | ${w.firstCallAwakeMs.n} | ${fms1(w.firstCallAwakeMs.p50)} | ${fms1(w.firstCallAwakeMs.p90)} | ${fms1(w.firstCallAwakeMs.min)} | ${fms1(w.firstCallAwakeMs.max)} | |`);
    L.push('');
    L.push(`Per run (event / client, ms): ${w.runs.map((x) => `${x.eventMs}/${x.callMs.toFixed(0)}`).join(', ')}. \`hibernateNow\` itself took ${fms(median(w.runs.map((x) => x.hibernateMs)))} (median).`);
    const ph = w.runs.map((x) => x.phases).filter((x): x is WakePhases => x !== undefined);
    if (ph.length > 0) {
      const m = (k: keyof WakePhases) => median(ph.map((x) => x[k]));
      L.push('');
      L.push(
        `Where the wake-up's time goes (median ms after it began, from the events' timestamps): the stopped container is found and adopted at ${fms(m('adopted'))} ` +
          `(the container inspect, the volume look-up, the loop device the volume names checked in sysfs), \`docker start\` has returned at ${fms(m('started'))}, ` +
          `the server has answered \`initialize\` at ${fms(m('initialized'))} (Node start-up of the server at 0.5 CPU), and the wake-up is recorded at ${fms(m('woken'))}.`,
      );
    }
    const phx = xe?.runs.map((y) => y.phases).filter((y): y is WakePhases => y !== undefined) ?? [];
    if (xe && phx.length > 0) {
      L.push('');
      L.push(
        `**A wake-up after the package resolution expired.** A create or an apply resolves an unpinned \`package\` again with \`npm view\` once the resolution is older ` +
          `than \`imageCacheTtlMs\` (default 10 minutes; the default \`hibernate.after\` is 30 minutes); a wake-up resolves nothing: it restarts the stopped container ` +
          `from the image it was made from (\`test/hibernation.test.ts\` wakes workspaces with npm pointed at a closed port). Measured on a second ` +
          `gateway with \`imageCacheTtlMs: 0\`, ${xe.runs.length} runs: the container is adopted at ${fms(median(phx.map((y) => y.adopted)))} (median, vs ${fms(median(ph.map((y) => y.adopted)))} above), ` +
          `the wake-up is recorded at ${fms(median(phx.map((y) => y.woken)))}.`,
      );
    }
  }
  const c = r.cold;
  if (c) {
    L.push('');
    L.push(`### 4. Create-to-ready from a cold image cache`);
    L.push('');
    L.push(
      `The app image of server-memory (\`${c.image}\`) removed with \`docker rmi\` (no container used it), then one create to \`ready\` (polled every 5 ms), ` +
        `then warm creates for comparison. "Cold" here means the app image is rebuilt: the npm install into a staging folder runs again, against the host's ` +
        `warm npm cache (\`~/.npm\`), and the base image stays; a first install on a new host would also download the package and build the base image. ` +
        `Phases from the workspace's event times (ms after \`workspace_created\`).`,
    );
    L.push('');
    if (!c.removed) L.push(`Cold run **not measured**: ${c.note}.`, '');
    L.push('| run | create to ready (client) | image ready | container started | ready | image cached |');
    L.push('|---|---:|---:|---:|---:|---|');
    const row = (label: string, p: CreatePhases) => `| ${label} | ${fms(p.totalMs)} | ${fms(p.imageMs)} | ${fms(p.startedMs)} | ${fms(p.readyMs)} | ${p.cachedImage} |`;
    if (c.cold) L.push(row('cold (app image removed)', c.cold));
    c.warm.forEach((p, i) => L.push(row(`warm ${i + 1}`, p)));
  }
  if (r.skipped.length > 0) L.push('', `Not measured in this run: ${r.skipped.join('; ')}.`);
  if (r.errors.length > 0) L.push('', `**Errors:** ${r.errors.map((e) => `\`${e.replaceAll('|', '\\|').replaceAll('\n', ' ')}\``).join('; ')}.`);
  L.push('');
  L.push('### Notes');
  L.push('');
  L.push(
    `- Clean-up: every workspace is deleted through the API and waited for until 404 (${r.cleanup.map((x) => `${x.n} in ${(x.ms / 1000).toFixed(0)} s`).join(', ')}${r.cleanup.some((x) => x.failures.length > 0) ? `; failures: ${r.cleanup.flatMap((x) => x.failures).slice(0, 3).join('; ')}` : ''}).`,
  );
  L.push(
    '- Noise: one run on a shared 2-core VM; the latency percentiles of one step rest on a few hundred calls (p99 is the 3rd largest of 300), so one scheduling hiccup (a container\'s Node start-up, dockerd, a GC in the shared process) moves it. The bench client and the gateway share one event loop.',
  );
  L.push(
    '- "other runs": processes of other `vitest` or `bench/` runs (`pgrep -f`, node/npm ones, without this run) at that measuring point; they share the 2 cores and the Docker Engine with this run.',
  );
  L.push(
    "- The gateway's data directory is `$TMPDIR/bench-density-*`: the integration suites' global set-up and tear-down (`removeTestResources` → `detachTestLoops` in `test/helpers/docker.ts`) detach the loop devices whose quota image lies under their own `$TMPDIR/mcpx-test-*/volumes/` (before 2026-11-30: under any `$TMPDIR/mcpx-*`, whoever owned it). In an earlier run with an `mcpx-` directory, a test run that started during part 2 detached the loop devices of the hibernating workspaces; their wake-ups then found no device, attached a new one and replaced the volume and the container (no `container_adopted`), which made them slower (reproduced alone: detach a hibernating workspace's loop device, let another file take its number, and the wake-up records `volume_replaced` and starts a new container; the data survives).",
  );
  L.push(
    "- Container memory is the cgroup's `memory.usage_in_bytes` (what Docker's memory limit counts, including page cache of the files the server read); `total_rss` is the anonymous memory of the Node process. Each running container also costs a `containerd-shim-runc-v2` process and some dockerd memory, which are outside the cgroup; the host's `MemAvailable` slope counts everything.",
  );
  L.push(
    '- Part 2 uses `resources.disk: "16m"`: with the default 1 GiB the ext4 image of each workspace is sparse but mkfs writes a 32 MiB journal (33 MiB on disk per workspace measured with `du`), which is 66 GB for 2000 workspaces, more than this machine\'s free disk. Every registered workspace keeps a loop device attached while it hibernates.',
  );
  if (r.reg) {
    L.push(
      `- Hibernated at \`ready\` (this run: ${r.reg.sleptAtReady.length} of ${r.reg.registered}): the gateway's idle sweeper (every 5 s) judges a workspace idle at its tick, counting from its creation, and queues the hibernation behind the workspace's operation in progress (here: its create); \`hibernate()\` in \`src/workspaces/workspace-manager.ts\` does not look at the idle time again when it finally runs. A workspace whose create is still running \`hibernate.after\` after it began is therefore stopped a few milliseconds after it became \`ready\`, before any client could use it; its \`workspace_hibernated\` event carries a negative \`idleMs\` (the sweeper's \`now\` is older than the \`lastActive\` set at \`ready\`). How often depends on create time against \`hibernate.after\`: \`node --import tsx bench/density.ts --quick --no-wait --hibernate-after=1ms --registered=60\` had 25 of 60 (2026-11-25), and a run of this bench with a test suite loading the machine (create-to-ready p50 1.4 s, p90 2.3 s) had 201 of 2000.`,
    );
  }
  return marked('density', L.join('\n'));
}

interface BenchGateway {
  gateway: Gateway;
  token: string;
  gatewayId: string;
  /** Closes the gateway (after its workspaces were deleted) and removes whatever of it is left, and its data dir. */
  close(): Promise<void>;
}

async function startBenchGateway(extra: { imageCacheTtlMs?: number } = {}): Promise<BenchGateway> {
  // Not "$TMPDIR/mcpx-*": the integration suites' global set-up and tear-down (test/helpers/docker.ts, detachTestLoops)
  // detach every loop device on a quota image under that prefix, which would pull the disks from under this run's
  // workspaces whenever a test run starts or ends on the machine.
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-density-'));
  const loaded = loadGatewayConfig({ port: 0, dataDir, ...extra }, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }), ...(Number.isFinite(SWEEP_EVERY) ? { hibernation: { checkEveryMs: SWEEP_EVERY } } : {}) });
  const gatewayId = readFileSync(join(gateway.dataDir, 'gateway-id'), 'utf8').trim();
  if (!/^[0-9a-f]{12}$/.test(gatewayId)) throw new Error(`unexpected gateway id ${gatewayId}`);
  // Last resort: this gateway's containers, volumes and loop devices (found by its id and its data dir), and the dir.
  const sweep = () => {
    lastResorts.delete(sweep);
    const sh = (args: string[]) => {
      try {
        return execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], timeout: 120_000 }).toString().split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    const label = `label=mcpx.gateway=${gatewayId}`;
    const containers = sh(['docker', 'ps', '-aq', '--filter', label]);
    if (containers.length > 0) sh(['docker', 'rm', '-f', ...containers]);
    const volumes = sh(['docker', 'volume', 'ls', '-q', '--filter', label]);
    if (volumes.length > 0) sh(['docker', 'volume', 'rm', '-f', ...volumes]);
    for (const line of sh(['losetup', '--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'])) {
      const [dev, file] = line.split(/\s+/);
      if (dev && file?.startsWith(`${gateway.dataDir}/`)) sh(['losetup', '--detach', dev]);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  lastResorts.add(sweep);
  const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 4 * 3600 });
  return {
    gateway,
    token,
    gatewayId,
    async close() {
      await gateway.close();
      sweep();
    },
  };
}

// ---- main -----------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const docker = new Docker();
  const engine = await docker.version();
  const cpuList = cpus();
  const quiet = await waitForQuiet();
  if (interrupted) throw new Error('interrupted while waiting for a quiet machine');
  const runStart = performance.now();
  log(`plan: ${JSON.stringify(PLAN)}; other runs: ${quiet.others.length}; load ${fload(quiet.loadAtStart)}`);

  const main1 = await startBenchGateway();
  const { gateway, token, gatewayId } = main1;
  const b = new Bench(gateway, token, gatewayId);
  const report: Report = {
    date: new Date().toISOString().slice(0, 10),
    machine: `${cpuList.length} × ${cpuList[0]?.model ?? 'cpu'}, ${(totalmem() / GiB).toFixed(0)} GiB, ${process.platform} ${execFileSync('uname', ['-r']).toString().trim()}`,
    versions: `Node ${process.version}, Docker Engine ${engine.Version} (cgroup v1, ${readFileSync('/proc/sys/kernel/ostype', 'utf8').trim()}), mcpx ${(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version}`,
    quiet,
    loadEnd: [],
    othersDuring: [],
    skipped: [],
    errors: [],
    cleanup: [],
    totalSeconds: 0,
  };
  const noteOthers = () => {
    for (const o of otherRuns()) if (!report.othersDuring.includes(o)) report.othersDuring.push(o);
  };
  const cleanup = async (what: string) => {
    const c = await b.removeAll();
    report.cleanup.push(c);
    log(`clean-up (${what}): ${c.n} deleted in ${(c.ms / 1000).toFixed(1)} s${c.failures.length ? `; failures: ${c.failures.join('; ')}` : ''}`);
    return c;
  };
  try {
    const others = await otherGatewaysContainers(docker, gatewayId);
    if (others > 0) log(`note: ${others} running workspace container(s) of other gateways on this engine`);

    // 4 first: the app image can only be removed while none of this run's containers uses it.
    if (onlyWake) report.skipped.push('4 (cold image cache): --only-wake');
    else if (cold) {
      try {
        report.cold = await coldCache(b);
        log(`cold cache: ${JSON.stringify(report.cold)}`);
      } catch (err) {
        report.errors.push(`cold cache: ${errText(err)}`);
      }
      await cleanup('cold cache');
    } else if (process.argv.includes('--no-cold')) report.skipped.push('4 (cold image cache): left out (`--no-cold`); see the create-to-ready section');
    else report.skipped.push('4 (cold image cache): skipped in --quick mode (pass --cold)');
    noteOthers();

    if (onlyWake) report.skipped.push('1 (density): --only-wake');
    else {
      try {
        report.density = await density(b);
      } catch (err) {
        report.errors.push(`density: ${errText(err)}`);
      }
    }
    noteOthers();
    const c1 = await cleanup('density');
    const perDeleteMs = c1.n > 0 ? c1.ms / c1.n : 250;

    if (!interrupted) {
      try {
        report.wake = await wakeUps(b, PLAN.wakeRuns);
      } catch (err) {
        report.errors.push(`wake-up: ${errText(err)}`);
      }
      await cleanup('wake-up');
    }

    if (!interrupted) {
      // The same on a second gateway whose resolution of an unpinned package is never reused (imageCacheTtlMs 0):
      // what a wake-up costs once the default 10-minute resolution cache has expired, e.g. after 30 min asleep.
      // One `npm view` look-up of the one package (its create); a wake-up resolves nothing.
      const g2 = await startBenchGateway({ imageCacheTtlMs: 0 });
      const b2 = new Bench(g2.gateway, g2.token, g2.gatewayId);
      try {
        report.wakeExpired = await wakeUps(b2, PLAN.expiredWakeRuns, 'wakex');
      } catch (err) {
        report.errors.push(`wake-up with an expired resolution: ${errText(err)}`);
      } finally {
        const c = await b2.removeAll();
        report.cleanup.push(c);
        await g2.close();
      }
    }

    if (onlyWake) report.skipped.push('2 (registered): --only-wake');
    else if (!interrupted) {
      // Keep room in the run's time limit for deleting what part 2 registers (measured rate of part 1's clean-up).
      const left = PLAN.totalBudgetMs - (performance.now() - runStart);
      const reserve = (ms: number) => PLAN.registered * perDeleteMs * 1.5 + ms;
      const budget = Math.min(PLAN.part2BudgetMs, left - reserve(90_000));
      if (budget < 30_000) report.skipped.push(`2 (registered): only ${(left / 1000).toFixed(0)} s left in the run's limit`);
      else {
        try {
          report.reg = await registered(b, budget);
        } catch (err) {
          report.errors.push(`registered: ${errText(err)}`);
        }
      }
      noteOthers();
      await cleanup('registered');
    }
  } finally {
    await cleanup('final').catch((err: unknown) => report.errors.push(`clean-up: ${errText(err)}`));
    const leftovers = await b.ownContainers(false).catch(() => []);
    if (leftovers.length > 0) report.errors.push(`${leftovers.length} container(s) of this run left after clean-up`);
    await main1.close();
  }
  report.loadEnd = loadavg();
  report.totalSeconds = (performance.now() - runStart) / 1000;
  if (interrupted) {
    log('interrupted: docs/benchmarks.md left alone');
    process.exitCode = 130;
    return;
  }
  const section = render(report);
  writeSection(section);
  console.log(section.text);
  log(`wrote the density section of docs/benchmarks.md (${report.totalSeconds.toFixed(0)} s)`);
}

try {
  await main();
} catch (err) {
  console.error('density bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
}
