// Guardrails on the MCP endpoint, each rule shown by the request that passes and the one that is refused, with
// the fixture server's own count proving a refused request never reached it; and the tamper-evident audit trail.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { PROBE_PACKAGE, runCli, startTestGateway, tempDir } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const WS = 'it-guard';
let gw: TestGateway;
let owner: string;
let member: string;
let viewer: string;

const spec = {
  name: WS,
  servers: [{ name: 'probe', package: PROBE_PACKAGE }],
  members: { bob: 'member', vera: 'viewer' },
  tools: { deny: ['dangerous'], roles: { member: { deny: ['crash'] } } },
  limits: { maxDepth: 6, maxStringLength: 4096, maxArrayLength: 50, forbiddenArgs: ['exec', 'eval', 'import'], maxResponseBytes: 64 * 1024 },
};

async function connect(token: string): Promise<Client> {
  const c = new Client({ name: 'guard-test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${WS}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return c;
}

const text = (r: unknown) => (r as { content: { text: string }[] }).content[0]!.text;
let ownerClient: Client;
const received = async (): Promise<Record<string, number>> => JSON.parse(text(await ownerClient.callTool({ name: 'received', arguments: {} }))) as Record<string, number>;

/** Calls a tool expecting a refusal; returns the error message. */
async function refused(c: Client, name: string, args: Record<string, unknown>): Promise<string> {
  try {
    await c.callTool({ name, arguments: args });
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error(`${name} was not refused`);
}

const dataDir = tempDir('guard');

beforeAll(async () => {
  gw = await startTestGateway({ dataDir });
  [owner, member, viewer] = await Promise.all([gw.token('alice'), gw.token('bob'), gw.token('vera')]);
  expect((await gw.api('POST', '/api/v1/workspaces', owner, spec)).status).toBe(201);
  await gw.waitStatus(WS, owner, ['ready']);
  ownerClient = await connect(owner);
});

afterAll(async () => {
  await ownerClient?.close();
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('tool policy', () => {
  it('hides a denied tool from lists, and calling it answers exactly like a missing tool', async () => {
    const names = (await ownerClient.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('dangerous');
    const denied = await refused(ownerClient, 'dangerous', {});
    const missing = await refused(ownerClient, 'no_such_tool', {});
    expect(denied.replace('dangerous', 'X')).toBe(missing.replace('no_such_tool', 'X'));
    expect((await received())['tools/call:dangerous']).toBeUndefined();
  });

  it('applies per-role overrides: a member may not call what the owner may', async () => {
    const m = await connect(member);
    expect((await m.listTools()).tools.map((t) => t.name)).not.toContain('crash');
    expect((await ownerClient.listTools()).tools.map((t) => t.name)).toContain('crash');
    expect(await refused(m, 'crash', {})).toMatch(/Unknown tool: crash/);
    expect(text(await m.callTool({ name: 'echo', arguments: { message: 'member ok' } }))).toBe('member ok');
    await m.close();
    expect((await received())['tools/call:crash']).toBeUndefined();
  });

  it('lets a viewer list tools but not call one', async () => {
    const v = await connect(viewer);
    expect((await v.listTools()).tools.map((t) => t.name)).toContain('echo');
    expect(await refused(v, 'echo', { message: 'x' })).toMatch(/viewer/);
    await v.close();
  });
});

describe('sanitising', () => {
  it("validates arguments against the tool's own inputSchema before the server sees them", async () => {
    const before = (await received())['tools/call:typed'] ?? 0;
    expect(text(await ownerClient.callTool({ name: 'typed', arguments: { count: 2, label: 'ok' } }))).toContain('typed ok');
    expect(await refused(ownerClient, 'typed', { count: 0 })).toMatch(/Invalid arguments for tool typed: arguments.count must be >= 1/);
    expect(await refused(ownerClient, 'typed', { label: 'x' })).toMatch(/must have required property 'count'/);
    expect(await refused(ownerClient, 'typed', { count: 1, extra: true })).toMatch(/additional properties/);
    expect((await received())['tools/call:typed']).toBe(before + 1);
  });

  it('refuses forbidden argument names at any depth, in any case', async () => {
    const before = (await received())['tools/call:echo'] ?? 0;
    expect(await refused(ownerClient, 'echo', { message: 'x', options: [{ nested: { EXEC: 'rm -rf /' } }] })).toMatch(/"EXEC" is forbidden/);
    expect(await refused(ownerClient, 'echo', { message: 'x', eval: '1' })).toMatch(/"eval" is forbidden/);
    expect((await received())['tools/call:echo'] ?? 0).toBe(before);
  });

  it('refuses values past the nesting, string and array limits, naming where', async () => {
    const before = (await received())['tools/call:echo'] ?? 0;
    let deep: unknown = 'x';
    for (let i = 0; i < 10; i++) deep = { d: deep };
    expect(await refused(ownerClient, 'echo', { message: 'x', deep })).toMatch(/nesting is deeper than 6/);
    expect(await refused(ownerClient, 'echo', { message: 'y'.repeat(5000) })).toMatch(/longer than 4096.*arguments\.message/);
    expect(await refused(ownerClient, 'echo', { message: 'x', list: Array.from({ length: 51 }, () => 1) })).toMatch(/more than 50 items/);
    expect(text(await ownerClient.callTool({ name: 'echo', arguments: { message: 'y'.repeat(4000) } }))).toHaveLength(4000);
    expect((await received())['tools/call:echo']).toBe(before + 1);
  });

  it('caps the size of a server response', async () => {
    expect(text(await ownerClient.callTool({ name: 'big', arguments: { bytes: 1000 } }))).toHaveLength(1000);
    expect(await refused(ownerClient, 'big', { bytes: 200_000 })).toMatch(/exceeded this workspace's limit of 65536 bytes/);
  });
});

describe('rate limits', () => {
  const LIMITED = 'it-guard-rate';
  beforeAll(async () => {
    const r = await gw.api('POST', '/api/v1/workspaces', owner, {
      name: LIMITED,
      servers: [{ name: 'probe', package: PROBE_PACKAGE }],
      members: { bob: 'member' },
      rateLimits: { perToken: { rate: 0.2, burst: 12 }, perWorkspace: { rate: 1000, burst: 1000 }, concurrentPerServer: 2 },
    });
    expect(r.status).toBe(201);
    await gw.waitStatus(LIMITED, owner, ['ready']);
  });
  afterAll(async () => {
    await gw.remove(LIMITED, owner);
  });

  const call = (token: string, session: string, id: number, name: string, args: Record<string, unknown>) =>
    fetch(`${gw.url}/mcp/${LIMITED}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    });
  const session = async (token: string) => {
    const r = await fetch(`${gw.url}/mcp/${LIMITED}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'r', version: '1' } } }),
    });
    return r.headers.get('mcp-session-id')!;
  };

  it('answers a burst over the per-token limit with 429 and Retry-After, and the server sees no more than allowed', async () => {
    const sid = await session(member); // one request of the burst
    // One after another: the burst is about the bucket, not about requests in flight (capped separately below).
    const results: Response[] = [];
    for (let i = 0; i < 30; i++) results.push(await call(member, sid, i + 1, 'echo', { message: `m${i}` }));
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toBe(11);
    expect(limited).toHaveLength(19);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited[0]!.json()) as { error: { code: number } }).error.code).toBe(-32029);
    // Another token has its own bucket.
    const osid = await session(owner);
    expect((await call(owner, osid, 1, 'echo', { message: 'owner' })).status).toBe(200);
    const counts = JSON.parse(((await (await call(owner, osid, 2, 'received', {})).json()) as { result: { content: { text: string }[] } }).result.content[0]!.text) as Record<string, number>;
    expect(counts['tools/call:echo']).toBe(ok + 1);
  });

  it('caps the requests in flight to one server', async () => {
    const sid = await session(owner);
    const slow = await Promise.all([1, 2, 3].map((i) => call(owner, sid, 100 + i, 'sleep', { ms: 500 })));
    const bodies = (await Promise.all(slow.map((r) => r.json()))) as { error?: { code: number; message: string } }[];
    expect(slow.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    expect(bodies.find((b) => b.error)?.error?.message).toMatch(/too many requests in flight to server "probe" \(limit 2\)/);
  });
});

describe('audit trail', () => {
  it('records each MCP request with its decision and reason, and a hash of the arguments only', async () => {
    const trail = (await gw.api<{ kind: string; method?: string; target?: string; decision?: string; reason?: string; argsHash?: string; actor?: string; latencyMs?: number }[]>('GET', `/api/v1/audit?workspace=${WS}&kind=mcp`, owner)).body;
    const denied = trail.find((e) => e.target === 'dangerous');
    expect(denied).toMatchObject({ method: 'tools/call', decision: 'deny', actor: 'alice', reason: 'tools policy denies "dangerous"' });
    const allowed = trail.find((e) => e.target === 'typed' && e.decision === 'allow');
    expect(allowed?.argsHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(typeof allowed?.latencyMs).toBe('number');
    expect(JSON.stringify(trail)).not.toContain('rm -rf /');
    const denials = (await gw.api<unknown[]>('GET', `/api/v1/audit?workspace=${WS}&decision=deny&user=bob`, owner)).body;
    expect(denials.length).toBeGreaterThan(0);
  });

  it('records that an audit setting was turned off', async () => {
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}`, owner, { ...spec, audit: { requests: false, arguments: 'none' } })).status).toBe(200);
    const changes = (await gw.api<{ method?: string; detail?: { from: unknown; to: unknown } }[]>('GET', `/api/v1/audit?workspace=${WS}&kind=admin`, owner)).body.filter((e) => e.method === 'audit_setting_changed');
    expect(changes.at(-1)?.detail).toEqual({ from: { requests: true, arguments: 'hash' }, to: { requests: false, arguments: 'none' } });
    await gw.waitStatus(WS, owner, ['ready']);
    const before = (await gw.api<unknown[]>('GET', `/api/v1/audit?workspace=${WS}&kind=mcp`, owner)).body.length;
    await ownerClient.callTool({ name: 'echo', arguments: { message: 'unrecorded' } });
    expect((await gw.api<unknown[]>('GET', `/api/v1/audit?workspace=${WS}&kind=mcp`, owner)).body.length).toBe(before);
  });

  it('records admin actions and lifecycle events', async () => {
    await gw.api('PUT', `/api/v1/workspaces/${WS}/members/carol`, owner, { role: 'viewer' });
    const trail = await gw.api<{ kind: string; method?: string; decision?: string; actor?: string }[]>('GET', `/api/v1/audit?workspace=${WS}`, owner);
    expect(trail.status).toBe(200);
    expect(trail.body.some((e) => e.kind === 'event' && e.method === 'ready')).toBe(true);
    expect(trail.body.some((e) => e.kind === 'admin' && e.method === `PUT /api/v1/workspaces/${WS}/members/carol` && e.actor === 'alice')).toBe(true);
    expect((await gw.api('GET', '/api/v1/audit', member)).status).toBe(403);
    expect((await gw.api('GET', `/api/v1/audit?workspace=${WS}`, member)).status).toBe(403);
  });

  it('verifies an untouched trail and names the first changed row', async () => {
    await ownerClient.close();
    await gw.close();
    const ok = await runCli(['audit', 'verify', '--data', dataDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit log verified: [1-9]\d* entries/);

    const db = new Database(join(dataDir, 'mcpx.db'));
    const victim = (db.prepare("SELECT id FROM audit WHERE kind = 'admin' ORDER BY id LIMIT 1").get() as { id: number }).id;
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'someone-else' WHERE id = ?").run(victim);
    db.close();
    const bad = await runCli(['audit', 'verify', '--data', dataDir]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`at entry ${victim}`);
    gw = await startTestGateway({ dataDir });
    ownerClient = await connect(owner);
  });
});
