// `node --import tsx bench/profile-gateway.ts [calls] [profile dir]`: the gateway as users run it (`bin/mcpx.js serve`,
// after `npm run build`) under `--cpu-prof`, with this process as its client making sequential echo calls; then
// `node --import tsx bench/cpu-profile-summary.ts <dir>/*.cpuprofile` shows where the gateway's own CPU goes per call.
// Traffic stays on loopback and in the one workspace it creates (and deletes); every loop is bounded.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadOrCreateSigningKey, signToken } from '../src/auth/index.js';
import { fetchWithoutSharedSignal, installedVersion } from '../bench/request-latency.js';
const N = Number(process.argv[2] ?? 10000);
const profDir = process.argv[3] ?? '/tmp/prof-gw';
const dataDir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
const port = 7600 + Math.floor(Math.random() * 300);
const gw = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, 'bin/mcpx.js', 'serve'], { env: { ...process.env, MCPX_PORT: String(port), MCPX_DATA_DIR: dataDir, MCPX_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'] });
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 100; i++) {
  try {
    await fetch(url + '/healthz');
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const token = await signToken(await loadOrCreateSigningKey(dataDir), { sub: 'bench', ttlSeconds: 3600 });
const name = 'prof-echo';
const api = (m: string, p: string, b?: unknown) => fetch(url + p, { method: m, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(b ? { body: JSON.stringify(b) } : {}) }).then((r) => r.json().catch(() => ({})));
try {
  console.error(JSON.stringify(await api('POST', '/api/v1/workspaces', { name, servers: [{ name: 'everything', package: `@modelcontextprotocol/server-everything@${installedVersion('@modelcontextprotocol/server-everything')}`, args: ['stdio'] }], rateLimits: { perToken: { rate: 1e6, burst: 1e7 }, perWorkspace: { rate: 1e6, burst: 1e7 } } })).slice(0, 200));
  for (let i = 0; i < 600; i++) { const g = (await api('GET', `/api/v1/workspaces/${name}`)) as { status?: string }; if (g.status === 'ready') break; await new Promise((r) => setTimeout(r, 100)); }
  const client = new Client({ name: 'x', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp/${name}`), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: fetchWithoutSharedSignal }));
  const s: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) { const t = performance.now(); await client.callTool({ name: 'echo', arguments: { message: 'bench' } }); s.push(performance.now() - t); }
  const cpu = process.cpuUsage(cpu0);
  s.sort((a, b) => a - b);
  console.log(`calls ${N} p50 ${s[Math.floor(N / 2)]!.toFixed(3)} ms; client cpu/call ${((cpu.user + cpu.system) / N).toFixed(1)} us`);
  await client.close();
} finally {
  await api('DELETE', `/api/v1/workspaces/${name}`);
  await new Promise((r) => setTimeout(r, 3000));
  gw.kill('SIGTERM');
  await new Promise((r) => gw.on('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
