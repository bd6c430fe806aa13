// Unit tests of the router's listeners (2026-07-28 subscriptions/listen) against a fake server process: the
// reference count shared with 2025 sessions under concurrency, and the ways a listener ends.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createSchemaValidator, DEFAULT_LIMITS } from '../policy/index.js';
import type { AccessPolicy } from '../policy/index.js';
import type { JsonRpcMessage } from './json-rpc.js';
import { UpstreamConnection } from './upstream-connection.js';
import { createWorkspaceRouter } from './workspace-router.js';
import type { ListenSink, Role } from './workspace-router.js';

const WS = 'ws';

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
  const router = createWorkspaceRouter({
    directory: {
      serverNames: (ws) => (ws === WS ? ['s'] : undefined),
      guardrails: (ws) => (ws === WS ? { policy, limits: DEFAULT_LIMITS, forbiddenArgs: [], maxResponseBytes: 1_000_000, concurrentPerServer: 100 } : undefined),
      activity: () => undefined,
      connection: (ws) => (ws === WS ? conn : undefined),
      onConnection: () => () => undefined,
    },
    validator: createSchemaValidator(),
    logger: pino({ level: 'silent' }),
    maxListenersPerUser: 2,
  });
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
    createWorkspaceRouter({
      directory: {
        serverNames: (ws) => (ws === WS ? Object.keys(conns) : undefined),
        guardrails: () => ({ policy: {}, limits: DEFAULT_LIMITS, forbiddenArgs: [], maxResponseBytes: 1_000_000, concurrentPerServer: 100 }),
        activity: () => undefined,
        connection: (ws, name) => (ws === WS ? conns[name] : undefined),
        onConnection: () => () => undefined,
      },
      validator: createSchemaValidator(),
      logger: pino({ level: 'silent' }),
    });
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
