// A workspace with two real servers from the npm registry: lifecycle, events in order, the SDK client
// through the attach bridge, delete leaving nothing behind.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelled } from './helpers/docker.js';
import { startTestGateway } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';

const WS = 'it-lifecycle';
const spec = {
  name: WS,
  servers: [
    { name: 'everything', package: '@modelcontextprotocol/server-everything', args: ['stdio'] },
    { name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } },
  ],
};

let gw: TestGateway;
let owner: string;

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
});

afterAll(async () => {
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
});

async function sdkClient(server: string): Promise<Client> {
  const conn = gw.gateway.manager.connection(WS, server);
  if (!conn) throw new Error(`no live connection to ${server}`);
  const client = new Client({ name: 'it-client', version: '1.0.0' });
  await client.connect(conn.openChannel() as unknown as Transport);
  return client;
}

describe('workspace lifecycle with real servers', () => {
  it('creates the workspace and reaches ready', async () => {
    const created = await gw.api('POST', '/api/v1/workspaces', owner, spec);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ name: WS, status: 'creating' });
    const ws = await gw.waitStatus(WS, owner, ['ready']);
    expect(ws.servers.map((s) => [s.name, s.status]).sort()).toEqual([
      ['everything', 'running'],
      ['memory', 'running'],
    ]);
    const list = await gw.api<{ name: string; status: string }[]>('GET', '/api/v1/workspaces', owner);
    expect(list.body).toContainEqual(expect.objectContaining({ name: WS, status: 'ready' }));
  });

  it('records the lifecycle events in order', async () => {
    const events = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body;
    expect(events[0]!.type).toBe('workspace_created');
    for (const server of ['everything', 'memory']) {
      const mine = events.filter((e) => e.server === server).map((e) => e.type);
      expect(mine).toEqual(['image_built', 'policies_applied', 'container_started', 'server_initialized']);
    }
    const types = events.map((e) => e.type);
    expect(types.at(-1)).toBe('ready');
    expect(types.lastIndexOf('server_initialized')).toBeLessThan(types.indexOf('ready'));
    const times = events.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('lets the SDK client use server-everything through the attach bridge', async () => {
    const client = await sdkClient('everything');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    const r = await client.callTool({ name: 'echo', arguments: { message: 'through the bridge' } });
    expect(JSON.stringify(r.content)).toContain('through the bridge');
    await client.close();
  });

  it('lets the SDK client use server-memory, which persists into /workspace', async () => {
    const client = await sdkClient('memory');
    await client.callTool({
      name: 'create_entities',
      arguments: { entities: [{ name: 'mcpx', entityType: 'project', observations: ['runs servers in containers'] }] },
    });
    const graph = await client.callTool({ name: 'read_graph', arguments: {} });
    expect(JSON.stringify(graph)).toContain('runs servers in containers');
    await client.close();
  });

  it('keeps the servers stderr as their logs', async () => {
    const logs = await gw.api<{ server: string; line: string }[]>('GET', `/api/v1/workspaces/${WS}/logs`, owner);
    expect(logs.status).toBe(200);
    expect(logs.body.some((l) => l.server === 'memory' && /running on stdio/i.test(l.line))).toBe(true);
  });

  it('applies an unchanged spec without rebuilding or recreating anything', async () => {
    const before = await gw.api<{ servers: { name: string; container: { id: string } }[] }>('GET', `/api/v1/workspaces/${WS}`, owner);
    const lastId = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body.at(-1)!.id;
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}`, owner, spec)).status).toBe(200);
    await gw.waitStatus(WS, owner, ['ready']);
    const events = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events?after=${lastId}`, owner)).body;
    const built = events.filter((e) => e.type === 'image_built');
    expect(built).toHaveLength(2);
    expect(built.every((e) => e.detail?.cached === true)).toBe(true);
    expect(events.map((e) => e.type)).not.toContain('container_started');
    const after = await gw.api<{ servers: { name: string; container: { id: string } }[] }>('GET', `/api/v1/workspaces/${WS}`, owner);
    expect(after.body.servers.map((s) => s.container.id).sort()).toEqual(before.body.servers.map((s) => s.container.id).sort());
  });

  it('deletes everything it created, with the closing events', async () => {
    expect((await gw.api('DELETE', `/api/v1/workspaces/${WS}`, owner)).status).toBe(202);
    await gw.remove(WS, owner);
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}`, owner)).status).toBe(404);
    expect(await labelled(`mcpx.workspace=${WS}`)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    // The API forgets a deleted workspace; its record of events stays in the store.
    const db = new Database(join(gw.dataDir, 'mcpx.db'), { readonly: true });
    const types = (db.prepare("SELECT type FROM events WHERE workspace_uid = (SELECT workspace_uid FROM events WHERE type = 'workspace_created' ORDER BY id DESC LIMIT 1) ORDER BY id").all() as { type: string }[]).map((r) => r.type);
    db.close();
    const tail = types.slice(types.indexOf('workspace_deleted'));
    expect(tail).toEqual(['workspace_deleted', 'container_destroyed', 'container_destroyed', 'resources_cleaned']);
  });
});
