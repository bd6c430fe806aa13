// `node --import tsx bench/guardrails.ts [--quick]`: the gateway's p50 with every guardrail and the audit trail on,
// against the same path with what can be switched off switched off; plus the cost of the checks that always run.
// Written as its own section of docs/benchmarks.md. Loopback and this run's containers only; bounded loops.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { loadGatewayConfig } from '../src/config/index.js';
import { startGateway } from '../src/main.js';
import { checkLimits, createSchemaValidator, DEFAULT_LIMITS, findForbiddenName, mayCall } from '../src/policy/index.js';
import { latencyStats, median } from './measure.js';
import { until } from './processes.js';

const quick = process.argv.includes('--quick');
const REPO = resolve(import.meta.dirname, '..');
const START = '<!-- guardrails-bench:start -->';
const END = '<!-- guardrails-bench:end -->';
const CALLS = quick ? 300 : 2000;
const ROUNDS = quick ? 2 : 4;

const SERVER = { name: 'everything', package: '@modelcontextprotocol/server-everything', args: ['stdio'] };
const OPEN = { perToken: { rate: 1e6, burst: 1e6 }, perWorkspace: { rate: 1e6, burst: 1e6 }, concurrentPerServer: 10_000 };
// One workspace whose spec is switched between the two settings: the same container serves both paths, so the
// difference is the gateway's alone (two containers at 0.5 CPU each differ by more than what is measured here).
const WS = 'bench-guard';
const ON = {
  name: WS,
  servers: [SERVER],
  tools: { deny: ['get-env', 'gzip-*'], roles: { member: { deny: ['trigger-*'] } } },
  rateLimits: OPEN,
  hibernate: { after: 'never' },
};
const OFF = { name: WS, servers: [SERVER], rateLimits: OPEN, limits: { forbiddenArgs: [] }, audit: { requests: false, arguments: 'none' }, hibernate: { after: 'never' } };

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mcpx-bench-guard-'));
  const loaded = loadGatewayConfig({ port: 0, dataDir }, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const gateway = await startGateway(loaded.config, { logger: pino({ level: 'silent' }) });
  const token = await signToken(await loadOrCreateSigningKey(gateway.dataDir), { sub: 'bench', ttlSeconds: 3600 });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(gateway.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const clients: Client[] = [];
  try {
    const ready = () => until(async () => ((await (await api('GET', `/api/v1/workspaces/${WS}`)).json()) as { status: string }).status === 'ready', 300_000, 20);
    if ((await api('POST', '/api/v1/workspaces', ON)).status !== 201) throw new Error('create failed');
    await ready();
    let current: typeof ON | typeof OFF = ON;
    const use = async (spec: typeof ON | typeof OFF) => {
      if (spec === current) return;
      if ((await api('PUT', `/api/v1/workspaces/${WS}`, spec)).status !== 200) throw new Error('update failed');
      await ready();
      current = spec;
    };
    const connect = async (ws: string) => {
      const c = new Client({ name: 'bench', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp/${ws}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      clients.push(c);
      return c;
    };
    const client = await connect(WS);
    const call = (i: number) => client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
    for (let i = 0; i < 200; i++) await call(i);

    // Interleaved rounds: drift on the machine hits both settings alike.
    const rounds: { on: number[]; off: number[] }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const samples = { on: [] as number[], off: [] as number[] };
      const order: ('on' | 'off')[] = r % 2 ? ['off', 'on'] : ['on', 'off'];
      for (const key of order) {
        await use(key === 'on' ? ON : OFF);
        for (let i = 0; i < 50; i++) await call(i);
        for (let i = 0; i < CALLS / ROUNDS; i++) {
          const t0 = performance.now();
          await call(i);
          samples[key].push(performance.now() - t0);
        }
      }
      rounds.push(samples);
    }
    const all = { on: rounds.flatMap((r) => r.on), off: rounds.flatMap((r) => r.off) };
    const sOn = latencyStats(all.on);
    const sOff = latencyStats(all.off);
    const roundDiffs = rounds.map((r) => latencyStats(r.on).p50 - latencyStats(r.off).p50);

    // The checks that always run, alone, on the same arguments (µs per call).
    const validator = createSchemaValidator();
    const schema = { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], $schema: 'http://json-schema.org/draft-07/schema#' };
    const params = { name: 'echo', arguments: { message: 'm1' } };
    const N = 200_000;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      checkLimits(params, DEFAULT_LIMITS);
      findForbiddenName(params.arguments, ['exec', 'eval', 'import']);
      mayCall({ tools: ON.tools }, 'owner', 'echo');
      validator.validate(schema, params.arguments);
    }
    const checksUs = ((performance.now() - t0) * 1000) / N;

    const f = (v: number) => `${v.toFixed(3)} ms`;
    const section = `${START}
## Guardrails and audit: on against off

Written by \`node --import tsx bench/guardrails.ts${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.
\`tools/call echo\` of \`@modelcontextprotocol/server-everything\` through the gateway (SDK 1.x client, Streamable HTTP,
bearer token), sequential, ${CALLS} calls per setting in ${ROUNDS} interleaved rounds, one workspace and one container
whose spec is switched between the settings (\`PUT\`, no container is recreated), 50 warm-up calls after each switch.
**On**: a tool policy with globs and role overrides, the default limits, the forbidden-name walk, inputSchema
validation, rate buckets, redaction, and every request appended to the hash-chained audit trail with an argument hash.
**Off**: the same path with everything a spec can switch off switched off (no policy, no forbidden names, audit of
requests off). The shape and limit checks, schema validation and redaction scan cannot be switched off; their cost
alone is the last row.

| path | n | p50 | p90 | p99 | mean |
|---|---:|---:|---:|---:|---:|
| on | ${sOn.n} | ${f(sOn.p50)} | ${f(sOn.p90)} | ${f(sOn.p99)} | ${f(sOn.mean)} |
| off | ${sOff.n} | ${f(sOff.p50)} | ${f(sOff.p90)} | ${f(sOff.p99)} | ${f(sOff.mean)} |
| on − off, p50 (median of round differences; spread) | | ${f(median(roundDiffs))} | ${roundDiffs.map((d) => d.toFixed(3)).join(', ')} | | |
| always-on checks alone (limits, forbidden names, policy, schema) | | ${(checksUs / 1000).toFixed(4)} ms | | | |

Target (issue 6): under 0.2 ms added at p50.
${END}
`;
    const file = join(REPO, 'docs/benchmarks.md');
    const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
    const at = doc.indexOf(START);
    const endAt = doc.indexOf(END);
    writeFileSync(file, at >= 0 && endAt > at ? `${doc.slice(0, at)}${section}${doc.slice(endAt + END.length + 1)}` : `${doc.trimEnd()}\n\n${section}`);
    console.error(JSON.stringify({ on: sOn, off: sOff, roundDiffs, checksUs }));
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await api('DELETE', `/api/v1/workspaces/${WS}`).catch(() => undefined);
    await until(async () => (await api('GET', `/api/v1/workspaces/${WS}`)).status === 404, 60_000, 20).catch(() => undefined);
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
