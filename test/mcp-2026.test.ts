// Protocol revision 2026-07-28 on /mcp/{workspace}, against real servers in containers: the SDK 2.x client pinned
// to the stateless era (and in its 2025 mode on the same endpoint), multi round-trip sampling bridged to a 2025
// server, change notifications on subscriptions/listen streams, and the revision's validation ladder over raw HTTP.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ClientOptions } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO, startTestGateway, waitFor } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const SINGLE = 'it-2026-single';
const MULTI = 'it-2026-multi';
const LISTEN = 'it-2026-listen';
const LISTEN_MULTI = 'it-2026-listen-multi';
const V = '2026-07-28';
const everything = { name: 'everything', package: '@modelcontextprotocol/server-everything', args: ['stdio'] };
const memory = { name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } };
// Emits change notifications on demand and counts the subscribe/unsubscribe requests it receives.
const NOTIFY_PACKAGE = `file:${join(REPO, 'test/fixtures/notify-server')}`;
const notify = (name: string, id = name) => ({ name, package: NOTIFY_PACKAGE, env: { NOTIFY_NAME: id } as Record<string, string> });
const quiet = (server: ReturnType<typeof notify>) => ({ ...server, env: { ...server.env, NOTIFY_LOGGING: 'off' } });

let gw: TestGateway;
let owner: string;
const clients: Client[] = [];

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
  for (const spec of [
    { name: SINGLE, servers: [everything] },
    { name: MULTI, servers: [everything, memory] },
    { name: LISTEN, servers: [notify('notify', 'one')], resourceUris: { deny: ['notify://one/secret'] }, members: { carol: 'member', dave: 'member' } },
    // Servers without the logging capability: logging is not advertised there.
    { name: LISTEN_MULTI, servers: [quiet(notify('alpha')), quiet(notify('beta'))] },
  ]) {
    const created = await gw.api('POST', '/api/v1/workspaces', owner, spec);
    if (created.status !== 201) throw new Error(`create ${spec.name}: ${created.status} ${JSON.stringify(created.body)}`);
  }
  await Promise.all([SINGLE, MULTI, LISTEN, LISTEN_MULTI].map((ws) => gw.waitStatus(ws, owner, ['ready'])));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  for (const ws of [SINGLE, MULTI, LISTEN, LISTEN_MULTI]) await gw?.remove(ws, owner).catch(() => undefined);
  await gw?.close();
});

async function connect(ws: string, options: ClientOptions = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'it-2026', version: '1.0.0' }, options);
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${ws}`), { requestInit: { headers: { authorization: `Bearer ${owner}` } } });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

const pinned = (extra: ClientOptions = {}): ClientOptions => ({ versionNegotiation: { mode: { pin: V } }, ...extra });
const text = (r: { content?: unknown }) => JSON.stringify(r.content);

// ---- raw HTTP ---------------------------------------------------------------------------------------------------

interface Raw {
  status: number;
  type: string;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
  text: string;
}

const envelope = (version = V, caps: Record<string, unknown> = {}) => ({
  'io.modelcontextprotocol/protocolVersion': version,
  'io.modelcontextprotocol/clientCapabilities': caps,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-fetch', version: '1.0.0' },
});

/** The standard headers a 2026 client sends for `body`, overridable one by one (undefined removes one). */
function modernHeaders(body: { method: string; params?: Record<string, unknown> }, override: Record<string, string | undefined> = {}): Record<string, string> {
  const name = body.params?.name ?? body.params?.uri;
  const h: Record<string, string | undefined> = {
    'mcp-protocol-version': V,
    'mcp-method': body.method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...override,
  };
  return Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined));
}

async function post(ws: string, body: unknown, headers: Record<string, string>, method = 'POST', token = owner): Promise<Raw> {
  const res = await fetch(`${gw.url}/mcp/${ws}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const type = res.headers.get('content-type') ?? '';
  const t = await res.text();
  let parsed: Raw['body'] = {};
  if (type.startsWith('application/json')) parsed = JSON.parse(t) as Raw['body'];
  if (type.startsWith('text/event-stream')) {
    const events = sseMessages(t);
    parsed = events.at(-1) ?? {};
  }
  return { status: res.status, type, body: parsed, text: t };
}

function sseMessages(t: string): Record<string, unknown>[] {
  return t
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

let nextId = 1;
const request = (method: string, params: Record<string, unknown> = {}, version = V, caps: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id: nextId++,
  method,
  params: { ...params, _meta: { ...envelope(version, caps), ...(params._meta as Record<string, unknown> | undefined) } },
});

// ---- raw subscriptions/listen streams ---------------------------------------------------------------------------

type Message = Record<string, unknown> & { id?: unknown; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };

interface ListenStream {
  id: number;
  status: number;
  type: string;
  /** Every message received so far (an error answer is the only one). */
  messages: Message[];
  next(what: string, match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  close(): void;
  /** Settles once the gateway ended the response (or the test closed it). */
  done: Promise<void>;
}

/** Opens a subscriptions/listen stream with raw fetch and keeps reading it in the background. */
async function openListen(ws: string, notifications: Record<string, unknown>, token = owner): Promise<ListenStream> {
  const body = request('subscriptions/listen', { notifications });
  const ctl = new AbortController();
  const res = await fetch(`${gw.url}/mcp/${ws}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...modernHeaders(body) },
    body: JSON.stringify(body),
    signal: ctl.signal,
  });
  const type = res.headers.get('content-type') ?? '';
  const messages: Message[] = [];
  const done = (async () => {
    if (!type.startsWith('text/event-stream')) {
      messages.push(JSON.parse(await res.text()) as Message);
      return;
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
        if (chunk.done) return;
        buf += decoder.decode(chunk.value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          for (const line of buf.slice(0, i).split('\n')) if (line.startsWith('data: ')) messages.push(JSON.parse(line.slice(6)) as Message);
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      // closed by the test
    }
  })();
  return {
    id: body.id,
    status: res.status,
    type,
    messages,
    next: (what, match, timeoutMs = 30_000) => waitFor(what, () => messages.find(match), timeoutMs, 20),
    close: () => ctl.abort(),
    done,
  };
}

const isAck = (m: Message) => m.method === 'notifications/subscriptions/acknowledged';
const updateOf = (uri: string) => (m: Message) => m.method === 'notifications/resources/updated' && m.params?.uri === uri;

/** Calls a tool with a raw 2026 request (no SDK state in the way). */
async function callRaw(ws: string, name: string, args: Record<string, unknown>, token = owner): Promise<Raw> {
  const body = request('tools/call', { name, arguments: args });
  const r = await post(ws, body, modernHeaders(body), 'POST', token);
  if (r.body.error || r.body.result?.isError) throw new Error(`${name}: ${JSON.stringify(r.body)}`);
  return r;
}

/** The gateway's count of open listen streams, from /metrics. */
async function listenStreams(): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = /^mcpx_listen_streams (\d+)$/m.exec(text);
  if (!m) throw new Error('mcpx_listen_streams is not in /metrics');
  return Number(m[1]);
}

interface UpstreamCounts {
  counts: Record<string, { subscribe: number; unsubscribe: number }>;
  active: string[];
  /** Every level logging/setLevel set, in order. */
  levels: string[];
  /** Tool name -> calls received. */
  calls: Record<string, number>;
}

/** What the notify server itself received: subscribe/unsubscribe requests per URI, and its subscriptions now. */
async function upstream(ws: string, tool = 'counts'): Promise<UpstreamCounts> {
  const r = await callRaw(ws, tool, {});
  return JSON.parse((r.body.result?.content as { text: string }[])[0]!.text) as UpstreamCounts;
}

// ---- the SDK client, 2026-07-28 -------------------------------------------------------------------------------

describe('the SDK 2.x client pinned to 2026-07-28, one server', () => {
  it('discovers the gateway with server/discover and needs no session', async () => {
    const { client, transport } = await connect(SINGLE, pinned());
    expect(client.getNegotiatedProtocolVersion()).toBe(V);
    expect(transport.sessionId).toBeUndefined();
    const discovered = client.getDiscoverResult();
    expect(discovered?.supportedVersions).toEqual(expect.arrayContaining([V, '2025-11-25']));
    expect(client.getServerVersion()?.name).toBe('mcp-servers/everything');
    const caps = client.getServerCapabilities();
    expect(caps?.tools).toBeDefined();
    expect(caps?.prompts).toBeDefined();
    expect(caps?.resources).toBeDefined();
    // The server declares change notifications, and the gateway delivers them on subscriptions/listen streams.
    expect(caps?.tools?.listChanged).toBe(true);
    expect(caps?.resources?.subscribe).toBe(true);
    // The server declares logging, and the gateway delivers its log messages to requests that carry a logLevel.
    expect(caps?.logging).toEqual({});
  });

  it('lists tools and calls echo', async () => {
    const { client } = await connect(SINGLE, pinned());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    const r = await client.callTool({ name: 'echo', arguments: { message: 'hello from 2026' } });
    expect(text(r)).toContain('hello from 2026');
  });

  it('lists prompts and gets simple-prompt', async () => {
    const { client } = await connect(SINGLE, pinned());
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('simple-prompt');
    const p = await client.getPrompt({ name: 'simple-prompt' });
    expect(p.messages.length).toBeGreaterThan(0);
    expect(JSON.stringify(p.messages[0]!.content)).toContain('simple prompt');
  });

  it('lists resources and reads one', async () => {
    const { client } = await connect(SINGLE, pinned());
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const uri = resources[0]!.uri;
    const read = await client.readResource({ uri });
    expect(read.contents[0]!.uri).toBe(uri);
  });

  it('answers a 2025 server’s sampling request through an input_required round trip', async () => {
    const { client } = await connect(SINGLE, pinned({ capabilities: { sampling: {} } }));
    const asked: string[] = [];
    client.setRequestHandler('sampling/createMessage', (req) => {
      asked.push(JSON.stringify(req.params.messages));
      return Promise.resolve({ role: 'assistant' as const, model: 'it-model-7', content: { type: 'text' as const, text: 'sampled by the test' } });
    });
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'what is 2+2', maxTokens: 10 } });
    expect(asked.join()).toContain('what is 2+2');
    expect(text(r)).toContain('it-model-7');
    expect(text(r)).toContain('sampled by the test');
  });
});

describe('the SDK 2.x client on a two-server workspace', () => {
  it('sees prefixed names and calls both servers', async () => {
    const { client } = await connect(MULTI, pinned());
    expect(client.getServerVersion()?.name).toBe(`mcpx/${MULTI}`);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'memory__read_graph']));
    const echoed = await client.callTool({ name: 'everything__echo', arguments: { message: 'two servers' } });
    expect(text(echoed)).toContain('two servers');
    const graph = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(graph.isError).not.toBe(true);
    expect(text(graph)).toContain('entities');
  });
});

describe('both eras on the same endpoint', () => {
  it('serves the SDK 2.x client in its default 2025 mode with a session', async () => {
    const { client, transport } = await connect(SINGLE);
    expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    expect(transport.sessionId).toEqual(expect.any(String));
    const r = await client.callTool({ name: 'echo', arguments: { message: 'still 2025' } });
    expect(text(r)).toContain('still 2025');
  });

  it('lets an auto-negotiating client pick 2026-07-28 from server/discover', async () => {
    const { client, transport } = await connect(MULTI, { versionNegotiation: { mode: 'auto' } });
    expect(client.getNegotiatedProtocolVersion()).toBe(V);
    expect(transport.sessionId).toBeUndefined();
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('memory__read_graph');
  });
});

// ---- raw HTTP: what a 2026 request looks like, and the ladder ---------------------------------------------------

describe('raw 2026-07-28 requests', () => {
  it('shapes results for the revision: resultType, cache fields, serverInfo', async () => {
    const body = request('tools/list');
    const r = await post(SINGLE, body, modernHeaders(body));
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(body.id);
    expect(r.body.result).toMatchObject({ resultType: 'complete', ttlMs: 0, cacheScope: 'private' });
    expect(r.body.result?._meta).toMatchObject({ 'io.modelcontextprotocol/serverInfo': { name: 'mcp-servers/everything' } });
  });

  it('streams progress on the request’s own SSE response', async () => {
    const body = request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 }, _meta: { progressToken: 'tok-1' } });
    const r = await post(SINGLE, body, modernHeaders(body));
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/event-stream');
    const messages = sseMessages(r.text);
    expect(messages.filter((m) => m.method === 'notifications/progress').map((m) => (m.params as { progressToken: unknown }).progressToken)).toContain('tok-1');
    expect(messages.at(-1)).toMatchObject({ id: body.id, result: { resultType: 'complete' } });
  });

  it('bridges sampling as input_required, resumes on retry, and refuses a forged requestState', async () => {
    const caps = { sampling: {} };
    const first = request('tools/call', { name: 'trigger-sampling-request', arguments: { prompt: 'raw', maxTokens: 5 } }, V, caps);
    const r1 = await post(SINGLE, first, modernHeaders(first));
    expect(r1.status).toBe(200);
    expect(r1.body.result?.resultType).toBe('input_required');
    const inputRequests = r1.body.result?.inputRequests as Record<string, { method: string; params: unknown }>;
    const [key, ask] = Object.entries(inputRequests)[0]!;
    expect(ask.method).toBe('sampling/createMessage');
    const requestState = r1.body.result?.requestState as string;
    expect(requestState).toEqual(expect.any(String));

    const forged = request('tools/call', { name: 'trigger-sampling-request', arguments: { prompt: 'raw', maxTokens: 5 }, requestState: `${requestState}x`, inputResponses: {} }, V, caps);
    const rf = await post(SINGLE, forged, modernHeaders(forged));
    expect(rf.body.error?.code).toBe(-32602);

    const retry = request(
      'tools/call',
      {
        name: 'trigger-sampling-request',
        arguments: { prompt: 'raw', maxTokens: 5 },
        requestState,
        inputResponses: { [key]: { role: 'assistant', model: 'raw-model', content: { type: 'text', text: 'raw answer' } } },
      },
      V,
      caps,
    );
    const r2 = await post(SINGLE, retry, modernHeaders(retry));
    expect(r2.status).toBe(200);
    expect(r2.body.id).toBe(retry.id);
    expect(r2.body.result?.resultType).toBe('complete');
    expect(JSON.stringify(r2.body.result?.content)).toContain('raw answer');
  });

  it('answers 400 / -32021 when the work needs a capability the client did not declare', async () => {
    const body = request('tools/call', { name: 'trigger-sampling-request', arguments: { prompt: 'no sampling' } });
    const r = await post(SINGLE, body, modernHeaders(body));
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe(-32021);
    expect(r.body.error?.data).toEqual({ requiredCapabilities: { sampling: {} } });
  });

  it('treats closing the response stream as cancellation of the upstream request', async () => {
    const body = request('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 }, _meta: { progressToken: 'cancel-me' } });
    const ctl = new AbortController();
    const res = await fetch(`${gw.url}/mcp/${SINGLE}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...modernHeaders(body) },
      body: JSON.stringify(body),
      signal: ctl.signal,
    });
    const reader = res.body!.getReader();
    let got = '';
    while (!got.includes('notifications/progress')) got += new TextDecoder().decode((await reader.read()).value as Uint8Array | undefined);
    ctl.abort();
    // The router routes a server's sampling request only when exactly one client has a request in flight to that
    // server: had the long call not been cancelled upstream, this one would be refused as ambiguous for 30 s.
    const { client } = await connect(SINGLE, pinned({ capabilities: { sampling: {} } }));
    client.setRequestHandler('sampling/createMessage', () => Promise.resolve({ role: 'assistant' as const, model: 'after-cancel', content: { type: 'text' as const, text: 'ok' } }));
    await new Promise((r) => setTimeout(r, 200));
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'after cancel' } });
    expect(text(r)).toContain('after-cancel');
  });

  it('applies the caller’s role: a viewer lists tools but may not call them', async () => {
    expect((await gw.api('PUT', `/api/v1/workspaces/${SINGLE}/members/bob`, owner, { role: 'viewer' })).status).toBeLessThan(300);
    const bob = await gw.token('bob');
    const list = request('tools/list');
    const listed = await post(SINGLE, list, modernHeaders(list), 'POST', bob);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body.result?.tools)).toContain('echo');
    const call = request('tools/call', { name: 'echo', arguments: { message: 'x' } });
    const called = await post(SINGLE, call, modernHeaders(call), 'POST', bob);
    expect(called.body.error?.message).toMatch(/viewer/);
  });

  it('records 2026 requests in the audit trail', async () => {
    const good = request('tools/call', { name: 'everything__echo', arguments: { message: 'audited' } });
    expect((await post(MULTI, good, modernHeaders(good))).status).toBe(200);
    const discover = request('server/discover');
    expect((await post(MULTI, discover, modernHeaders(discover))).status).toBe(200);
    type Entry = { method?: string; actor?: string; target?: string; server?: string; outcome?: string; argsHash?: string };
    const trail = (await gw.api<Entry[]>('GET', `/api/v1/audit?workspace=${MULTI}&kind=mcp`, owner)).body;
    expect(trail).toContainEqual(expect.objectContaining({ method: 'tools/call', actor: 'alice', server: 'everything', outcome: 'ok', argsHash: expect.any(String) as string }));
    expect(trail.filter((e) => e.method === 'server/discover').length).toBeGreaterThan(0);
  });

  it('answers a missing resource with -32602 and the URI', async () => {
    const body = request('resources/read', { uri: 'demo://nowhere/at-all' });
    const r = await post(MULTI, body, modernHeaders(body));
    expect(r.status).toBe(200);
    expect(r.body.error).toMatchObject({ code: -32602, data: { uri: 'demo://nowhere/at-all' } });
  });

  it('ends a listen stream gracefully when nothing it asked for can be delivered', async () => {
    const stream = await openListen(SINGLE, { toolsListChanged: false, resourceSubscriptions: [] });
    await stream.done;
    expect(stream.type).toContain('text/event-stream');
    expect(stream.messages).toEqual([
      { jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': stream.id }, notifications: {} } },
      { jsonrpc: '2.0', id: stream.id, result: { resultType: 'complete', _meta: { 'io.modelcontextprotocol/subscriptionId': stream.id, 'io.modelcontextprotocol/serverInfo': expect.objectContaining({ name: 'mcp-servers/everything' }) as unknown } } },
    ]);
  });
});

describe('the 2026-07-28 validation ladder', () => {
  it('refuses a request whose _meta lacks the protocol version: 400 / -32602', async () => {
    const body = { jsonrpc: '2.0', id: 'no-version', method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/clientCapabilities': {} } } };
    const r = await post(SINGLE, body, modernHeaders(body));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ id: 'no-version', error: { code: -32602 } });
    expect(r.body.error?.message).toContain('io.modelcontextprotocol/protocolVersion');
  });

  it('refuses a request whose _meta lacks clientCapabilities: 400 / -32602', async () => {
    const body = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': V } } };
    const r = await post(SINGLE, body, modernHeaders(body));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: -32602, data: { envelope: { key: 'io.modelcontextprotocol/clientCapabilities', problem: 'missing' } } });
  });

  it('refuses an Mcp-Method header that differs from the body: 400 / -32020', async () => {
    const body = request('tools/list');
    const r = await post(SINGLE, body, modernHeaders(body, { 'mcp-method': 'tools/call' }));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ id: body.id, error: { code: -32020 } });
  });

  it('refuses an Mcp-Name header that differs from params.name: 400 / -32020', async () => {
    const body = request('tools/call', { name: 'echo', arguments: { message: 'x' } });
    const r = await post(SINGLE, body, modernHeaders(body, { 'mcp-name': 'get-env' }));
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe(-32020);
    expect(r.body.error?.data).toMatchObject({ mismatch: { header: 'get-env' } });
  });

  it('accepts a Base64-encoded Mcp-Name that decodes to params.name', async () => {
    const body = request('tools/call', { name: 'echo', arguments: { message: 'b64' } });
    const r = await post(SINGLE, body, modernHeaders(body, { 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }));
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body.result?.content)).toContain('b64');
  });

  it('refuses a request without Mcp-Name or without MCP-Protocol-Version: 400 / -32020', async () => {
    const body = request('tools/call', { name: 'echo', arguments: { message: 'x' } });
    const noName = await post(SINGLE, body, modernHeaders(body, { 'mcp-name': undefined }));
    expect(noName.status).toBe(400);
    expect(noName.body.error?.code).toBe(-32020);
    const noVersion = await post(SINGLE, body, modernHeaders(body, { 'mcp-protocol-version': undefined }));
    expect(noVersion.status).toBe(400);
    expect(noVersion.body.error?.code).toBe(-32020);
  });

  it('refuses a header version that differs from the body’s: 400 / -32020', async () => {
    const body = request('tools/list', {}, '2026-07-28');
    const r = await post(SINGLE, body, modernHeaders(body, { 'mcp-protocol-version': '2027-01-01' }));
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe(-32020);
  });

  it('refuses an unsupported version with the supported list: 400 / -32022', async () => {
    const body = request('tools/list', {}, '2099-01-01');
    const r = await post(SINGLE, body, modernHeaders(body, { 'mcp-protocol-version': '2099-01-01' }));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ id: body.id, error: { code: -32022, data: { supported: [V], requested: '2099-01-01' } } });
  });

  it('answers methods the revision removed with 404 / -32601', async () => {
    for (const method of ['ping', 'logging/setLevel', 'resources/subscribe', 'initialize']) {
      const body = request(method, method === 'logging/setLevel' ? { level: 'info' } : {});
      const r = await post(SINGLE, body, modernHeaders(body));
      expect([method, r.status]).toEqual([method, 404]);
      expect(r.body.error?.code).toBe(-32601);
    }
  });

  it('answers GET with a 2026 version 405, and accepts a notification with 202', async () => {
    const get = await post(SINGLE, undefined, { 'mcp-protocol-version': V }, 'GET');
    expect(get.status).toBe(405);
    const note = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } };
    const n = await post(SINGLE, note, { 'mcp-protocol-version': V, 'mcp-method': 'notifications/cancelled' });
    expect(n.status).toBe(202);
  });

  it('still answers a 2025 request without a session the 2025 way', async () => {
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const r = await post(SINGLE, body, {});
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toContain('Mcp-Session-Id');
  });
});

// ---- log messages: a request's logLevel (the server speaks 2025) ---------------------------------------------------

const LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
type LogMessage = { level: string; logger?: string; data: unknown };
const logsOf = (messages: Record<string, unknown>[], tag: string) =>
  messages.filter((m) => m.method === 'notifications/message' && String((m.params as LogMessage).data).endsWith(tag)).map((m) => (m.params as LogMessage).level);

/** A raw 2026 tools/call of the notify server's `log` tool; `logLevel` undefined sends none. */
async function logCall(tag: string, levels: string[], logLevel: string | undefined, waitMs = 0): Promise<{ raw: Raw; messages: Record<string, unknown>[] }> {
  const body = request('tools/call', { name: 'log', arguments: { levels, tag, waitMs }, ...(logLevel ? { _meta: { [LOG_LEVEL]: logLevel } } : {}) });
  const raw = await post(LISTEN, body, modernHeaders(body));
  expect(raw.status).toBe(200);
  expect(raw.body).toMatchObject({ id: body.id, result: { resultType: 'complete' } });
  return { raw, messages: raw.type.startsWith('text/event-stream') ? sseMessages(raw.text) : [raw.body] };
}

const ALL_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

describe('log messages for 2026-07-28 requests (io.modelcontextprotocol/logLevel)', () => {
  it('delivers to the SDK 2.x client the messages at or above the level it asked for, on that request, and none without a level', async () => {
    const { client } = await connect(LISTEN, pinned());
    expect(client.getServerCapabilities()?.logging).toEqual({});
    const got: LogMessage[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      got.push(n.params);
    });
    const r = await client.callTool({ name: 'log', arguments: { levels: ALL_LEVELS, tag: 'sdk-1' }, _meta: { [LOG_LEVEL]: 'warning' } });
    expect(text(r)).toContain('logged sdk-1');
    expect(got.filter((m) => String(m.data).endsWith('sdk-1')).map((m) => m.level)).toEqual(['warning', 'error', 'critical', 'alert', 'emergency']);
    expect(got.every((m) => m.logger === 'fixture')).toBe(true);
    await client.callTool({ name: 'log', arguments: { levels: ALL_LEVELS, tag: 'sdk-2' } });
    expect(got.filter((m) => String(m.data).endsWith('sdk-2'))).toEqual([]);
  });

  it('streams them on the request’s own SSE response before its result; a request without a level gets plain JSON', async () => {
    const { raw, messages } = await logCall('raw-1', ['debug', 'info', 'error'], 'info');
    expect(raw.type).toContain('text/event-stream');
    expect(messages.map((m) => m.method ?? 'result')).toEqual(['notifications/message', 'notifications/message', 'result']);
    expect(logsOf(messages, 'raw-1')).toEqual(['info', 'error']);
    const none = await logCall('raw-2', ['debug', 'emergency'], undefined);
    expect(none.raw.type).toContain('application/json');
    expect(logsOf(none.messages, 'raw-2')).toEqual([]);
  });

  it('gives no request a message while another request is in flight to the same server (a 2025 server names none)', async () => {
    const slow = logCall('amb-slow', [], 'debug', 2_000);
    await new Promise((r) => setTimeout(r, 500));
    const during = await logCall('amb-1', ['error'], 'debug');
    const { messages: slowMessages } = await slow;
    expect(logsOf(during.messages, 'amb-1')).toEqual([]);
    expect(logsOf(slowMessages, 'amb-1')).toEqual([]);
    // Alone again, the same request gets it.
    expect(logsOf((await logCall('amb-2', ['error'], 'debug')).messages, 'amb-2')).toEqual(['error']);
  });

  it('keeps a 2025 session’s log messages at its own level while the server is raised for a 2026 request, then restores it', async () => {
    const { client } = await connect(LISTEN);
    expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    const got: LogMessage[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      got.push(n.params);
    });
    await client.setLoggingLevel('error');
    // The 2025 session's own call: its server filters at the level the session set.
    await client.callTool({ name: 'log', arguments: { levels: ['info', 'error'], tag: 'old-1' } });
    await waitFor('the 2025 session to get its error message', () => (got.some((m) => m.data === 'error old-1') ? true : undefined), 10_000);

    const before = (await upstream(LISTEN)).levels.length;
    const modern = await logCall('mixed', ['debug', 'info', 'error'], 'debug');
    expect(logsOf(modern.messages, 'mixed')).toEqual(['debug', 'info', 'error']);
    await waitFor('the 2025 session to get the error message', () => (got.some((m) => m.data === 'error mixed') ? true : undefined), 10_000);
    // Raised for the 2026 request, then back to the 2025 session's level after the linger (1 s).
    const levels = await waitFor(
      'the level to be restored',
      async () => {
        const l = (await upstream(LISTEN)).levels.slice(before);
        return l.at(-1) === 'error' ? l : undefined;
      },
      10_000,
      200,
    );
    expect(levels).toEqual(['debug', 'error']);
    // What the server sent at debug and info for the 2026 request never reached the 2025 session.
    expect(got.filter((m) => String(m.data).endsWith('mixed')).map((m) => m.level)).toEqual(['error']);
    expect(got.filter((m) => String(m.data).endsWith('old-1')).map((m) => m.level)).toEqual(['error']);
  });

  it('does not advertise logging where no server declares it', async () => {
    const body = request('server/discover');
    const r = await post(LISTEN_MULTI, body, modernHeaders(body));
    expect(r.status).toBe(200);
    expect(r.body.result?.capabilities).toHaveProperty('tools');
    expect(r.body.result?.capabilities).not.toHaveProperty('logging');
  });
});

// ---- Mcp-Param-* headers (x-mcp-header) --------------------------------------------------------------------------

describe('Mcp-Param-* headers mirrored from tool parameters (x-mcp-header)', () => {
  /** A raw call of the notify server's `lookup` tool with the given Mcp-Param-* headers. */
  const lookup = async (args: Record<string, unknown>, params: Record<string, string>) => {
    const body = request('tools/call', { name: 'lookup', arguments: args });
    return post(LISTEN, body, modernHeaders(body, params));
  };
  const lookups = async () => (await upstream(LISTEN)).calls.lookup ?? 0;

  it('lets the SDK 2.x client call a tool with x-mcp-header parameters (it mirrors them itself)', async () => {
    const { client } = await connect(LISTEN, pinned());
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === 'lookup')?.inputSchema.properties?.region).toMatchObject({ 'x-mcp-header': 'Region' });
    const r = await client.callTool({ name: 'lookup', arguments: { region: 'eu-west-1', shard: 7, query: 'sdk' } });
    expect(text(r)).toContain('eu-west-1');
  });

  it('passes matching headers (plain, Base64 sentinel, an integer compared as a number) and ignores headers nobody declared', async () => {
    const before = await lookups();
    const ok = await lookup({ region: 'eu-west-1', shard: 7, query: 'a' }, { 'mcp-param-region': 'eu-west-1', 'mcp-param-shard': '7.0', 'mcp-param-unknown': 'x' });
    expect(ok.status).toBe(200);
    expect(JSON.stringify(ok.body.result?.content)).toContain('eu-west-1');
    const b64 = await lookup({ region: 'Zürich', query: 'b', options: { tenant: 'acme' } }, { 'mcp-param-region': `=?base64?${Buffer.from('Zürich').toString('base64')}?=`, 'mcp-param-tenant': 'acme' });
    expect(b64.status).toBe(200);
    expect(JSON.stringify(b64.body.result?.content)).toContain('Zürich');
    // A tool that declares nothing is not affected by such headers.
    expect((await post(LISTEN, request('tools/call', { name: 'counts', arguments: {} }), { ...modernHeaders(request('tools/call', { name: 'counts' })), 'mcp-param-region': 'x' })).status).toBe(200);
    expect(await lookups()).toBe(before + 2);
  });

  it('refuses a missing or different header with 400 / -32020 before the server sees the call', async () => {
    const before = await lookups();
    const missing = await lookup({ region: 'eu-west-1', query: 'c' }, {});
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: -32020, data: { mismatch: { header: 'Mcp-Param-Region' } } });
    const different = await lookup({ region: 'eu-west-1', query: 'd' }, { 'mcp-param-region': 'us-east-1' });
    expect(different.status).toBe(400);
    expect(different.body.error?.code).toBe(-32020);
    expect(different.body.error?.message).toContain('us-east-1');
    const nested = await lookup({ region: 'eu', query: 'e', options: { tenant: 'acme' } }, { 'mcp-param-region': 'eu', 'mcp-param-tenant': 'evil' });
    expect(nested.body.error).toMatchObject({ code: -32020, data: { mismatch: { header: 'Mcp-Param-Tenant' } } });
    const number = await lookup({ region: 'eu', shard: 7, query: 'f' }, { 'mcp-param-region': 'eu', 'mcp-param-shard': '8' });
    expect(number.body.error?.code).toBe(-32020);
    const unbacked = await lookup({ query: 'g' }, { 'mcp-param-region': 'eu' });
    expect(unbacked.status).toBe(400);
    expect(unbacked.body.error?.code).toBe(-32020);
    expect(await lookups()).toBe(before);
    // The audit trail has the refusals, with their reason.
    type Entry = { method?: string; decision?: string; outcome?: string; reason?: string };
    const trail = (await gw.api<Entry[]>('GET', `/api/v1/audit?workspace=${LISTEN}&kind=mcp`, owner)).body;
    expect(trail.filter((e) => e.method === 'tools/call' && e.outcome === 'error:-32020').length).toBeGreaterThanOrEqual(5);
  });

  it('checks the headers of an input_required retry too; a refused retry leaves the call parked for a correct one', async () => {
    const caps = { sampling: {} };
    const args = { region: 'eu-west-1', prompt: 'retry me' };
    const first = request('tools/call', { name: 'ask', arguments: args }, V, caps);
    const r1 = await post(LISTEN, first, modernHeaders(first, { 'mcp-param-region': 'eu-west-1' }));
    expect(r1.body.result?.resultType).toBe('input_required');
    const [key] = Object.keys(r1.body.result?.inputRequests as Record<string, unknown>);
    const retry = (region: string | undefined) => {
      const body = request(
        'tools/call',
        { name: 'ask', arguments: args, requestState: r1.body.result?.requestState, inputResponses: { [key!]: { role: 'assistant', model: 'retry-model', content: { type: 'text', text: 'answered' } } } },
        V,
        caps,
      );
      return post(LISTEN, body, modernHeaders(body, { 'mcp-param-region': region }));
    };
    const wrong = await retry('us-east-1');
    expect(wrong.status).toBe(400);
    expect(wrong.body.error?.code).toBe(-32020);
    const missing = await retry(undefined);
    expect(missing.body.error?.code).toBe(-32020);
    const right = await retry('eu-west-1');
    expect(right.status).toBe(200);
    expect(right.body.result?.resultType).toBe('complete');
    expect(JSON.stringify(right.body.result?.content)).toContain('asked in eu-west-1');
    expect(JSON.stringify(right.body.result?.content)).toContain('retry-model');
  });
});

// ---- change notifications: subscriptions/listen ------------------------------------------------------------------

describe('subscriptions/listen: change notifications for 2026-07-28 clients', () => {
  const ID = 'io.modelcontextprotocol/subscriptionId';

  it('advertises listChanged and subscribe in server/discover where the servers declare them', async () => {
    const body = request('server/discover');
    const r = await post(LISTEN, body, modernHeaders(body));
    expect(r.body.result?.capabilities).toMatchObject({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
    });
    // The notify server declares logging: its log messages reach requests that carry a logLevel.
    expect(r.body.result?.capabilities).toHaveProperty('logging', {});
  });

  it('(a) delivers updates of a watched URI to the SDK client, and nothing of an unwatched one', async () => {
    const { client } = await connect(LISTEN, pinned());
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.push(n.params.uri);
    });
    const sub = await client.listen({ resourceSubscriptions: ['notify://one/a'] });
    expect(sub.honoredFilter).toEqual({ resourceSubscriptions: ['notify://one/a'] });
    // The server notifies about every URI touched, subscribed or not: the gateway must filter.
    await client.callTool({ name: 'touch', arguments: { uri: 'notify://one/b' } });
    await client.callTool({ name: 'touch', arguments: { uri: 'notify://one/a' } });
    await waitFor('the update of notify://one/a', () => (updates.includes('notify://one/a') ? true : undefined), 30_000, 20);
    // b was touched first, on the same pipe and the same stream: had it been delivered, it would be here already.
    expect(updates).toEqual(['notify://one/a']);
    await sub.close();
  });

  it('(b) delivers a list change from any server of a multi-server workspace, only of the kinds asked for', async () => {
    const { client } = await connect(LISTEN_MULTI, pinned());
    const seen: string[] = [];
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      seen.push('tools');
    });
    client.setNotificationHandler('notifications/prompts/list_changed', () => {
      seen.push('prompts');
    });
    const sub = await client.listen({ toolsListChanged: true });
    expect(sub.honoredFilter).toEqual({ toolsListChanged: true });
    await client.callTool({ name: 'beta__change', arguments: { kind: 'prompts' } });
    await client.callTool({ name: 'beta__change', arguments: { kind: 'tools' } });
    await client.callTool({ name: 'alpha__change', arguments: { kind: 'tools' } });
    await waitFor('two tools list changes', () => (seen.length >= 2 ? true : undefined), 30_000, 20);
    // One workspace-level notification per change, whichever server it came from; prompts were not asked for.
    expect(seen).toEqual(['tools', 'tools']);
    await sub.close();
  });

  it('stamps the subscription id on the acknowledgement and on every notification of the stream', async () => {
    const stream = await openListen(LISTEN_MULTI, { promptsListChanged: true, resourceSubscriptions: ['notify://alpha/a', 'notify://beta/a'] });
    try {
      expect(await stream.next('the acknowledgement', isAck)).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/subscriptions/acknowledged',
        params: { _meta: { [ID]: stream.id }, notifications: { promptsListChanged: true, resourceSubscriptions: ['notify://alpha/a', 'notify://beta/a'] } },
      });
      expect(stream.messages[0]).toMatchObject({ method: 'notifications/subscriptions/acknowledged' });
      await callRaw(LISTEN_MULTI, 'beta__touch', { uri: 'notify://beta/a' });
      await callRaw(LISTEN_MULTI, 'alpha__change', { kind: 'prompts' });
      expect(await stream.next('beta/a updated', updateOf('notify://beta/a'))).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/resources/updated',
        params: { uri: 'notify://beta/a', _meta: { [ID]: stream.id } },
      });
      expect(await stream.next('prompts changed', (m) => m.method === 'notifications/prompts/list_changed')).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/prompts/list_changed',
        params: { _meta: { [ID]: stream.id } },
      });
    } finally {
      stream.close();
    }
  });

  it('redacts credential shapes in what it delivers, as on 2025 streams', async () => {
    const stream = await openListen(LISTEN, { toolsListChanged: true });
    try {
      await stream.next('the acknowledgement', isAck);
      await callRaw(LISTEN, 'change', { kind: 'tools', note: 'key AKIAABCDEFGHIJKLMNOP here' });
      const n = await stream.next('tools changed', (m) => m.method === 'notifications/tools/list_changed');
      expect(n.params?._meta).toEqual({ 'com.example/note': 'key [REDACTED:aws-access-key-id] here', [ID]: stream.id });
    } finally {
      stream.close();
    }
  });

  it('(c) shares one upstream subscription between a 2025 session and a 2026 listener watching the same URI', async () => {
    const C = 'notify://one/c';
    const { client: legacy } = await connect(LISTEN);
    expect(legacy.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    const legacyUpdates: string[] = [];
    legacy.setNotificationHandler('notifications/resources/updated', (n) => {
      legacyUpdates.push(n.params.uri);
    });
    await legacy.subscribeResource({ uri: C });
    const { client: modern } = await connect(LISTEN, pinned());
    const modernUpdates: string[] = [];
    modern.setNotificationHandler('notifications/resources/updated', (n) => {
      modernUpdates.push(n.params.uri);
    });
    const sub = await modern.listen({ resourceSubscriptions: [C] });
    expect(sub.honoredFilter).toEqual({ resourceSubscriptions: [C] });
    expect((await upstream(LISTEN)).counts[C]).toEqual({ subscribe: 1, unsubscribe: 0 });

    // The 2025 session's GET stream opens on its own time after connect: touch until both have an update.
    await waitFor(
      'the update on both eras',
      async () => {
        if (legacyUpdates.length > 0 && modernUpdates.length > 0) return true;
        await modern.callTool({ name: 'touch', arguments: { uri: C } });
        await new Promise((r) => setTimeout(r, 200));
        return undefined;
      },
      30_000,
      0,
    );

    // The 2025 session lets go: the listener still holds the subscription, so nothing reaches the server.
    await legacy.unsubscribeResource({ uri: C });
    expect((await upstream(LISTEN)).counts[C]).toEqual({ subscribe: 1, unsubscribe: 0 });
    const before = { legacy: legacyUpdates.length, modern: modernUpdates.length };
    await modern.callTool({ name: 'touch', arguments: { uri: C } });
    await waitFor('the listener’s next update', () => (modernUpdates.length > before.modern ? true : undefined), 30_000, 20);
    expect(legacyUpdates.length).toBe(before.legacy);

    // The last holder gone: exactly one unsubscribe, after exactly one subscribe.
    await sub.close();
    const after = await waitFor('the upstream unsubscribe', async () => {
      const u = await upstream(LISTEN);
      return u.counts[C]?.unsubscribe ? u : undefined;
    });
    expect(after.counts[C]).toEqual({ subscribe: 1, unsubscribe: 1 });
    expect(after.active).not.toContain(C);
  });

  it('(d) closing the listen stream releases its subscription upstream', async () => {
    const D = 'notify://one/d';
    const stream = await openListen(LISTEN, { resourceSubscriptions: [D] });
    expect((await stream.next('the acknowledgement', isAck)).params?.notifications).toEqual({ resourceSubscriptions: [D] });
    const held = await upstream(LISTEN);
    expect(held.counts[D]).toEqual({ subscribe: 1, unsubscribe: 0 });
    expect(await listenStreams()).toBe(1);
    expect(held.active).toContain(D);
    await callRaw(LISTEN, 'touch', { uri: D });
    await stream.next('the update of d', updateOf(D));

    stream.close();
    const released = await waitFor('the upstream unsubscribe', async () => {
      const u = await upstream(LISTEN);
      return u.counts[D]?.unsubscribe ? u : undefined;
    });
    expect(released.counts[D]).toEqual({ subscribe: 1, unsubscribe: 1 });
    expect(released.active).not.toContain(D);
    // Nothing of any listener of the earlier tests outlived its stream either (every one was closed).
    await waitFor('no open listen stream', async () => ((await listenStreams()) === 0 ? true : undefined), 30_000);
  });

  it('silently does not watch a URI the policy denies, nor announce kinds nobody asked for', async () => {
    const stream = await openListen(LISTEN, { toolsListChanged: false, promptsListChanged: true, resourceSubscriptions: ['notify://one/secret', 'notify://one/e'] });
    try {
      expect((await stream.next('the acknowledgement', isAck)).params?.notifications).toEqual({ promptsListChanged: true, resourceSubscriptions: ['notify://one/e'] });
      await callRaw(LISTEN, 'touch', { uri: 'notify://one/secret' });
      await callRaw(LISTEN, 'change', { kind: 'tools' });
      await callRaw(LISTEN, 'touch', { uri: 'notify://one/e' });
      await stream.next('the update of e', updateOf('notify://one/e'));
      // Delivered in order on one stream: the two earlier ones would be here had they been sent.
      expect(stream.messages.map((m) => m.method)).toEqual(['notifications/subscriptions/acknowledged', 'notifications/resources/updated']);
      const u = await upstream(LISTEN);
      expect(u.counts['notify://one/secret']).toBeUndefined();
      expect(u.active).toContain('notify://one/e');
    } finally {
      stream.close();
    }
  });

  it('bounds listen streams at 16 per user and workspace; a closed one frees its slot', async () => {
    const dave = await gw.token('dave');
    const streams: ListenStream[] = [];
    try {
      for (let i = 0; i < 16; i++) streams.push(await openListen(LISTEN, { toolsListChanged: true }, dave));
      for (const s of streams) await s.next('the acknowledgement', isAck);
      const refused = await openListen(LISTEN, { toolsListChanged: true }, dave);
      await refused.done;
      expect(refused.status).toBe(200);
      expect(refused.messages[0]).toMatchObject({ id: refused.id, error: { code: -32603, data: { limit: 16 } } });
      // Another user is not affected.
      const other = await openListen(LISTEN, { toolsListChanged: true });
      streams.push(other);
      await other.next('the acknowledgement', isAck);
      streams.shift()!.close();
      const again = await waitFor('a free slot', async () => {
        const s = await openListen(LISTEN, { toolsListChanged: true }, dave);
        await Promise.race([s.next('an answer', () => true), s.done]);
        if (s.messages.some(isAck)) return s;
        s.close();
        return undefined;
      });
      streams.push(again);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('ends a listener whose caller lost their role, before it delivers anything more', async () => {
    const carol = await gw.token('carol');
    const stream = await openListen(LISTEN, { toolsListChanged: true }, carol);
    await stream.next('the acknowledgement', isAck);
    expect((await gw.api('DELETE', `/api/v1/workspaces/${LISTEN}/members/carol`, owner)).status).toBeLessThan(300);
    await callRaw(LISTEN, 'change', { kind: 'tools' });
    await stream.done;
    expect(stream.messages.map((m) => m.method ?? 'result')).toEqual(['notifications/subscriptions/acknowledged', 'result']);
    expect(stream.messages[1]).toMatchObject({ id: stream.id, result: { resultType: 'complete', _meta: { [ID]: stream.id } } });
  });

  it('ends its listen streams gracefully when the workspace is deleted (runs last: it deletes one)', async () => {
    const stream = await openListen(LISTEN_MULTI, { toolsListChanged: true, resourceSubscriptions: ['notify://alpha/a'] });
    await stream.next('the acknowledgement', isAck);
    const opened = Date.now();
    await gw.remove(LISTEN_MULTI, owner);
    // At once, not at the next keep-alive (25 s after opening), where a gone role would also end it.
    const ended = await Promise.race([stream.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
    expect(ended).toBe(true);
    expect(Date.now() - opened).toBeLessThan(20_000);
    expect(stream.messages.at(-1)).toMatchObject({ id: stream.id, result: { resultType: 'complete', _meta: { [ID]: stream.id } } });
    await waitFor('no open listen stream', async () => ((await listenStreams()) === 0 ? true : undefined), 30_000);
  });
});
