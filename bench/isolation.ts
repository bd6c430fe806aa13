// `npm run bench:isolation [-- --quick]`: cold start of a workspace per isolation tier, written as its own section at
// the end of docs/benchmarks.md (between markers; the rest of the file is left as it is).
// Traffic goes only to loopback and to containers this run starts; every loop is bounded.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { loadGatewayConfig } from '../src/config/index.js';
import { startGateway } from '../src/main.js';
import { marked, writeSection } from './bench-doc.js';
import { api, MEMORY_SERVER } from './create-to-ready.js';
import { spread } from './measure.js';
import type { Spread } from './measure.js';
import { until } from './processes.js';

const quick = process.argv.includes('--quick');
const ms = (v: number) => `${v.toFixed(0)} ms`;

type Tier = { label: string; isolation: 'standard' | 'gvisor'; network: 'none' | { egress: string[] } };

const TIERS: Tier[] = [
  { label: 'standard (runc), network none', isolation: 'standard', network: 'none' },
  { label: 'gVisor (runsc), network none', isolation: 'gvisor', network: 'none' },
  { label: 'standard (runc), egress allowlist', isolation: 'standard', network: { egress: ['127.0.0.1:9'] } },
];

/** Create to ready for each tier, interleaved run by run so that drift on the machine hits every tier alike. */
async function coldStarts(runs: number): Promise<Spread[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcpx-bench-iso-'));
  const loaded = loadGatewayConfig({ port: 0, dataDir }, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }) });
  const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 3600 });
  const samples: number[][] = TIERS.map(() => []);
  try {
    // One warm-up run per tier fills the image cache and the npm resolution cache.
    for (let i = -1; i < runs; i++) {
      for (const [t, tier] of TIERS.entries()) {
        const name = `bench-iso-${t}-${i + 1}`;
        const spec = {
          name,
          isolation: tier.isolation,
          network: tier.network,
          servers: [MEMORY_SERVER],
        };
        const t0 = performance.now();
        const r = await api(gateway.url, 'POST', '/api/v1/workspaces', token, spec);
        if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
        await until(async () => {
          const s = (await api<{ status?: string }>(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).body?.status;
          if (s === 'failed') throw new Error(`${name} failed`);
          return s === 'ready';
        }, 300_000);
        const elapsed = performance.now() - t0;
        if (i >= 0) samples[t]!.push(elapsed);
        await api(gateway.url, 'DELETE', `/api/v1/workspaces/${name}`, token);
        await until(async () => (await api(gateway.url, 'GET', `/api/v1/workspaces/${name}`, token)).status === 404, 60_000, 20);
      }
    }
  } finally {
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return samples.map((s) => spread(s));
}

async function main(): Promise<void> {
  const runs = quick ? 3 : 10;
  const engine = await new Docker().version();
  console.error(`cold start per tier: ${runs} runs each`);
  const loadBefore = loadavg()[0]!;
  const results = await coldStarts(runs);
  const loadAfter = loadavg()[0]!;
  const base = results[0]!.median;
  const rows = TIERS.map((t, i) => {
    const s = results[i]!;
    const vs = i === 0 ? '1.00×' : `${(s.median / base).toFixed(2)}× (+${ms(s.median - base)})`;
    return `| ${t.label} | ${s.n} | ${ms(s.median)} | ${ms(s.p10)} | ${ms(s.p90)} | ${ms(s.min)} | ${ms(s.max)} | ${vs} |`;
  });
  const section = `## Cold start by isolation tier (issue 4)

Written by \`npm run bench:isolation${quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, Docker Engine
${engine.Version}). One workspace with one Node server (\`@modelcontextprotocol/server-memory\`), created through
\`POST /api/v1/workspaces\` and polled every 5 ms until \`ready\` (the server answered the MCP handshake), then deleted;
the tiers are interleaved run by run after one warm-up run each (warm image cache). Every run includes making the
workspace's ext4 quota image, its loop device and volume. The egress row also includes the workspace network, its
firewall rules and its egress proxy. One-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after
(2 cores; above 1 means something else was running).

| tier | runs | median | p10 | p90 | min | max | median vs standard |
|---|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}
`;
  writeSection(marked('isolation-bench', section));
  console.error(results.map((r, i) => `${TIERS[i]!.label}: ${JSON.stringify(r)}`).join('\n'));
  console.error('wrote the isolation section of docs/benchmarks.md');
}

await main();
