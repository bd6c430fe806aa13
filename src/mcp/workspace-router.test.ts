// Unit tests of the router against fake server processes: listeners (2026-07-28 subscriptions/listen) and the
// reference count they share with 2025 sessions, log levels, a multi-server handshake, and catalogs across restarts.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createSchemaValidator, DEFAULT_LIMITS } from '../policy/index.js';
import type { AccessPolicy } from '../policy/index.js';
import type { JsonRpcMessage } from './json-rpc.js';
import { UpstreamConnection } from './upstream-connection.js';
import { admitsLevel, createWorkspaceRouter, mostVerbose } from './workspace-router.js';
import type { Directory, ListenSink, Role, RouterOptions } from './workspace-router.js';

const WS = 'ws';

/**
 * A router for workspace WS over fake server processes: `servers()` names them (read at each use, so a test can
 * swap a process); `onConnection` defaults to never announcing one; other router options pass through.
 */
function routerOver(
  servers: () => Record<string, UpstreamConnection | undefined>,
  more: { policy?: AccessPolicy; onConnection?: Directory['onConnection'] } & Partial<Omit<RouterOptions, 'directory'>> = {},
) {
  const { policy = {}, onConnection = () => () => undefined, ...options } = more;
  return createWorkspaceRouter({
    directory: {
      serverNames: (ws) => (ws === WS ? Object.keys(servers()) : undefined),
      guardrails: (ws) => (ws === WS ? { policy, limits: DEFAULT_LIMITS, forbiddenArgs: [], maxResponseBytes: 1_000_000, concurrentPerServer: 100 } : undefined),
      activity: () => undefined,
      connection: (ws, name) => (ws === WS ? servers()[name] : undefined),
      onConnection,
    },
    validator: createSchemaValidator(),
    logger: pino({ level: 'silent' }),
    ...options,
  });
}

/** One server process that declares subscriptions and list changes, answers after a few ms, and counts. */
async function setUp(policy: AccessPolicy = {}) {
  const upstream: { method: string; uri?: unknown }[] = [];
  const conn: UpstreamConnection = new UpstreamConnection({
    write(line) {
      const msg = JSON.parse(line) as { id?: number; method: string; params?: { uri?: unknown } };
      if (msg.id === undefined) return true;
      upstream.push({ method: msg.method, uri: msg.params?.uri });
      const result =
        msg.method === 'initialize'
          ? { protocolVersion: '2025-11-25', capabilities: { tools: { listChanged: true }, resources: { subscribe: true } }, serverInfo: { name: 'fake', version: '1' } }
          : {};
      setTimeout(() => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })), 5);
      return true;
    },
  });
  await conn.initialize(1000);
  const router = routerOver(() => ({ s: conn }), { policy, maxListenersPerUser: 2 });
  const count = (method: string) => upstream.filter((u) => u.method === method).length;
  const notify = (method: string, params?: Record<string, unknown>) => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }));
  return { router, conn, count, notify };
}

function sink(role: () => Role | undefined = () => 'member') {
  const got: JsonRpcMessage[] = [];
  const ended: string[] = [];
  const s: ListenSink = {
    send: (m) => {
      got.push(m);
      return true;
    },
    role,
    ended: (reason) => ended.push(reason),
  };
  return { s, got, ended };
}

const who = (sub = 'alice', role: Role = 'member') => ({ workspace: WS, sub, role, protocolVersion: '2026-07-28' });
const settle = () => new Promise((r) => setTimeout(r, 30));

describe('router listeners', () => {
  it('send one upstream subscribe for holders of both eras arriving together, and one unsubscribe after the last', async () => {
    const { router, count } = await setUp();
    const { session } = router.initialize(WS, 'bob', 'member', { jsonrpc: '2.0', id: 0, method: 'initialize', params: {} });
    const [a, b, r] = await Promise.all([
      router.listen(who(), { resourceSubscriptions: ['x://1'] }, sink().s),
      router.listen(who('carol'), { resourceSubscriptions: ['x://1'] }, sink().s),
      router.request(session, { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'x://1' } }, { send: () => false }),
    ]);
    expect(r.error).toBeUndefined();
    expect(a.honored).toEqual({ resourceSubscriptions: ['x://1'] });
    expect(b.honored).toEqual({ resourceSubscriptions: ['x://1'] });
    expect(count('resources/subscribe')).toBe(1);
    a.close();
    router.close(session.id);
    await settle();
    expect(count('resources/unsubscribe')).toBe(0);
    b.close();
    b.close();
    await settle();
    expect(count('resources/unsubscribe')).toBe(1);
  });

  it('deliver only what was asked for, and end a listener whose caller lost the role, releasing its subscription', async () => {
    const { router, count, notify } = await setUp();
    let role: Role | undefined = 'member';
    const tools = sink(() => role);
    const other = sink();
    await router.listen(who(), { toolsListChanged: true, promptsListChanged: true, resourceSubscriptions: ['x://2'] }, tools.s);
    await router.listen(who('dave'), { resourceSubscriptions: ['x://3'] }, other.s);
    notify('notifications/prompts/list_changed');
    notify('notifications/tools/list_changed');
    notify('notifications/resources/updated', { uri: 'x://3' });
    // The server does not declare prompts list changes, so that kind was never honoured.
    expect(tools.got.map((m) => ('method' in m ? m.method : ''))).toEqual(['notifications/tools/list_changed']);
    expect(other.got).toHaveLength(1);
    role = undefined;
    notify('notifications/resources/updated', { uri: 'x://2' });
    expect(tools.got).toHaveLength(1);
    expect(tools.ended).toHaveLength(1);
    await settle();
    expect(count('resources/unsubscribe')).toBe(1);
    expect(router.listenerCount).toBe(1);
  });

  it('leave a denied URI unwatched, bound listeners per user, and end them all when the workspace goes', async () => {
    const { router, count } = await setUp({ resources: { deny: ['x://secret'] } });
    const first = sink();
    const l = await router.listen(who(), { resourceSubscriptions: ['x://secret', 'x://4'] }, first.s);
    expect(l.honored).toEqual({ resourceSubscriptions: ['x://4'] });
    expect(count('resources/subscribe')).toBe(1);
    await router.listen(who(), {}, sink().s);
    await expect(router.listen(who(), {}, sink().s)).rejects.toMatchObject({ code: -32603, data: { limit: 2 } });
    await router.listen(who('erin'), {}, sink().s);
    router.forgetWorkspace(WS);
    expect(first.ended).toEqual(['the workspace was deleted']);
    expect(router.listenerCount).toBe(0);
    await settle();
    expect(count('resources/unsubscribe')).toBe(1);
  });
});

describe('router handshake of a multi-server workspace', () => {
  const server = async (capabilities: Record<string, unknown>) => {
    const conn: UpstreamConnection = new UpstreamConnection({
      write(line) {
        const msg = JSON.parse(line) as { id?: number };
        if (msg.id !== undefined) {
          const result = { protocolVersion: '2025-11-25', capabilities, serverInfo: { name: 'fake', version: '1' } };
          setTimeout(() => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })), 1);
        }
        return true;
      },
    });
    await conn.initialize(1000);
    return conn;
  };
  const routerFor = (conns: Record<string, UpstreamConnection | undefined>) =>
    routerOver(() => conns);
  const init = { jsonrpc: '2.0' as const, id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25' } };

  it('claims only what some server declared', async () => {
    const router = routerFor({ a: await server({ tools: { listChanged: true } }), b: await server({ resources: {}, logging: {} }) });
    expect(router.initialize(WS, 'bob', 'member', init).result.capabilities).toEqual({ tools: { listChanged: true }, resources: {}, logging: {} });
  });

  it('claims everything it can route while a server is down (its handshake unknown)', async () => {
    const router = routerFor({ a: await server({ tools: {} }), b: undefined });
    expect(router.initialize(WS, 'bob', 'member', init).result.capabilities).toEqual({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true, subscribe: true },
      logging: {},
      completions: {},
    });
  });
});

describe('router log messages across eras', () => {
  /** A server that declares logging, answers tools/call after 50 ms and records every level it is set to. */
  async function logServer(capabilities: Record<string, unknown> = { tools: {}, logging: {} }) {
    const levels: string[] = [];
    const order: string[] = [];
    const conn: UpstreamConnection = new UpstreamConnection({
      write(line) {
        const msg = JSON.parse(line) as { id?: number; method: string; params?: { level?: string } };
        if (msg.id === undefined) return true;
        order.push(msg.method);
        if (msg.method === 'logging/setLevel') levels.push(String(msg.params?.level));
        const result =
          msg.method === 'initialize'
            ? { protocolVersion: '2025-11-25', capabilities, serverInfo: { name: 'fake', version: '1' } }
            : msg.method === 'tools/list'
              ? { tools: [{ name: 't', inputSchema: { type: 'object' } }] }
              : {};
        setTimeout(() => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })), msg.method === 'tools/call' ? 50 : 1);
        return true;
      },
    });
    await conn.initialize(1000);
    const router = routerOver(() => ({ s: conn }), { logLevelLingerMs: 30 });
    const log = (level: string) => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level, data: level } }));
    return { router, conn, levels, order, log };
  }
  const collect = () => {
    const got: JsonRpcMessage[] = [];
    return { got, sink: { send: (m: JsonRpcMessage) => got.push(m) > 0 }, levels: () => got.map((m) => ('params' in m ? String((m.params as { level?: string }).level) : '')) };
  };
  const call = (id: number) => ({ jsonrpc: '2.0' as const, id, method: 'tools/call', params: { name: 't', arguments: {} } });
  const stateless = (router: Awaited<ReturnType<typeof logServer>>['router'], logLevel?: string) =>
    router.statelessSession(WS, 'alice', 'member', { protocolVersion: '2026-07-28', ...(logLevel ? { logLevel } : {}) });
  const session2025 = (router: Awaited<ReturnType<typeof logServer>>['router']) => {
    const { session } = router.initialize(WS, 'bob', 'member', { jsonrpc: '2.0', id: 0, method: 'initialize', params: {} });
    const stream = collect();
    session.stream = stream.sink;
    return { session, stream };
  };

  it('gives a 2026 request the messages at or above its logLevel while it is the one request in flight, and 2025 sessions everything as before', async () => {
    const { router, levels, log } = await logServer();
    const old = session2025(router);
    const asked = collect();
    const pending = router.request(stateless(router, 'warning'), call(1), asked.sink);
    await new Promise((r) => setTimeout(r, 10));
    log('info');
    log('error');
    log('nonsense');
    await pending;
    log('critical');
    expect(asked.levels()).toEqual(['error']);
    expect(old.stream.levels()).toEqual(['info', 'error', 'nonsense', 'critical']);
    // No 2025 client set a level: the server was never touched.
    expect(levels).toEqual([]);

    const quiet = collect();
    const p2 = router.request(stateless(router), call(2), quiet.sink);
    await new Promise((r) => setTimeout(r, 10));
    log('emergency');
    await p2;
    expect(quiet.got).toEqual([]);
  });

  it('gives no request a message while several are in flight to that server (the server names none)', async () => {
    const { router, log } = await logServer();
    const old = session2025(router);
    const a = collect();
    const b = collect();
    const pa = router.request(stateless(router, 'debug'), call(1), a.sink);
    const pb = router.request(stateless(router, 'debug'), call(2), b.sink);
    await new Promise((r) => setTimeout(r, 10));
    log('error');
    await Promise.all([pa, pb]);
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([]);
    expect(old.stream.levels()).toEqual(['error']);
  });

  it('raises the server to the most verbose level needed while a 2026 request runs, then restores the 2025 level', async () => {
    const { router, levels, order, log } = await logServer();
    const old = session2025(router);
    expect((await router.request(old.session, { jsonrpc: '2.0', id: 9, method: 'logging/setLevel', params: { level: 'error' } }, collect().sink)).error).toBeUndefined();
    expect(levels).toEqual(['error']);
    const asked = collect();
    const pending = router.request(stateless(router, 'info'), call(1), asked.sink);
    await new Promise((r) => setTimeout(r, 20));
    // Set before anything of the request reached the server (its list fetch, then the call), and only once.
    expect(order.slice(-3)).toEqual(['logging/setLevel', 'tools/list', 'tools/call']);
    expect(levels).toEqual(['error', 'info']);
    log('info');
    log('error');
    await pending;
    // Restored after the linger (30 ms here), not at once.
    expect(levels).toEqual(['error', 'info']);
    await new Promise((r) => setTimeout(r, 60));
    expect(levels).toEqual(['error', 'info', 'error']);
    expect(asked.levels()).toEqual(['info', 'error']);
    // The 2025 session still sees only what it asked for.
    expect(old.stream.levels()).toEqual(['error']);

    // Overlapping requests: one raise to the most verbose, one restore after the last.
    const p1 = router.request(stateless(router, 'notice'), call(2), collect().sink);
    const p2 = router.request(stateless(router, 'debug'), call(3), collect().sink);
    await Promise.all([p1, p2]);
    await new Promise((r) => setTimeout(r, 60));
    expect(levels.slice(3)).toEqual(['notice', 'debug', 'error']);
    // An invalid level is refused and changes nothing.
    expect((await router.request(old.session, { jsonrpc: '2.0', id: 10, method: 'logging/setLevel', params: { level: 'loud' } }, collect().sink)).error?.code).toBe(-32602);
  });

  it('advertises logging only where a server declares it, and raises no level on a server without it', async () => {
    expect((await logServer()).router.changeSupport(WS).logging).toBe(true);
    const bare = await logServer({ tools: {} });
    expect(bare.router.changeSupport(WS).logging).toBe(false);
    const old = session2025(bare.router);
    await bare.router.request(old.session, { jsonrpc: '2.0', id: 9, method: 'logging/setLevel', params: { level: 'error' } }, collect().sink);
    await bare.router.request(stateless(bare.router, 'debug'), call(1), collect().sink);
    // The 2025 level is forwarded as before (the server may refuse it); no raise for the 2026 request.
    expect(bare.levels).toEqual(['error']);
  });
});

describe('log level helpers', () => {
  it('admit a level at or above the threshold, and anything without one', () => {
    expect(admitsLevel('warning', 'error')).toBe(true);
    expect(admitsLevel('warning', 'warning')).toBe(true);
    expect(admitsLevel('warning', 'info')).toBe(false);
    expect(admitsLevel('warning', 'loud')).toBe(false);
    expect(admitsLevel(undefined, 'loud')).toBe(true);
    expect(mostVerbose(['error', undefined, 'info', 'loud'])).toBe('info');
    expect(mostVerbose([])).toBeUndefined();
  });
});

describe('router catalogs', () => {
  it('validate a call against the schema of the process now running, not of the one before', async () => {
    const serve = async (schema: Record<string, unknown>) => {
      const calls: unknown[] = [];
      const conn: UpstreamConnection = new UpstreamConnection({
        write(line) {
          const msg = JSON.parse(line) as { id?: number; method: string; params?: unknown };
          if (msg.id === undefined) return true;
          if (msg.method === 'tools/call') calls.push(msg.params);
          const result =
            msg.method === 'initialize'
              ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'fake', version: '1' } }
              : msg.method === 'tools/list'
                ? { tools: [{ name: 't', inputSchema: schema }] }
                : { content: [] };
          setTimeout(() => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })), 1);
          return true;
        },
      });
      await conn.initialize(1000);
      return { conn, calls };
    };
    const old = await serve({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] });
    let current = old.conn;
    let announce: ((ws: string, server: string, conn: UpstreamConnection) => void) | undefined;
    const router = routerOver(() => ({ s: current }), {
      onConnection: (l) => {
        announce = l;
        return () => undefined;
      },
    });
    const { session } = router.initialize(WS, 'bob', 'member', { jsonrpc: '2.0', id: 0, method: 'initialize', params: {} });
    const call = (id: number, args: Record<string, unknown>) => router.request(session, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 't', arguments: args } }, { send: () => false });
    expect((await call(1, { a: 'x' })).error).toBeUndefined();
    expect((await call(2, { b: 1 })).error?.code).toBe(-32602);
    // The server is replaced by a version whose tool takes `b`.
    const next = await serve({ type: 'object', properties: { b: { type: 'number' } }, required: ['b'] });
    current = next.conn;
    announce!(WS, 's', next.conn);
    expect((await call(3, { b: 1 })).error).toBeUndefined();
    expect(next.calls).toEqual([{ name: 't', arguments: { b: 1 } }]);
  });
});
