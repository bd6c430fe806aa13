// The protocol's official conformance suite (@modelcontextprotocol/conformance, server scenarios), run against our
// reference server twice: directly over the SDK's Streamable HTTP on loopback (the baseline), and through the
// gateway's /mcp/{workspace} with that same server in a container. What passes directly must pass through mcpx.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startTestGateway, tempDir } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const WS = 'it-conf-reference';
const FIXTURE = join(REPO, 'test/fixtures/conformance-server');
const SUITE_TIMEOUT_MS = 120_000;

/** The suite's CLI, found through its own package.json rather than a path typed here. */
function conformanceBin(): string {
  const pkgJson = createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin.conformance;
  if (!bin) throw new Error('the conformance package declares no "conformance" bin');
  return join(dirname(pkgJson), bin);
}

interface Check {
  id: string;
  name: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  errorMessage?: string;
  details?: unknown;
}
type Verdict = 'pass' | 'warn' | 'FAIL';
interface ScenarioResult {
  verdict: Verdict;
  checks: Check[];
}
interface SuiteRun {
  code: number | null;
  ms: number;
  output: string;
  results: Map<string, ScenarioResult>;
}

function verdictOf(checks: Check[]): Verdict {
  if (checks.length === 0 || checks.some((c) => c.status === 'FAILURE')) return 'FAIL';
  return checks.some((c) => c.status === 'WARNING') ? 'warn' : 'pass';
}
const RANK: Record<Verdict, number> = { pass: 0, warn: 1, FAIL: 2 };

function runNode(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The server scenarios the installed suite knows (`conformance list --server`). */
async function listScenarios(): Promise<string[]> {
  const r = await runNode([conformanceBin(), 'list', '--server'], 30_000);
  if (r.code !== 0) throw new Error(`conformance list failed: ${r.output}`);
  return [...r.output.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]!);
}

/** Runs every server scenario (`--suite all`) against one URL; results come from the per-scenario checks.json. */
async function runSuite(url: string, outDir: string): Promise<SuiteRun> {
  const started = Date.now();
  const r = await runNode([conformanceBin(), 'server', '--url', url, '--suite', 'all', '--output-dir', outDir], SUITE_TIMEOUT_MS);
  const ms = Date.now() - started;
  const results = new Map<string, ScenarioResult>();
  for (const dir of readdirSync(outDir)) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(dir);
    if (!m) continue;
    const checks = JSON.parse(readFileSync(join(outDir, dir, 'checks.json'), 'utf8')) as Check[];
    results.set(m[1]!, { verdict: verdictOf(checks), checks });
  }
  return { code: r.code, ms, output: r.output, results };
}

/** The reference server over Streamable HTTP on loopback, as a child process; resolves with its URL. */
function startDirectServer(): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [join(FIXTURE, 'http.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`reference server did not start: ${err}`));
    }, 30_000);
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, stop: () => child.kill('SIGTERM') });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`reference server exited with ${String(code)}: ${err}`));
    });
  });
}

/**
 * The suite has no option for request headers, so a bearer token cannot reach the gateway from it. This loopback
 * proxy adds `Authorization` and otherwise forwards each request and response byte for byte, streaming. A Host or
 * Origin naming the proxy itself is rewritten to name the gateway (what a reverse proxy does); any other value, such
 * as the DNS-rebinding scenario's foreign Host and Origin, is passed on untouched.
 */
async function startAuthProxy(target: string, token: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  let own = '';
  const server: Server = createServer((req, res) => {
    const headers: IncomingHttpHeaders = { ...req.headers, authorization: `Bearer ${token}` };
    if (headers.host === own) headers.host = upstream.host;
    if (headers.origin === `http://${own}`) headers.origin = upstream.origin;
    const up = request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      res.flushHeaders();
      ur.pipe(res);
    });
    up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    // A client hanging up must look like a hang-up to the gateway too (it cancels the request).
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  own = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${own}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let gw: TestGateway;
let owner: string;
let direct: { url: string; stop(): void };
let proxy: { url: string; close(): Promise<void> };
let scenarios: string[];
const outDirs: string[] = [];
const runs: { direct?: SuiteRun; gateway?: SuiteRun } = {};

function freshOutDir(): string {
  const d = tempDir('conformance');
  outDirs.push(d);
  return d;
}

beforeAll(async () => {
  scenarios = await listScenarios();
  direct = await startDirectServer();
  gw = await startTestGateway();
  owner = await gw.token('conf-owner');
  const created = await gw.api('POST', '/api/v1/workspaces', owner, { name: WS, servers: [{ name: 'reference', package: `file:${FIXTURE}` }] });
  if (created.status !== 201) throw new Error(`create ${WS}: ${created.status} ${JSON.stringify(created.body)}`);
  await gw.waitStatus(WS, owner, ['ready'], 200_000);
  proxy = await startAuthProxy(gw.url, owner);
});

afterAll(async () => {
  await proxy?.close();
  direct?.stop();
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
  for (const d of outDirs) rmSync(d, { recursive: true, force: true });
});

function table(d: SuiteRun, g: SuiteRun): string {
  const count = (r: ScenarioResult | undefined) =>
    r ? `${r.checks.filter((c) => c.status === 'SUCCESS').length}/${r.checks.filter((c) => c.status === 'FAILURE').length}/${r.checks.filter((c) => c.status === 'WARNING').length}` : '-';
  const w = Math.max(...scenarios.map((s) => s.length));
  const lines = [`${'scenario'.padEnd(w)}  direct  gateway  direct s/f/w  gateway s/f/w`];
  for (const s of scenarios) {
    const a = d.results.get(s);
    const b = g.results.get(s);
    const mark = a && b && RANK[b.verdict] > RANK[a.verdict] ? '  <-- worse through mcpx' : '';
    lines.push(`${s.padEnd(w)}  ${(a?.verdict ?? 'none').padEnd(6)}  ${(b?.verdict ?? 'none').padEnd(7)}  ${count(a).padEnd(12)}  ${count(b)}${mark}`);
  }
  lines.push(`direct: ${d.ms} ms, exit ${String(d.code)}; gateway: ${g.ms} ms, exit ${String(g.code)}`);
  return lines.join('\n');
}

describe('MCP conformance suite: server scenarios', () => {
  it('cannot send a bearer token itself: straight at the gateway, initialize is refused as unauthorized', async () => {
    const out = freshOutDir();
    const r = await runNode([conformanceBin(), 'server', '--url', `${gw.url}/mcp/${WS}`, '--scenario', 'server-initialize', '--output-dir', out], 60_000);
    expect(r.code).not.toBe(0);
    const [dir] = readdirSync(out);
    const checks = JSON.parse(readFileSync(join(out, dir!, 'checks.json'), 'utf8')) as Check[];
    expect(checks[0]?.status).toBe('FAILURE');
    expect(checks[0]?.errorMessage).toMatch(/Unauthorized/);
  });

  it('passes the baseline: every scenario runs directly against the reference server, none fails', async () => {
    runs.direct = await runSuite(direct.url, freshOutDir());
    expect([...runs.direct.results.keys()].sort()).toEqual([...scenarios].sort());
    const failed = [...runs.direct.results].filter(([, r]) => r.verdict === 'FAIL').map(([s]) => s);
    expect(failed).toEqual([]);
  });

  it('runs every scenario through the gateway fronting the same server in a container', async () => {
    runs.gateway = await runSuite(`${proxy.url}/mcp/${WS}`, freshOutDir());
    expect([...runs.gateway.results.keys()].sort()).toEqual([...scenarios].sort());
  });

  it('passes through the gateway every scenario that passes directly (warnings no worse)', () => {
    const d = runs.direct;
    const g = runs.gateway;
    if (!d || !g) throw new Error('both suite runs are needed');
    console.log(`\nconformance server scenarios (checks: success/failure/warning)\n${table(d, g)}\n`);
    const regressions = scenarios
      .filter((s) => d.results.get(s)?.verdict !== 'FAIL')
      .filter((s) => RANK[g.results.get(s)?.verdict ?? 'FAIL'] > RANK[d.results.get(s)!.verdict])
      .map((s) => ({
        scenario: s,
        direct: d.results.get(s)!.verdict,
        gateway: g.results.get(s)?.verdict ?? 'none',
        checks: (g.results.get(s)?.checks ?? [])
          .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
          .map((c) => ({ id: c.id, status: c.status, error: c.errorMessage, details: c.details })),
      }));
    expect(regressions).toEqual([]);
  });
});
