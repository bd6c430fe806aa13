// The command line against a running gateway process: token, apply with progress, ls, get, events, logs, rm,
// and one-line failures with a non-zero exit status.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelled } from './helpers/docker.js';
import { PROBE_PACKAGE, runCli, spawnGateway, tempDir } from './helpers/gateway.js';
import type { GatewayProcess } from './helpers/gateway.js';

const WS = 'it-cli';
const dir = tempDir('cli');
const dataDir = join(dir, 'data');
let gwp: GatewayProcess;
let env: Record<string, string>;

beforeAll(async () => {
  gwp = await spawnGateway(dataDir);
  const token = await runCli(['token', 'create', '--sub', 'alice', '--ttl', '1h', '--data', dataDir]);
  expect(token.code).toBe(0);
  expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  env = { MCPX_TOKEN: token.stdout.trim() };
});

afterAll(async () => {
  await runCli(['workspace', 'rm', WS, '--url', gwp.url], env);
  gwp.child.kill('SIGTERM');
  await new Promise((r) => gwp.child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
});

describe('mcpx CLI', () => {
  it('applies a YAML spec, showing progress, and exits 0 once ready', async () => {
    const file = join(dir, 'ws.yaml');
    writeFileSync(file, `name: ${WS}\nservers:\n  - name: probe\n    package: "${PROBE_PACKAGE}"\n    env: { GREETING: hello }\n`);
    const r = await runCli(['workspace', 'apply', '-f', file, '--url', gwp.url], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`workspace ${WS} created`);
    for (const type of ['workspace_created', 'image_built', 'policies_applied', 'container_started', 'server_initialized', 'ready']) {
      expect(r.stdout).toContain(type);
    }
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`workspace ${WS} is ready`);

    const again = await runCli(['workspace', 'apply', '-f', file, '--url', gwp.url], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`workspace ${WS} updated`);
    expect(again.stdout).toContain('(cached)');
  });

  it('lists, shows, and prints events and logs', async () => {
    const ls = await runCli(['workspace', 'ls', '--url', gwp.url], env);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`^${WS}\\s+ready\\s+probe\\(running\\)`, 'm'));
    const get = await runCli(['workspace', 'get', WS, '--url', gwp.url], env);
    expect(JSON.parse(get.stdout)).toMatchObject({ name: WS, status: 'ready', limits: { pids: 64 } });
    const events = await runCli(['workspace', 'events', WS, '--url', gwp.url], env);
    expect(events.stdout.split('\n')[0]).toContain('workspace_created');
    const logs = await runCli(['workspace', 'logs', WS, 'probe', '--url', gwp.url], env);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('probe server started');
  });

  it('fails with one line and a non-zero status', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `name: it-cli-bad\nservers:\n  - name: a\n    package: x\n    privileged: true\n`);
    const r = await runCli(['workspace', 'apply', '-f', bad, '--url', gwp.url], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('servers[0].privileged: unknown key "privileged"');

    const noToken = await runCli(['workspace', 'ls', '--url', gwp.url], { MCPX_TOKEN: '' });
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toMatch(/^mcpx: no token/);

    const down = await runCli(['workspace', 'ls', '--url', 'http://127.0.0.1:1'], env);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/^mcpx: cannot reach the gateway/);

    const missing = await runCli(['workspace', 'get', 'it-none', '--url', gwp.url], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/^mcpx: 404 /);
  });

  it('removes the workspace and everything labelled with it', async () => {
    const r = await runCli(['workspace', 'rm', WS, '--url', gwp.url], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`workspace ${WS} deleted`);
    expect(await labelled(`mcpx.workspace=${WS}`)).toEqual({ containers: 0, volumes: 0, networks: 0 });
  });
});
