// Idle hibernation: an idle workspace's containers are stopped (volume and state kept); the next request starts
// them again transparently, and the wake-up is recorded. A restarted gateway leaves hibernating workspaces asleep.
import { rmSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { startTestGateway, tempDir, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';

const WS = 'it-hibernate';
const dataDir = tempDir('hibernate');
let gw: TestGateway;
let owner: string;

const spec = {
  name: WS,
  servers: [{ name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } }],
  hibernate: { after: '1s' },
};

async function connect(): Promise<Client> {
  const c = new Client({ name: 'sleepy', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${WS}`), { requestInit: { headers: { authorization: `Bearer ${owner}` } } }));
  return c;
}

const running = async () => (await docker.listContainers({ all: true, filters: { label: [`mcpx.workspace=${WS}`] } })).map((c) => c.State);
const status = async () => (await gw.api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status;
const events = async () => (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body;

beforeAll(async () => {
  gw = await startTestGateway({ dataDir, hibernation: { checkEveryMs: 200 } });
  owner = await gw.token('alice');
  expect((await gw.api('POST', '/api/v1/workspaces', owner, spec)).status).toBe(201);
  await gw.waitStatus(WS, owner, ['ready']);
});

afterAll(async () => {
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('idle hibernation', () => {
  it('stops an idle workspace, keeps its state, and wakes it on the next request', async () => {
    const client = await connect();
    await client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'sleeper', entityType: 'test', observations: ['kept across hibernation'] }] } });

    await waitFor('hibernation', async () => ((await status()) === 'hibernating' ? true : undefined), 20_000, 100);
    expect(await running()).toEqual(['exited']);
    expect((await events()).some((e) => e.type === 'workspace_hibernated')).toBe(true);

    // The same session, as if nothing happened.
    const graph = await client.callTool({ name: 'read_graph', arguments: {} });
    expect(JSON.stringify(graph)).toContain('kept across hibernation');
    expect(await running()).toEqual(['running']);
    const woken = (await events()).filter((e) => e.type === 'workspace_woken');
    expect(woken).toHaveLength(1);
    expect(woken[0]!.detail?.ms).toBeGreaterThan(0);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/mcpx_workspace_wakeup_seconds_count 1/);
    await client.close();
  });

  it('leaves a hibernating workspace asleep across a gateway restart, until a request comes', async () => {
    await waitFor('hibernation again', async () => ((await status()) === 'hibernating' ? true : undefined), 20_000, 100);
    await gw.close();
    gw = await startTestGateway({ dataDir, hibernation: { checkEveryMs: 60_000 } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await status()).toBe('hibernating');
    expect(await running()).toEqual(['exited']);
    const client = await connect();
    expect(JSON.stringify(await client.callTool({ name: 'read_graph', arguments: {} }))).toContain('kept across hibernation');
    expect(await status()).toBe('ready');
    await client.close();
  });
});
