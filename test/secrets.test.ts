// Secrets end to end: encrypted at rest, injected only where named (env or tmpfs file), never in the engine's
// configuration, redacted from responses and logs, rotated without loss, and managed by the owner only.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { apiClient, PROBE_PACKAGE, runCli, spawnGateway, tempDir, tokenFor, waitFor } from './helpers/gateway.js';
import type { EventView, GatewayProcess } from './helpers/gateway.js';

const WS = 'it-secrets';
const A_VALUE = 'sv-alpha-7c1e9d2b44f0a8';
const B_VALUE = 'sv-bravo-3f8a1c0d92e7b5';
const FILE_VALUE = 'sv-file-5d2c7e1a90b3f6';
const CLOUD_KEY = 'AKIAZ3MPLEK3Y0123456';
const sha = (v: string) => createHash('sha256').update(v).digest('hex');

const dataDir = tempDir('secrets');
const ENV = { MCPX_PUBLIC_URL: 'http://127.0.0.1:7470' };
let gwp: GatewayProcess;
let api: ReturnType<typeof apiClient>;
let owner: string;
let member: string;
let stranger: string;

let session: { url: string; id: string } | undefined;

/** One MCP session per gateway process, opened on first use. */
async function sessionId(): Promise<string> {
  if (session?.url === gwp.url) return session.id;
  const init = await fetch(`${gwp.url}/mcp/${WS}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
  session = { url: gwp.url, id: init.headers.get('mcp-session-id')! };
  return session.id;
}

async function tool(server: string, name: string, args: Record<string, unknown> = {}): Promise<{ text: string; error?: string }> {
  const sid = await sessionId();
  const res = await fetch(`${gwp.url}/mcp/${WS}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: `${server}__${name}`, arguments: args } }),
  });
  const body = (await res.json()) as { result?: { content: { text: string }[] }; error?: { message: string } };
  return body.error ? { text: '', error: body.error.message } : { text: body.result!.content[0]!.text };
}

const setSecret = (name: string, value: string, token = owner) => api('PUT', `/api/v1/workspaces/${WS}/secrets/${name}`, token, { value });
const events = async () => (await api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body;

const SPEC = (patterns = 'redact') => ({
  name: WS,
  servers: [
    { name: 'a', package: PROBE_PACKAGE, secrets: ['A_TOKEN', { name: 'A_FILE', mode: 'file' }] },
    { name: 'b', package: PROBE_PACKAGE, secrets: ['B_TOKEN'] },
  ],
  members: { bob: 'member' },
  redaction: { patterns },
});

beforeAll(async () => {
  gwp = await spawnGateway(dataDir, ENV);
  api = apiClient(gwp.url);
  [owner, member, stranger] = await Promise.all([tokenFor(dataDir, 'alice'), tokenFor(dataDir, 'bob'), tokenFor(dataDir, 'mallory')]);
  expect((await api('POST', '/api/v1/workspaces', owner, SPEC())).status).toBe(201);
  expect((await setSecret('A_TOKEN', A_VALUE)).status).toBe(204);
  expect((await setSecret('A_FILE', FILE_VALUE)).status).toBe(204);
  expect((await setSecret('B_TOKEN', B_VALUE)).status).toBe(204);
  await waitFor('ready', async () => ((await api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status === 'ready' ? true : undefined), 240_000);
  // Secrets set while the servers started: wait until both run with them (a change restarts only what needs it).
  await waitFor('servers with their secrets', async () => {
    const a = JSON.parse((await tool('a', 'secret_info', { name: 'A_FILE' })).text || '{}') as { file?: { sha256: string } };
    const b = JSON.parse((await tool('b', 'secret_info', { name: 'B_TOKEN' })).text || '{}') as { env?: string };
    return a.file?.sha256 === sha(FILE_VALUE) && b.env === sha(B_VALUE) ? true : undefined;
  }, 60_000, 250);
});

afterAll(async () => {
  await api('DELETE', `/api/v1/workspaces/${WS}`, owner).catch(() => undefined);
  await waitFor('delete', async () => ((await api('GET', `/api/v1/workspaces/${WS}`, owner)).status === 404 ? true : undefined), 60_000).catch(() => undefined);
  gwp.child.kill('SIGTERM');
  await new Promise((r) => gwp.child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('secrets', () => {
  it('gives each server exactly its own secrets, in the mode asked for', async () => {
    const a = JSON.parse((await tool('a', 'secret_info', { name: 'A_TOKEN' })).text) as { env: string | null; environ: boolean };
    expect(a.env).toBe(sha(A_VALUE));
    expect(a.environ).toBe(false); // set by the launcher, not in the process's initial environment
    const aFile = JSON.parse((await tool('a', 'secret_info', { name: 'A_FILE' })).text) as { env: string | null; file: { sha256: string; mode: string; uid: number } };
    expect(aFile.env).toBeNull();
    expect(aFile.file).toEqual({ sha256: sha(FILE_VALUE), mode: '400', uid: 10001 });
    const aSeesB = JSON.parse((await tool('a', 'secret_info', { name: 'B_TOKEN' })).text) as { env: string | null };
    expect(aSeesB.env).toBeNull();
    const b = JSON.parse((await tool('b', 'secret_info', { name: 'B_TOKEN' })).text) as { env: string | null };
    expect(b.env).toBe(sha(B_VALUE));
    const bSeesA = JSON.parse((await tool('b', 'secret_info', { name: 'A_TOKEN' })).text) as { env: string | null; file: unknown };
    expect(bSeesA).toMatchObject({ env: null, file: null });
  });

  it("keeps every value out of the engine's container configuration", async () => {
    for (const c of await docker.listContainers({ filters: { label: [`mcpx.workspace=${WS}`] } })) {
      const inspect = JSON.stringify(await docker.getContainer(c.Id).inspect());
      for (const v of [A_VALUE, B_VALUE, FILE_VALUE]) expect(inspect).not.toContain(v);
    }
  });

  it('redacts a secret value and a cloud-key shape from a tool result, and records it', async () => {
    expect((await tool('a', 'env_value', { name: 'A_TOKEN' })).text).toBe('[REDACTED:A_TOKEN]');
    expect((await tool('a', 'echo', { message: `key ${CLOUD_KEY} and ${B_VALUE}` })).text).toBe('key [REDACTED:aws-access-key-id] and [REDACTED:B_TOKEN]');
    const redacted = (await events()).filter((e) => e.type === 'secret_redacted');
    expect(redacted.some((e) => (e.detail?.secrets as string[]).includes('A_TOKEN'))).toBe(true);
    expect(redacted.some((e) => (e.detail?.patterns as string[]).includes('aws-access-key-id'))).toBe(true);
    expect(JSON.stringify(redacted)).not.toContain(A_VALUE);
  });

  it('redacts server logs too', async () => {
    await tool('b', 'stderr', { line: `debug: token is ${B_VALUE}` });
    const logs = await api<{ line: string }[]>('GET', `/api/v1/workspaces/${WS}/logs?server=b`, owner);
    expect(logs.body.map((l) => l.line)).toContain('debug: token is [REDACTED:B_TOKEN]');
  });

  it('can block a response with a credential shape instead, by policy', async () => {
    expect((await api('PUT', `/api/v1/workspaces/${WS}`, owner, SPEC('block'))).status).toBe(200);
    await waitFor('ready', async () => ((await api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status === 'ready' ? true : undefined), 60_000);
    const blocked = await tool('a', 'echo', { message: `key ${CLOUD_KEY}` });
    expect(blocked.error).toMatch(/withheld.*aws-access-key-id/);
    expect(blocked.error).not.toContain(CLOUD_KEY);
    // Secret values are still redacted (not blocked) under this policy.
    expect((await tool('a', 'env_value', { name: 'A_TOKEN' })).text).toBe('[REDACTED:A_TOKEN]');
    expect((await api('PUT', `/api/v1/workspaces/${WS}`, owner, SPEC())).status).toBe(200);
  });

  it('restarts only the servers that use a changed secret', async () => {
    await waitFor('ready', async () => ((await api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status === 'ready' ? true : undefined), 60_000);
    const mark = (await events()).at(-1)!.id;
    const NEW = 'sv-bravo-rotated-77aa55';
    expect((await setSecret('B_TOKEN', NEW)).status).toBe(204);
    await waitFor('b with the new value', async () => {
      const info = JSON.parse((await tool('b', 'secret_info', { name: 'B_TOKEN' })).text || '{}') as { env?: string };
      return info.env === sha(NEW) ? true : undefined;
    }, 60_000, 250);
    const after = (await api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events?after=${mark}`, owner)).body;
    const restarted = after.filter((e) => e.type === 'container_restarted').map((e) => e.server);
    expect(restarted).toEqual(['b']);
  });

  it('lets only the owner manage secrets, and never shows a value', async () => {
    const list = await api<{ name: string; updatedAt: string }[]>('GET', `/api/v1/workspaces/${WS}/secrets`, owner);
    expect(list.body.map((s) => s.name)).toEqual(['A_FILE', 'A_TOKEN', 'B_TOKEN']);
    expect(JSON.stringify(list.body)).not.toMatch(/sv-/);
    expect((await api('GET', `/api/v1/workspaces/${WS}/secrets`, member)).status).toBe(403);
    expect((await setSecret('X', 'nope-nope', member)).status).toBe(403);
    expect((await api('DELETE', `/api/v1/workspaces/${WS}/secrets/A_TOKEN`, member)).status).toBe(403);
    expect((await api('GET', `/api/v1/workspaces/${WS}/secrets`, stranger)).status).toBe(404);
    expect((await setSecret('X', 'nope-nope', stranger)).status).toBe(404);
    const bad = await api<{ detail: string }>('PUT', `/api/v1/workspaces/${WS}/secrets/1BAD`, owner, { value: 'sv-never-echoed-1234' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).not.toContain('sv-never-echoed-1234');
  });

  it('works from the CLI, value on stdin', async () => {
    const env = { MCPX_TOKEN: owner };
    const set = await runCli(['secret', 'set', WS, 'CLI_SECRET', '--url', gwp.url], env, 'sv-from-cli-0099\n');
    expect(set).toMatchObject({ code: 0, stdout: 'secret CLI_SECRET set\n' });
    const ls = await runCli(['secret', 'ls', WS, '--url', gwp.url], env);
    expect(ls.stdout).toContain('CLI_SECRET');
    expect(ls.stdout).not.toContain('sv-from-cli');
    expect((await runCli(['secret', 'rm', WS, 'CLI_SECRET', '--url', gwp.url], env)).code).toBe(0);
    expect((await runCli(['secret', 'rm', WS, 'CLI_SECRET', '--url', gwp.url], env)).code).not.toBe(0);
  });

  it('keeps no value in the database, the data directory or the logs', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(dataDir);
    expect(files.some((f) => f.endsWith('mcpx.db'))).toBe(true);
    const haystacks = [...files.map((f) => readFileSync(f)), Buffer.from(gwp.stderr())];
    for (const v of [A_VALUE, B_VALUE, FILE_VALUE, 'sv-bravo-rotated-77aa55', 'sv-from-cli-0099']) {
      for (const h of haystacks) expect(h.includes(v)).toBe(false);
    }
    expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('survives a master key rotation and a restart; the old key opens nothing', async () => {
    const oldKey = readFileSync(join(dataDir, 'master.key'), 'utf8');
    gwp.child.kill('SIGTERM');
    await new Promise((r) => gwp.child.once('exit', r));
    const rotate = await runCli(['keys', 'rotate', '--data', dataDir]);
    expect(rotate.code).toBe(0);
    expect(rotate.stdout).toMatch(/1 data key\(s\) re-wrapped/);
    expect(readFileSync(join(dataDir, 'master.key'), 'utf8')).not.toBe(oldKey);
    gwp = await spawnGateway(dataDir, ENV);
    api = apiClient(gwp.url);
    await waitFor('ready', async () => ((await api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status === 'ready' ? true : undefined), 60_000);
    // The adopted servers still hold their secrets; a restart makes them read the values again through the new key.
    expect((await setSecret('A_TOKEN', A_VALUE)).status).toBe(204);
    await waitFor('a restarted with its secret', async () => {
      const info = JSON.parse((await tool('a', 'secret_info', { name: 'A_FILE' })).text || '{}') as { file?: { sha256: string } };
      return info.file?.sha256 === sha(FILE_VALUE) ? true : undefined;
    }, 60_000, 250);
    // The old key cannot unwrap the stored data key any more.
    const script = `
      const D = require('better-sqlite3'); const c = require('node:crypto');
      const db = new D(process.argv[1], { readonly: true });
      const row = db.prepare('SELECT workspace_uid, wrapped FROM workspace_keys').get();
      const key = Buffer.from(process.argv[2].trim(), 'hex'); const b = row.wrapped;
      const d = c.createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
      d.setAAD(Buffer.from('mcpx/data-key/' + row.workspace_uid)); d.setAuthTag(b.subarray(b.length - 16));
      try { Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]); console.log('opened'); } catch { console.log('refused'); }`;
    const out = execFileSync(process.execPath, ['-e', script, join(dataDir, 'mcpx.db'), oldKey], { cwd: join(import.meta.dirname, '..') }).toString().trim();
    expect(out).toBe('refused');
    const nowOut = execFileSync(process.execPath, ['-e', script, join(dataDir, 'mcpx.db'), readFileSync(join(dataDir, 'master.key'), 'utf8')], { cwd: join(import.meta.dirname, '..') }).toString().trim();
    expect(nowOut).toBe('opened');
  });
});
