// The 2026-07-28 rules without sockets: the admission ladder (cross-checked against the SDK's own classifier),
// result and error shapes, capability checks, and the MRTR exchange against a fake router.
import { classifyInboundRequest } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { Exchange, createInputBridge } from './input-bridge.js';
import type { JsonRpcResponse } from './json-rpc.js';
import {
  admitPost,
  decodeHeaderValue,
  inBandStatus,
  missingCapabilities,
  modernCapabilities,
  modernError,
  modernResult,
  paramDeclarations,
  paramHeaderIssue,
  subscriptionFilter,
  upstreamParams,
} from './modern-era.js';
import type { PostHeaders } from './modern-era.js';
import type { ClientSink, Session } from './workspace-router.js';

const V = '2026-07-28';
const env = (version: unknown = V) => ({
  'io.modelcontextprotocol/protocolVersion': version,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
});
const req = (method: string, params: Record<string, unknown> = {}, meta: Record<string, unknown> | null = env()) => ({
  jsonrpc: '2.0',
  id: 1,
  method,
  params: { ...params, ...(meta === null ? {} : { _meta: meta }) },
});
const std = (method: string, name?: string): PostHeaders => ({ protocolVersion: V, method, ...(name ? { name } : {}) });

describe('admitPost', () => {
  const cases: { what: string; headers: PostHeaders; body: unknown; expect: string }[] = [
    { what: 'a complete 2026 request', headers: std('tools/list'), body: req('tools/list'), expect: 'request' },
    { what: 'tools/call with its name mirrored', headers: std('tools/call', 'echo'), body: req('tools/call', { name: 'echo' }), expect: 'request' },
    { what: 'a 2025 initialize', headers: {}, body: req('initialize', { protocolVersion: '2025-11-25' }, null), expect: 'legacy' },
    { what: 'a 2025 request without a claim', headers: { protocolVersion: '2025-11-25' }, body: req('tools/list', {}, null), expect: 'legacy' },
    { what: 'a posted response without a 2026 header', headers: {}, body: { jsonrpc: '2.0', id: 1, result: {} }, expect: 'legacy' },
    { what: 'an initialize with a 2026 header', headers: std('initialize'), body: req('initialize', { protocolVersion: '2025-11-25' }, null), expect: '400/-32020' },
    { what: 'a 2026 header without an envelope', headers: std('tools/list'), body: req('tools/list', {}, null), expect: '400/-32602' },
    { what: 'an envelope without the version', headers: std('tools/list'), body: req('tools/list', {}, { 'io.modelcontextprotocol/clientCapabilities': {} }), expect: '400/-32602' },
    { what: 'an envelope without capabilities', headers: std('tools/list'), body: req('tools/list', {}, { 'io.modelcontextprotocol/protocolVersion': V }), expect: '400/-32602' },
    { what: 'a non-string version claim', headers: std('tools/list'), body: req('tools/list', {}, env(20260728)), expect: '400/-32602' },
    { what: 'a header version other than the body’s', headers: { ...std('tools/list'), protocolVersion: '2027-01-01' }, body: req('tools/list'), expect: '400/-32020' },
    { what: 'an Mcp-Method other than the body’s', headers: std('tools/call'), body: req('tools/list'), expect: '400/-32020' },
    { what: 'an unsupported version', headers: { ...std('tools/list'), protocolVersion: '2099-01-01' }, body: req('tools/list', {}, env('2099-01-01')), expect: '400/-32022' },
    { what: 'an envelope naming a 2025 version', headers: { ...std('tools/list'), protocolVersion: '2025-11-25' }, body: req('tools/list', {}, env('2025-11-25')), expect: '400/-32022' },
    { what: 'no MCP-Protocol-Version header', headers: { method: 'tools/list' }, body: req('tools/list'), expect: '400/-32020' },
    { what: 'no Mcp-Method header', headers: { protocolVersion: V }, body: req('tools/list'), expect: '400/-32020' },
    { what: 'no Mcp-Name on tools/call', headers: std('tools/call'), body: req('tools/call', { name: 'echo' }), expect: '400/-32020' },
    { what: 'an Mcp-Name other than params.name', headers: std('tools/call', 'other'), body: req('tools/call', { name: 'echo' }), expect: '400/-32020' },
    { what: 'an Mcp-Name other than params.uri', headers: std('resources/read', 'file:///a'), body: req('resources/read', { uri: 'file:///b' }), expect: '400/-32020' },
    { what: 'a malformed Base64 Mcp-Name', headers: std('prompts/get', '=?base64?!!?='), body: req('prompts/get', { name: 'p' }), expect: '400/-32020' },
    { what: 'a Base64 Mcp-Name that matches', headers: std('prompts/get', `=?base64?${Buffer.from('prompt é').toString('base64')}?=`), body: req('prompts/get', { name: 'prompt é' }), expect: 'request' },
    { what: 'a batch under a 2026 header', headers: std('tools/list'), body: [req('tools/list')], expect: '400/-32600' },
    { what: 'a notification under a 2026 header', headers: { protocolVersion: V, method: 'notifications/cancelled' }, body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }, expect: 'notification' },
    { what: 'a notification whose Mcp-Method differs', headers: { protocolVersion: V, method: 'x' }, body: { jsonrpc: '2.0', method: 'notifications/cancelled' }, expect: '400/-32020' },
    { what: 'a 2025 notification', headers: { protocolVersion: '2025-11-25' }, body: { jsonrpc: '2.0', method: 'notifications/initialized' }, expect: 'legacy' },
  ];

  const summary = (a: ReturnType<typeof admitPost>) => (a.kind === 'reject' ? `${a.status}/${a.error.code}` : a.kind);

  for (const c of cases) {
    it(`${c.what} -> ${c.expect}`, () => {
      expect(summary(admitPost(c.headers, c.body))).toBe(c.expect);
    });
  }

  it('agrees with the SDK classifier wherever that classifier decides', () => {
    for (const c of cases) {
      const sdk = classifyInboundRequest({
        httpMethod: 'POST',
        ...(c.headers.protocolVersion !== undefined ? { protocolVersionHeader: c.headers.protocolVersion } : {}),
        ...(c.headers.method !== undefined ? { mcpMethodHeader: c.headers.method } : {}),
        ...(c.headers.name !== undefined ? { mcpNameHeader: c.headers.name } : {}),
        body: c.body,
      });
      const mine = admitPost(c.headers, c.body);
      // The SDK's edge classifier stops at "modern"; the later rungs (version, header presence) are ours to add.
      if (sdk.kind === 'modern') expect([c.what, mine.kind === 'reject' ? [-32020, -32022].includes(mine.error.code) : mine.kind !== 'legacy']).toEqual([c.what, true]);
      else if (sdk.kind === 'reject') expect([c.what, summary(mine)]).toEqual([c.what, `${sdk.httpStatus}/${sdk.code}`]);
      else expect([c.what, mine.kind]).toEqual([c.what, 'legacy']);
    }
  });

  it('echoes the request id and says which envelope key is missing', () => {
    const a = admitPost(std('tools/list'), { ...req('tools/list', {}, { 'io.modelcontextprotocol/clientCapabilities': {} }), id: 'abc' });
    expect(a).toMatchObject({ kind: 'reject', id: 'abc', error: { data: { envelope: { key: 'io.modelcontextprotocol/protocolVersion', problem: 'missing' } } } });
  });

  it('lists the supported versions when refusing one', () => {
    const a = admitPost({ ...std('tools/list'), protocolVersion: '2030-01-01' }, req('tools/list', {}, env('2030-01-01')));
    expect(a).toMatchObject({ error: { code: -32022, data: { supported: [V], requested: '2030-01-01' } } });
  });
});

describe('shapes', () => {
  it('keeps the envelope and the retry fields from the 2025 server', () => {
    expect(upstreamParams({ name: 'x', requestState: 's', inputResponses: {}, _meta: { ...env(), progressToken: 3, traceparent: 't' } })).toEqual({
      name: 'x',
      _meta: { progressToken: 3, traceparent: 't' },
    });
    expect(upstreamParams({ _meta: env() })).toEqual({});
  });

  it('marks results complete, cacheable ones private, and names the server', () => {
    const r = modernResult('tools/list', { tools: [{ name: 'a', inputSchema: { type: 'object' }, execution: { taskSupport: 'optional' } }] }, { name: 's', version: '1' });
    expect(r).toEqual({
      tools: [{ name: 'a', inputSchema: { type: 'object' } }],
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 's', version: '1' } },
    });
    expect(modernResult('tools/call', { content: [] }, { name: 's', version: '1' })).not.toHaveProperty('ttlMs');
  });

  it('advertises only what the gateway honours', () => {
    const caps = { tools: { listChanged: true }, prompts: {}, resources: { subscribe: true, listChanged: true }, logging: {}, tasks: {}, completions: {} };
    expect(modernCapabilities(caps)).toEqual({ tools: {}, prompts: {}, resources: {}, completions: {} });
    // Change notifications where a server of the workspace declares them (delivered on subscriptions/listen).
    expect(modernCapabilities(caps, { tools: true, prompts: false, resources: false, subscribe: true, logging: false })).toEqual({
      tools: { listChanged: true },
      prompts: {},
      resources: { subscribe: true },
      completions: {},
    });
    // Never a section the handshake lacks, whatever the support says.
    expect(modernCapabilities({ tools: {} }, { tools: true, prompts: true, resources: true, subscribe: true, logging: false })).toEqual({ tools: { listChanged: true } });
    // Logging where a server declares it: its messages reach the requests that carry a logLevel.
    expect(modernCapabilities(caps, { tools: false, prompts: false, resources: false, subscribe: false, logging: true })).toHaveProperty('logging', {});
  });

  it('reads a subscriptions/listen filter, refusing malformed ones', () => {
    expect(subscriptionFilter({ toolsListChanged: true, resourcesListChanged: false, resourceSubscriptions: ['a://b'], taskIds: ['x'] })).toEqual({
      toolsListChanged: true,
      resourcesListChanged: false,
      resourceSubscriptions: ['a://b'],
    });
    expect(subscriptionFilter({})).toEqual({});
    for (const bad of [undefined, null, [], 'tools', { toolsListChanged: 'yes' }, { resourceSubscriptions: 'a://b' }, { resourceSubscriptions: [1] }]) {
      expect([bad, subscriptionFilter(bad)]).toEqual([bad, undefined]);
    }
  });

  it('renames resource-not-found to -32602 with the URI', () => {
    expect(modernError({ code: -32002, message: 'nope' }, 'resources/read', { uri: 'x://y' })).toEqual({ code: -32602, message: 'nope', data: { uri: 'x://y' } });
    expect(modernError({ code: -32601, message: 'm' }, 'tools/call', {})).toEqual({ code: -32601, message: 'm' });
    // Codes of the specification's sub-range that it does not define never reach a 2026 client.
    expect(modernError({ code: -32029, message: 'slow down', data: { retryAfter: 1 } }, 'tools/call', {})).toEqual({ code: -32603, message: 'slow down', data: { code: -32029, retryAfter: 1 } });
    expect(modernError({ code: -32021, message: 'caps' }, 'tools/call', {})).toEqual({ code: -32021, message: 'caps' });
  });

  it('decodes the Base64 sentinel and refuses a bad one', () => {
    expect(decodeHeaderValue('plain')).toBe('plain');
    expect(decodeHeaderValue(`=?base64?${Buffer.from('Hello, 世界').toString('base64')}?=`)).toBe('Hello, 世界');
    expect(decodeHeaderValue('=?base64?abc?=')).toBeUndefined();
  });

  it('knows which capability an input request needs', () => {
    expect(missingCapabilities('sampling/createMessage', {}, {})).toEqual({ sampling: {} });
    expect(missingCapabilities('sampling/createMessage', { tools: [] }, { sampling: {} })).toEqual({ sampling: { tools: {} } });
    expect(missingCapabilities('elicitation/create', { mode: 'url' }, { elicitation: {} })).toEqual({ elicitation: { url: {} } });
    expect(missingCapabilities('elicitation/create', {}, { elicitation: {} })).toBeUndefined();
    expect(missingCapabilities('elicitation/create', {}, { elicitation: { url: {} } })).toEqual({ elicitation: { form: {} } });
  });
});

describe('Exchange', () => {
  const session = { id: 's', workspace: 'w', sub: 'u', role: 'member', clientCapabilities: {}, requests: new Map(), subscriptions: new Set(), lastSeen: 0, protocolVersion: V } as Session;

  function fakeRouter() {
    let finish: (r: JsonRpcResponse) => void = () => undefined;
    let sink: ClientSink | undefined;
    const answers: JsonRpcResponse[] = [];
    let released = 0;
    return {
      router: {
        request: (_s: Session, _m: unknown, k: ClientSink) => {
          sink = k;
          return new Promise<JsonRpcResponse>((r) => (finish = r));
        },
        response: (_s: Session, m: JsonRpcResponse) => void answers.push(m),
        release: () => void released++,
      },
      ask: (method: string, id: string) => sink!.send({ jsonrpc: '2.0', id, method, params: { messages: [], maxTokens: 1 } }),
      finish: (r: JsonRpcResponse) => finish(r),
      answers,
      released: () => released,
    };
  }

  it('turns a server-to-client request into input, and the answer into the upstream response', async () => {
    const f = fakeRouter();
    const ex = new Exchange(f.router, session, true, { sampling: {} });
    ex.begin({ jsonrpc: '2.0', id: 1, method: 'tools/call' });
    expect(f.ask('sampling/createMessage', 'g1')).toBe(true);
    const first = await ex.next();
    expect(first).toEqual({ kind: 'input', inputRequests: { 'input-1': { method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } } } });
    ex.answer({ 'input-1': { role: 'assistant', model: 'm', content: { type: 'text', text: 'hi' } }, stray: {} });
    expect(f.answers).toEqual([{ jsonrpc: '2.0', id: 'g1', result: { role: 'assistant', model: 'm', content: { type: 'text', text: 'hi' } } }]);
    f.finish({ jsonrpc: '2.0', id: 1, result: { content: [] } });
    expect(await ex.next()).toEqual({ kind: 'final', response: { jsonrpc: '2.0', id: 1, result: { content: [] } } });
  });

  it('reports a capability the client did not declare and refuses the upstream request', async () => {
    const f = fakeRouter();
    const ex = new Exchange(f.router, session, true, {});
    ex.begin({ jsonrpc: '2.0', id: 1, method: 'tools/call' });
    f.ask('sampling/createMessage', 'g1');
    expect(await ex.next()).toEqual({ kind: 'missing-capability', requiredCapabilities: { sampling: {} } });
    await Promise.resolve();
    expect(f.answers[0]).toMatchObject({ id: 'g1', error: { code: -32601 } });
  });

  it('parks under a token only the same caller and call can redeem', () => {
    const f = fakeRouter();
    const bridge = createInputBridge({ ttlMs: 60_000, maxParked: 1 });
    const ex = new Exchange(f.router, session, true, {});
    const binding = { workspace: 'w', sub: 'u', method: 'tools/call', target: '["t"]' };
    const token = bridge.park(ex, binding)!;
    expect(bridge.park(new Exchange(f.router, session, true, {}), binding)).toBeUndefined();
    expect(bridge.take(token, { ...binding, sub: 'mallory' })).toBeUndefined();
    expect(bridge.take(token, { ...binding, target: '["other"]' })).toBeUndefined();
    expect(bridge.take(token, binding)).toBe(ex);
    expect(bridge.take(token, binding)).toBeUndefined();
  });
});

describe('Mcp-Param-* headers (x-mcp-header)', () => {
  const schema = {
    type: 'object',
    properties: {
      region: { type: 'string', 'x-mcp-header': 'Region' },
      shard: { type: 'integer', 'x-mcp-header': 'Shard' },
      strict: { type: 'boolean', 'x-mcp-header': 'Strict' },
      options: { type: 'object', properties: { tenant: { type: 'string', 'x-mcp-header': 'Tenant' } } },
      list: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Item' } },
      either: { anyOf: [{ type: 'string', 'x-mcp-header': 'Either' }] },
      spaced: { type: 'string', 'x-mcp-header': 'Not A Token' },
      query: { type: 'string' },
    },
  };
  const headers = (h: Record<string, string>) => (key: string) => h[key];

  it('finds the declarations reachable through properties alone, once per schema object', () => {
    const d = paramDeclarations(schema);
    expect(d.map((x) => [x.path.join('.'), x.header, x.key])).toEqual([
      ['region', 'Mcp-Param-Region', 'mcp-param-region'],
      ['shard', 'Mcp-Param-Shard', 'mcp-param-shard'],
      ['strict', 'Mcp-Param-Strict', 'mcp-param-strict'],
      ['options.tenant', 'Mcp-Param-Tenant', 'mcp-param-tenant'],
    ]);
    expect(paramDeclarations(schema)).toBe(d);
    expect(paramDeclarations({ type: 'object', properties: { q: { type: 'string' } } })).toHaveLength(0);
    expect(paramDeclarations(undefined)).toHaveLength(0);
  });

  it('passes matching headers (plain, Base64 sentinel, integers numerically, booleans lower-case) and ignores undeclared ones', () => {
    const d = paramDeclarations(schema);
    const args = { region: 'Zürich', shard: 42, strict: false, options: { tenant: 'acme' }, query: 'x' };
    const b64 = `=?base64?${Buffer.from('Zürich').toString('base64')}?=`;
    expect(paramHeaderIssue(d, args, headers({ 'mcp-param-region': b64, 'mcp-param-shard': '42.0', 'mcp-param-strict': 'false', 'mcp-param-tenant': 'acme', 'mcp-param-other': 'x' }))).toBeUndefined();
    // Absent or null in the body: no header expected.
    expect(paramHeaderIssue(d, { query: 'x', region: null }, headers({}))).toBeUndefined();
  });

  it('refuses a missing, different, badly encoded or unbacked header with HeaderMismatch', () => {
    const d = paramDeclarations(schema);
    const issue = (args: Record<string, unknown>, h: Record<string, string>) => paramHeaderIssue(d, args, headers(h));
    expect(issue({ region: 'eu' }, {})).toMatchObject({ code: -32020, data: { mismatch: { header: 'Mcp-Param-Region' } } });
    expect(issue({ region: 'eu' }, {})?.message).toContain('absent');
    expect(issue({ region: 'eu' }, { 'mcp-param-region': 'us' })?.message).toContain('"us"');
    expect(issue({ shard: 42 }, { 'mcp-param-shard': '43' })?.code).toBe(-32020);
    expect(issue({ shard: 42 }, { 'mcp-param-shard': '4.2e1' })?.code).toBe(-32020);
    expect(issue({ strict: true }, { 'mcp-param-strict': 'True' })?.code).toBe(-32020);
    expect(issue({ options: { tenant: 'a' } }, { 'mcp-param-tenant': 'b' })?.data).toMatchObject({ mismatch: { header: 'Mcp-Param-Tenant' } });
    expect(issue({ region: 'eu' }, { 'mcp-param-region': '=?base64?not base64?=' })?.message).toContain('Base64');
    expect(issue({ region: 'Zürich' }, { 'mcp-param-region': 'Zürich' })?.message).toContain('invalid characters');
    // A header the body does not back: an intermediary may have routed on it.
    expect(issue({}, { 'mcp-param-region': 'eu' })?.message).toContain('carries no arguments.region');
  });

  it('answers HeaderMismatch with HTTP 400', () => {
    expect(inBandStatus(-32020)).toBe(400);
    expect(inBandStatus(-32021)).toBe(400);
    expect(inBandStatus(-32602)).toBe(200);
  });
});
