// A server that crashes is restarted with exponential backoff; repeated crashes degrade the workspace, and a
// server that then stays up brings it back to ready.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { PROBE_PACKAGE, startTestGateway, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';

const WS = 'it-supervision';
const PAIR = 'it-supervision-pair';
let gw: TestGateway;
let owner: string;

beforeAll(async () => {
  gw = await startTestGateway({ supervision: { backoffBaseMs: 100, crashThreshold: 3, crashWindowMs: 60_000, stableMs: 1500 } });
  owner = await gw.token('alice');
  expect((await gw.api('POST', '/api/v1/workspaces', owner, { name: WS, servers: [{ name: 'probe', package: PROBE_PACKAGE }] })).status).toBe(201);
  await gw.waitStatus(WS, owner, ['ready']);
});

afterAll(async () => {
  await gw?.remove(PAIR, owner).catch(() => undefined);
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
});

const events = async () => (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body;

async function crashAndWaitForRestart(n: number): Promise<void> {
  const conn = await waitFor('a running probe', () => gw.gateway.manager.connection(WS, 'probe'), 30_000);
  await conn.request('tools/call', { name: 'crash', arguments: {} });
  await waitFor(`restart ${n}`, async () => ((await events()).filter((e) => e.type === 'server_initialized').length >= n + 1 ? true : undefined), 60_000);
}

describe('supervision', () => {
  it('restarts a crashed server with growing backoff and degrades the workspace after repeated crashes', async () => {
    await crashAndWaitForRestart(1);
    let ws = await gw.api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner);
    expect(ws.body.status).toBe('ready');

    await crashAndWaitForRestart(2);
    await crashAndWaitForRestart(3);
    const all = await events();
    const exits = all.filter((e) => e.type === 'container_exited');
    expect(exits.map((e) => e.detail?.exitCode)).toEqual([3, 3, 3]);
    expect(exits.map((e) => e.detail?.restartInMs)).toEqual([100, 200, 400]);
    expect(all.filter((e) => e.type === 'container_restarted')).toHaveLength(3);
    expect(all.some((e) => e.type === 'workspace_degraded')).toBe(true);
    ws = await gw.api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner);
    expect(ws.body.status).toBe('degraded');

    // The server still answers while degraded (it was restarted), and the workspace recovers once it is stable.
    const conn = gw.gateway.manager.connection(WS, 'probe')!;
    expect(await conn.request('tools/call', { name: 'echo', arguments: { message: 'alive' } })).toEqual({ content: [{ type: 'text', text: 'alive' }] });
    await gw.waitStatus(WS, owner, ['ready'], 30_000);
    expect((await events()).at(-1)).toMatchObject({ type: 'ready', detail: { recovered: true } });
  });

  it('recreates a container removed behind its back', async () => {
    const before = (await docker.listContainers({ filters: { label: [`mcpx.workspace=${WS}`] } }))[0]!;
    await docker.getContainer(before.Id).remove({ force: true });
    await waitFor('a new container', async () => {
      const now = await docker.listContainers({ filters: { label: [`mcpx.workspace=${WS}`] } });
      return now.length === 1 && now[0]!.Id !== before.Id ? true : undefined;
    }, 60_000, 100);
    const conn = await waitFor('the probe answering again', () => gw.gateway.manager.connection(WS, 'probe'), 60_000);
    expect(await conn.request('tools/call', { name: 'echo', arguments: { message: 'back' } })).toEqual({ content: [{ type: 'text', text: 'back' }] });
    expect((await events()).some((e) => e.type === 'container_missing')).toBe(true);
  });
});

describe('list changes when a server of a workspace crashes', () => {
  it("tells clients when a server's tools go away and come back, and not when the workspace hibernates and wakes", async () => {
    expect(
      (
        await gw.api('POST', '/api/v1/workspaces', owner, {
          name: PAIR,
          servers: [
            { name: 'probe', package: PROBE_PACKAGE },
            { name: 'other', package: PROBE_PACKAGE },
          ],
        })
      ).status,
    ).toBe(201);
    await gw.waitStatus(PAIR, owner, ['ready']);
    const client = new Client({ name: 'it-client', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${PAIR}`), { requestInit: { headers: { authorization: `Bearer ${owner}` } } }));
    let changes = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changes++);
    const names = async () => (await client.listTools()).tools.map((t) => t.name);
    expect(await names()).toEqual(expect.arrayContaining(['probe__crash', 'other__echo']));
    // Let the session's GET stream open before anything happens.
    await new Promise((r) => setTimeout(r, 500));

    await client.callTool({ name: 'probe__crash', arguments: {} });
    await waitFor('a list change for the crash', () => (changes >= 1 ? true : undefined), 30_000, 20);
    await waitFor('a list change for the return', () => (changes >= 2 ? true : undefined), 60_000, 50);
    await waitFor('probe listed again', async () => ((await names()).includes('probe__echo') ? true : undefined), 30_000);
    expect(changes).toBe(2);

    // A deliberate stop and the wake-up that a call brings are not changes of the lists.
    expect(await gw.gateway.manager.hibernateNow(PAIR)).toBe(true);
    expect(await client.callTool({ name: 'other__echo', arguments: { message: 'awake' } })).toMatchObject({ content: [{ type: 'text', text: 'awake' }] });
    await new Promise((r) => setTimeout(r, 1000));
    expect(changes).toBe(2);
    await client.close();
  });
});
