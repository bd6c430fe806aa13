// `npm run bench [-- --quick]`: measures mcpx on this machine and writes docs/benchmarks.md.
// Traffic goes only to loopback and to containers this run starts; every loop is bounded.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { loadGatewayConfig } from '../src/config/index.js';
import { startGateway } from '../src/main.js';

const quick = process.argv.includes('--quick');
const REPO = resolve(import.meta.dirname, '..');

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

async function api(url: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as { status?: string } | undefined };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Workspace create to ready, through the admin API, one Node server, warm image cache. */
async function createToReady(runs: number): Promise<Stats> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcpx-bench-'));
  const loaded = loadGatewayConfig({ port: 0, dataDir }, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }) });
  const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 3600 });
  const spec = (i: number) => ({
    name: `bench-ready-${i}`,
    servers: [{ name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } }],
  });
  const samples: number[] = [];
  try {
    // One warm-up run fills the image cache and the npm resolution cache.
    for (let i = -1; i < runs; i++) {
      const name = spec(i + 1).name;
      const t0 = performance.now();
      const r = await api(gateway.url, 'POST', '/api/v1/workspaces', token, spec(i + 1));
      if (r.status !== 201) throw new Error(`create failed: ${r.status}`);
      await until(async () => (await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).body?.status === 'ready', 300_000);
      const elapsed = performance.now() - t0;
      if (i >= 0) samples.push(elapsed);
      await api(gateway.url, 'DELETE', `/api/v1/workspaces/${name}`, token);
      await until(async () => (await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).status === 404, 60_000, 20);
    }
  } finally {
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return stats(samples);
}

async function main(): Promise<void> {
  const runs = quick ? 5 : 10;
  const engine = await new Docker().version();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, ${process.platform} ${execFileSync('uname', ['-r']).toString().trim()}`;
  console.error(`create-to-ready: ${runs} runs`);
  const ready = await createToReady(runs);
  console.error(JSON.stringify(ready));
  const doc = `# Benchmarks

Written by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}. Figures are from one machine; rerun to compare.

- Machine: ${machine}
- Node ${process.version}; Docker Engine ${engine.Version} (API ${engine.ApiVersion}); mcpx ${(JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require('${join(REPO, 'package.json')}'))`]).toString()) as { version: string }).version}

## Workspace create to \`ready\` (warm image cache)

One workspace with one Node server (\`@modelcontextprotocol/server-memory\`), created through \`POST /api/v1/workspaces\`
and polled every 5 ms until \`status\` is \`ready\` (every server answered the MCP handshake), then deleted; one
warm-up run first. Includes: the image cache check, volume and container creation with the full hardening, attach,
start, Node start-up inside the container at 0.5 CPU, and the MCP \`initialize\` round trip.

| runs | median | p10 | p90 | min | max | target |
|---:|---:|---:|---:|---:|---:|---|
| ${ready.n} | ${ms(ready.median)} | ${ms(ready.p10)} | ${ms(ready.p90)} | ${ms(ready.min)} | ${ms(ready.max)} | < 1.5 s (issue 2), < 1.0 s (issue 7) |
`;
  writeFileSync(join(REPO, 'docs/benchmarks.md'), doc);
  console.error('wrote docs/benchmarks.md');
}

await main();
