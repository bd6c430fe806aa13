// A server that crashes is restarted with exponential backoff; repeated crashes degrade the workspace, and a
// server that then stays up brings it back to ready.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { PROBE_PACKAGE, startTestGateway, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';

const WS = 'it-supervision';
let gw: TestGateway;
let owner: string;

beforeAll(async () => {
  gw = await startTestGateway({ supervision: { backoffBaseMs: 100, crashThreshold: 3, crashWindowMs: 60_000, stableMs: 1500 } });
  owner = await gw.token('alice');
  expect((await gw.api('POST', '/api/v1/workspaces', owner, { name: WS, servers: [{ name: 'probe', package: PROBE_PACKAGE }] })).status).toBe(201);
  await gw.waitStatus(WS, owner, ['ready']);
});

afterAll(async () => {
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
