// The MCP endpoint with the SDK 1.x client and raw HTTP: aggregation, multiplexing of many sessions over one
// process, progress, cancellation, sampling routed to the asking session, subscriptions, roles, robustness.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey } from '../src/auth/index.js';
import { PROBE_PACKAGE, startTestGateway, waitFor } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const ONE = 'it-mcp-one';
const MULTI = 'it-mcp-multi';
const EVERYTHING = { name: 'everything', package: '@modelcontextprotocol/server-everything', args: ['stdio'] };
// This suite is about routing under load, not about limits (tested in guardrails.test.ts).
const UNLIMITED = { perToken: { rate: 100_000, burst: 100_000 }, perWorkspace: { rate: 100_000, burst: 100_000 }, concurrentPerServer: 10_000 };

let gw: TestGateway;
let alice: string;
let bob: string;
let viewer: string;
let mallory: string;

async function connect(ws: string, token: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'it-client', version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${ws}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

const text = (r: unknown) => JSON.stringify((r as { content?: unknown }).content ?? r);

interface Raw {
  status: number;
  headers: Headers;
  body: string;
  json(): { jsonrpc?: string; id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string } };
}

async function raw(ws: string, init: { method?: string; token?: string; session?: string; body?: string | Buffer; headers?: Record<string, string>; query?: string }): Promise<Raw> {
  const res = await fetch(`${gw.url}/mcp/${ws}${init.query ?? ''}`, {
    method: init.method ?? 'POST',
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.session ? { 'mcp-session-id': init.session } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: init.body } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) as ReturnType<Raw['json']> };
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

async function rawSession(ws: string, token: string): Promise<string> {
  const r = await raw(ws, { token, body: INIT });
  expect(r.status).toBe(200);
  const sid = r.headers.get('mcp-session-id');
  expect(sid).toMatch(/^[A-Za-z0-9_-]{32,}$/);
  await raw(ws, { token, session: sid!, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  return sid!;
}

beforeAll(async () => {
  gw = await startTestGateway({ supervision: { backoffBaseMs: 5000 } });
  [alice, bob, viewer, mallory] = await Promise.all([gw.token('alice'), gw.token('bob'), gw.token('vera'), gw.token('mallory')]);
  expect((await gw.api('POST', '/api/v1/workspaces', alice, { name: ONE, servers: [EVERYTHING], members: { bob: 'member', vera: 'viewer' }, rateLimits: UNLIMITED })).status).toBe(201);
  expect(
    (
      await gw.api('POST', '/api/v1/workspaces', alice, {
        name: MULTI,
        servers: [EVERYTHING, { name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } }, { name: 'probe', package: PROBE_PACKAGE }],
        rateLimits: UNLIMITED,
      })
    ).status,
  ).toBe(201);
  await gw.waitStatus(ONE, alice, ['ready']);
  await gw.waitStatus(MULTI, alice, ['ready']);
});

afterAll(async () => {
  await gw?.remove(ONE, alice).catch(() => undefined);
  await gw?.remove(MULTI, alice).catch(() => undefined);
  await gw?.close();
});

describe('one server: its own names', () => {
  it('lists and calls tools, prompts and resources through the SDK client', async () => {
    const c = await connect(ONE, bob);
    expect(c.getServerVersion()?.name).toContain('everything');
    const tools = (await c.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('echo');
    expect(tools.some((t) => t.includes('__'))).toBe(false);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'hello gateway' } }))).toContain('hello gateway');
    expect(text(await c.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } }))).toContain('42');
    const prompts = (await c.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toContain('simple-prompt');
    expect((await c.getPrompt({ name: 'simple-prompt' })).messages.length).toBeGreaterThan(0);
    const resources = (await c.listResources()).resources;
    expect(resources.length).toBeGreaterThan(0);
    const read = await c.readResource({ uri: resources[0]!.uri });
    expect(read.contents[0]!.uri).toBe(resources[0]!.uri);
    const templated = await c.readResource({ uri: 'demo://resource/dynamic/text/7' });
    expect(JSON.stringify(templated.contents)).toContain('7');
    await c.close();
  });

  it('answers roots/list for the server with the workspace root', async () => {
    const c = await connect(ONE, alice);
    expect(text(await c.callTool({ name: 'get-roots-list', arguments: {} }))).toContain('file:///workspace');
    await c.close();
  });

  it('routes progress to the request that asked for it, and cancellation upstream', async () => {
    const c = await connect(ONE, alice);
    const seen: number[] = [];
    const r = await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => seen.push(p.progress),
    });
    expect(text(r)).toMatch(/completed/i);
    expect(seen).toEqual([1, 2, 3, 4]);

    const abort = new AbortController();
    const started = Date.now();
    const slow = c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } }, undefined, {
      signal: abort.signal,
      onprogress: () => abort.abort(),
    });
    await expect(slow).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'still fine' } }))).toContain('still fine');
    await c.close();
  });

  it('sends a sampling request to the one session with a request in flight, and refuses an ambiguous one', async () => {
    const a = await connect(ONE, alice, { sampling: {} });
    const b = await connect(ONE, bob, { sampling: {} });
    const asked: string[] = [];
    for (const [client, who] of [[a, 'A'], [b, 'B']] as const) {
      client.setRequestHandler(CreateMessageRequestSchema, () => {
        asked.push(who);
        return { model: 'test', role: 'assistant', content: { type: 'text', text: `sampled by ${who}` } };
      });
    }
    expect(text(await a.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi' } }))).toContain('sampled by A');
    expect(asked).toEqual(['A']);

    // While B has a request in flight to the same server, the server's next sampling request is ambiguous.
    const busy = b.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 2 } });
    await new Promise((r) => setTimeout(r, 300));
    const refused = await a.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi' } }).catch((e: unknown) => e);
    expect(JSON.stringify(refused instanceof Error ? refused.message : refused)).toMatch(/ambiguous/);
    await busy;
    expect(asked).toEqual(['A']);
    await a.close();
    await b.close();
  });

  it('fans a resource update out only to subscribed sessions; one unsubscribing does not end the other subscription (reference-counted upstream)', async () => {
    const a = await connect(ONE, alice);
    const b = await connect(ONE, bob);
    const c = await connect(ONE, bob);
    const got = { a: 0, b: 0, c: 0 };
    a.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.a++);
    b.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.b++);
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void got.c++);
    const uri = (await a.listResources()).resources[0]!.uri;
    await a.subscribeResource({ uri });
    await b.subscribeResource({ uri });
    await a.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await waitFor('updates for both subscribers', () => (got.a > 0 && got.b > 0 ? true : undefined), 30_000, 100);
    expect(got.c).toBe(0);
    await b.unsubscribeResource({ uri });
    const before = got.a;
    await waitFor('a keeps receiving after b left', () => (got.a > before ? true : undefined), 30_000, 100);
    await a.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('lets a viewer list tools but not call them', async () => {
    const v = await connect(ONE, viewer);
    expect((await v.listTools()).tools.length).toBeGreaterThan(0);
    await expect(v.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/viewer/);
    await v.close();
  });
});

describe('several servers: one endpoint', () => {
  it('prefixes tool and prompt names with the server and routes calls and resources', async () => {
    const c = await connect(MULTI, alice);
    const tools = (await c.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['everything__echo', 'memory__read_graph', 'probe__echo']));
    expect(text(await c.callTool({ name: 'everything__echo', arguments: { message: 'one' } }))).toContain('one');
    expect(text(await c.callTool({ name: 'probe__echo', arguments: { message: 'two' } }))).toContain('two');
    expect(text(await c.callTool({ name: 'memory__read_graph', arguments: {} }))).toContain('entities');
    expect((await c.listPrompts()).prompts.map((p) => p.name)).toContain('everything__simple-prompt');
    expect((await c.getPrompt({ name: 'everything__simple-prompt' })).messages.length).toBeGreaterThan(0);
    const resources = (await c.listResources()).resources;
    expect((await c.readResource({ uri: resources[0]!.uri })).contents.length).toBeGreaterThan(0);
    await expect(c.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/Unknown tool/);
    await expect(c.callTool({ name: 'nosuch__echo', arguments: { message: 'x' } })).rejects.toThrow(/Unknown tool/);
    await c.close();
  });

  it('keeps 20 sessions x 50 interleaved calls apart: zero mismatched responses', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(MULTI, alice)));
    let mismatches = 0;
    let calls = 0;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let batch = 0; batch < 10; batch++) {
          await Promise.all(
            Array.from({ length: 5 }, async (_, k) => {
              const j = batch * 5 + k;
              const r =
                j % 2 === 0
                  ? text(await c.callTool({ name: 'everything__echo', arguments: { message: `s${i}-c${j}` } }))
                  : text(await c.callTool({ name: 'everything__get-sum', arguments: { a: i * 1000, b: j } }));
              calls++;
              const expected = j % 2 === 0 ? `s${i}-c${j}"` : String(i * 1000 + j);
              if (!r.includes(expected)) mismatches++;
            }),
          );
        }
      }),
    );
    expect(calls).toBe(1000);
    expect(mismatches).toBe(0);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('survives a server writing garbage to stdout', async () => {
    const c = await connect(MULTI, alice);
    expect(text(await c.callTool({ name: 'probe__garbage', arguments: {} }))).toContain('after garbage');
    expect(text(await c.callTool({ name: 'probe__echo', arguments: { message: 'clean' } }))).toContain('clean');
    const logs = await gw.api<{ line: string }[]>('GET', `/api/v1/workspaces/${MULTI}/logs?server=probe`, alice);
    expect(logs.body.some((l) => l.line.includes('dropped a line on stdout'))).toBe(true);
    await c.close();
  });

  it('fails only the tools of a server that is down, with a clear error', async () => {
    const c = await connect(MULTI, alice);
    await c.callTool({ name: 'probe__crash', arguments: {} });
    await waitFor('probe down', () => (gw.gateway.manager.connection(MULTI, 'probe') ? undefined : true), 10_000, 20);
    await expect(c.callTool({ name: 'probe__echo', arguments: { message: 'x' } })).rejects.toThrow(/server "probe" is not running/);
    expect(text(await c.callTool({ name: 'everything__echo', arguments: { message: 'unaffected' } }))).toContain('unaffected');
    expect((await c.listTools()).tools.map((t) => t.name)).toContain('memory__read_graph');
    await c.close();
    await gw.waitStatus(MULTI, alice, ['ready'], 60_000);
  });
});

describe('authentication on the MCP endpoint', () => {
  let key: Awaited<ReturnType<typeof loadOrCreateSigningKey>>;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({ sub: 'alice', iss: 'mcpx', aud: 'mcpx', exp: now() + 600 });
  const sign = (c: Record<string, unknown>) => new SignJWT(c).setProtectedHeader({ alg: 'ES256' }).sign(key.privateKey);
  beforeAll(async () => {
    key = await loadOrCreateSigningKey(gw.dataDir);
  });

  it('answers 401 with the resource metadata challenge, and serves the metadata', async () => {
    const r = await raw(ONE, { body: INIT });
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate')!;
    expect(challenge).toBe(`Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp/${ONE}"`);
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp/${ONE}`)).json()) as { resource: string; bearer_methods_supported: string[] };
    expect(meta.resource).toBe(`${gw.url}/mcp/${ONE}`);
    expect(meta.bearer_methods_supported).toEqual(['header']);
  });

  it('refuses every bad token with 401', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const foreign = (await generateKeyPair('ES256')).privateKey;
    const bad: [string, string][] = [
      ['malformed', 'abc.def'],
      ['expired', await sign({ ...claims(), exp: now() - 120 })],
      ['not yet valid', await sign({ ...claims(), nbf: now() + 600 })],
      ['wrong signature', await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(foreign)],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
      ['wrong issuer', await sign({ ...claims(), iss: 'evil' })],
      ['wrong audience', await sign({ ...claims(), aud: 'other' })],
    ];
    for (const [what, token] of bad) {
      const r = await raw(ONE, { token, body: INIT });
      expect([what, r.status]).toEqual([what, 401]);
      expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    expect((await raw(ONE, { token: await sign(claims()), body: INIT })).status).toBe(200);
  });

  it('ignores a token in the query string', async () => {
    expect((await raw(ONE, { query: `?access_token=${alice}`, body: INIT })).status).toBe(401);
  });

  it('hides a workspace from a non-member and from a member of another workspace with 404', async () => {
    expect((await raw(ONE, { token: mallory, body: INIT })).status).toBe(404);
    expect((await raw(MULTI, { token: bob, body: INIT })).status).toBe(404);
    expect((await raw('it-nowhere', { token: alice, body: INIT })).status).toBe(404);
  });

  it('binds the session to its user: replayed by another user it is 404', async () => {
    const sid = await rawSession(ONE, alice);
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect((await raw(ONE, { token: alice, session: sid, body: list })).status).toBe(200);
    expect((await raw(ONE, { token: bob, session: sid, body: list })).status).toBe(404);
  });

  it('refuses a foreign Origin with 403 and accepts its own', async () => {
    expect((await raw(ONE, { token: alice, body: INIT, headers: { origin: 'https://evil.example' } })).status).toBe(403);
    expect((await raw(ONE, { token: alice, body: INIT, headers: { origin: new URL(gw.url).origin } })).status).toBe(200);
  });
});

describe('the transport, robustly', () => {
  const call = (id: number, method = 'tools/list', params?: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

  it('checks sessions: missing 400, unknown 404, terminated 404', async () => {
    expect((await raw(ONE, { token: alice, body: call(1) })).status).toBe(400);
    expect((await raw(ONE, { token: alice, session: 'x'.repeat(32), body: call(1) })).status).toBe(404);
    const sid = await rawSession(ONE, alice);
    expect((await raw(ONE, { method: 'DELETE', token: alice, session: sid })).status).toBe(200);
    expect((await raw(ONE, { token: alice, session: sid, body: call(2) })).status).toBe(404);
  });

  it('checks MCP-Protocol-Version and Accept, and answers notifications with 202', async () => {
    const sid = await rawSession(ONE, alice);
    expect((await raw(ONE, { token: alice, session: sid, body: call(1), headers: { 'mcp-protocol-version': '1999-01-01' } })).status).toBe(400);
    expect((await raw(ONE, { token: alice, session: sid, body: call(1), headers: { 'mcp-protocol-version': '2025-06-18' } })).status).toBe(200);
    expect((await raw(ONE, { token: alice, session: sid, body: call(1), headers: { accept: 'application/json' } })).status).toBe(406);
    const note = await raw(ONE, { token: alice, session: sid, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }) });
    expect(note.status).toBe(202);
    expect(note.body).toBe('');
  });

  it('gives a clear JSON-RPC error for malformed input and never crashes', async () => {
    const sid = await rawSession(MULTI, alice);
    const cases: [string, string | Buffer, number, number][] = [
      ['malformed JSON', '{"jsonrpc":"2.0",', 400, -32700],
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, -32700],
      ['a batch', `[${call(1)},${call(2)}]`, 400, -32600],
      ['a wrong shape', JSON.stringify({ jsonrpc: '1.0', id: 1, method: 'x' }), 400, -32600],
      ['params not an object', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: [1] }), 400, -32600],
    ];
    for (const [what, body, status, code] of cases) {
      const r = await raw(MULTI, { token: alice, session: sid, body });
      expect([what, r.status, r.json().error?.code]).toEqual([what, status, code]);
      expect(r.json().error?.message.length).toBeGreaterThan(5);
    }
    const unknown = await raw(MULTI, { token: alice, session: sid, body: call(9, 'no/such/method') });
    expect(unknown.json()).toMatchObject({ id: 9, error: { code: -32601 } });
    const big = await raw(MULTI, { token: alice, session: sid, body: call(3, 'tools/call', { name: 'everything__echo', arguments: { message: 'x'.repeat(5 * 1024 * 1024) } }) });
    expect(big.status).toBe(413);
    // Still serving after all of that.
    expect((await raw(MULTI, { token: alice, session: sid, body: call(4) })).json().result?.tools).toBeDefined();
  });
});
