// Idle hibernation: an idle workspace's containers are stopped (volume and state kept); the next request starts
// them again transparently, and the wake-up is recorded. A restarted gateway leaves hibernating workspaces asleep.
// A wake-up reuses the image and the container the workspace had: it works with the npm registry out of reach, and
// so does a restart of the gateway under a running workspace. A wake-up that fails answers clients with its reason.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { startTestGateway, tempDir, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway, WorkspaceDetail } from './helpers/gateway.js';
import { loopDevicesFor } from './helpers/isolation.js';

const WS = 'it-hibernate';
/** A second workspace that sleeps through the whole file, never woken by any of its gateways. */
const NOWAKE = 'it-hibernate-nowake';
const dataDir = tempDir('hibernate');
let gw: TestGateway;
let owner: string;

const spec = {
  name: WS,
  servers: [{ name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } }],
  hibernate: { after: '1s' },
};

async function connect(workspace = WS): Promise<Client> {
  const c = new Client({ name: 'sleepy', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${workspace}`), { requestInit: { headers: { authorization: `Bearer ${owner}` } } }));
  return c;
}

const running = async () => (await docker.listContainers({ all: true, filters: { label: [`mcpx.workspace=${WS}`] } })).map((c) => c.State);
const status = async (workspace = WS) => (await gw.api<{ status: string }>('GET', `/api/v1/workspaces/${workspace}`, owner)).body.status;
const events = async () => (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body;

beforeAll(async () => {
  gw = await startTestGateway({ dataDir, hibernation: { checkEveryMs: 200 } });
  owner = await gw.token('alice');
  expect((await gw.api('POST', '/api/v1/workspaces', owner, spec)).status).toBe(201);
  expect((await gw.api('POST', '/api/v1/workspaces', owner, { ...spec, name: NOWAKE })).status).toBe(201);
  await gw.waitStatus(WS, owner, ['ready']);
  await gw.waitStatus(NOWAKE, owner, ['ready', 'hibernating']);
  await gw.gateway.manager.settled(NOWAKE);
  expect(await gw.gateway.manager.hibernateNow(NOWAKE)).toBe(true);
});

afterAll(async () => {
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.remove(NOWAKE, owner).catch(() => undefined);
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

describe('a wake-up with the registry out of reach', () => {
  /** The server's container and the image it runs, as the engine sees them. */
  const container = async () => {
    const info = await docker.getContainer(`mcpx-${WS}-memory`).inspect();
    return { id: info.Id, image: info.Image, running: info.State.Running };
  };
  const eventsSince = async (id: number) => (await events()).filter((e) => e.id > id);
  const lastEventId = async () => (await events()).at(-1)?.id ?? 0;
  const readGraph = async () => {
    const client = await connect();
    try {
      return JSON.stringify(await client.callTool({ name: 'read_graph', arguments: {} }));
    } finally {
      await client.close();
    }
  };
  const sleepNow = async () => {
    expect(await gw.gateway.manager.hibernateNow(WS)).toBe(true);
    expect(await running()).toEqual(['exited']);
  };

  /** The workspace's quota image, from its volume's label. */
  const diskImage = async () => {
    const volume = ((await docker.listVolumes({ filters: { label: [`mcpx.workspace=${WS}`] } })).Volumes ?? [])[0];
    const image = volume?.Labels?.['mcpx.disk-image'];
    expect(image).toMatch(/\.img$/);
    return image!;
  };

  /**
   * A new gateway on the same data directory and port (as in production: the address the servers are told is part
   * of their configuration), whose npm resolutions expire at once and whose npm asks a closed loopback port.
   */
  const restartCutOff = async () => {
    const port = Number(new URL(gw.url).port);
    await gw.close();
    // npm's environment is read once, when the gateway starts: only this gateway loses the registry.
    const saved = { registry: process.env.npm_config_registry, retries: process.env.npm_config_fetch_retries };
    process.env.npm_config_registry = 'http://127.0.0.1:9/';
    process.env.npm_config_fetch_retries = '0';
    try {
      gw = await startTestGateway({ dataDir, port, hibernation: { checkEveryMs: 600_000 }, imageCacheTtlMs: 0 });
    } finally {
      for (const [k, v] of [['npm_config_registry', saved.registry], ['npm_config_fetch_retries', saved.retries]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };

  let before: { id: string; image: string };

  it('restarts the gateway with every npm resolution expired and npm pointed at a closed loopback port', async () => {
    // The previous test left the workspace ready: put it to sleep on the old gateway.
    await gw.gateway.manager.settled(WS);
    await sleepNow();
    before = await container();
    expect(before.image).toMatch(/^sha256:/);
    await restartCutOff();
    expect(await status()).toBe('hibernating');
  });

  it('wakes from the stopped container and its image after a restart: same image, same container', async () => {
    const since = await lastEventId();
    expect(await readGraph()).toContain('kept across hibernation');
    expect(await status()).toBe('ready');
    expect(await container()).toEqual({ ...before, running: true });
    const ev = await eventsSince(since);
    expect(ev.map((e) => e.type)).toEqual(expect.arrayContaining(['image_built', 'container_adopted', 'workspace_woken']));
    expect(ev.find((e) => e.type === 'image_built')?.detail).toMatchObject({ cached: true, recorded: true });
    expect(ev.some((e) => e.type === 'workspace_failed' || e.type === 'container_destroyed')).toBe(false);
  });

  it('after another restart, wakes onto a new loop device (its own detached, its number taken): the same image in a new container', async () => {
    await sleepNow();
    await restartCutOff();
    expect(await status()).toBe('hibernating');
    const image = await diskImage();
    const [device] = loopDevicesFor(image);
    expect(device).toMatch(/^\/dev\/loop\d+$/);
    // As after a host reboot: the image is on no device, and its old device number holds another file.
    const squatter = join(tempDir('squat'), 'other.img');
    writeFileSync(squatter, Buffer.alloc(1024 * 1024));
    execFileSync('losetup', ['--detach', device!]);
    try {
      execFileSync('losetup', [device!, squatter]);
      const since = await lastEventId();
      expect(await readGraph()).toContain('kept across hibernation');
      const now = await container();
      expect(now.image).toBe(before.image);
      expect(now.id).not.toBe(before.id);
      before = now;
      expect(loopDevicesFor(image)).not.toContain(device);
      const ev = await eventsSince(since);
      expect(ev.find((e) => e.type === 'volume_replaced')?.detail).toMatchObject({ previousDevice: device });
      expect(ev.find((e) => e.type === 'image_built')?.detail).toMatchObject({ recorded: true });
      expect(ev.some((e) => e.type === 'workspace_failed' || e.type === 'container_missing')).toBe(false);
    } finally {
      execFileSync('losetup', ['--detach', device!]);
      rmSync(dirname(squatter), { recursive: true, force: true });
    }
  });

  it('wakes again in the same process, with the loop device detached behind its back meanwhile', async () => {
    await sleepNow();
    const image = await diskImage();
    const devices = loopDevicesFor(image);
    expect(devices.length).toBeGreaterThan(0);
    for (const d of devices) execFileSync('losetup', ['--detach', d]);
    expect(loopDevicesFor(image)).toEqual([]);

    const since = await lastEventId();
    expect(await readGraph()).toContain('kept across hibernation');
    expect(loopDevicesFor(image)).toHaveLength(1);
    expect((await container()).image).toBe(before.image);
    expect((await eventsSince(since)).some((e) => e.type === 'workspace_failed')).toBe(false);
  });

  it('makes a new container from the same image when the stopped one was removed behind its back', async () => {
    await sleepNow();
    await docker.getContainer(`mcpx-${WS}-memory`).remove({ force: true });
    const since = await lastEventId();
    expect(await readGraph()).toContain('kept across hibernation');
    const now = await container();
    expect(now.id).not.toBe(before.id);
    expect(now.image).toBe(before.image);
    const types = (await eventsSince(since)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['container_missing', 'container_started', 'workspace_woken']));
    expect(types).not.toContain('workspace_failed');
  });

  it('adopts the running workspace at a restart: same container, same image, no package resolved', async () => {
    await gw.gateway.manager.settled(WS);
    const runningBefore = await container();
    expect(runningBefore.running).toBe(true);
    const since = await lastEventId();
    await restartCutOff();
    await gw.waitStatus(WS, owner, ['ready'], 60_000);
    expect(await container()).toEqual(runningBefore);
    const ev = await eventsSince(since);
    expect(ev.find((e) => e.type === 'container_adopted')?.detail).toMatchObject({ running: true });
    expect(ev.find((e) => e.type === 'image_built')?.detail).toMatchObject({ cached: true, recorded: true });
    expect(ev.some((e) => e.type === 'workspace_failed' || e.type === 'container_destroyed' || e.type === 'container_started')).toBe(false);
    expect(await readGraph()).toContain('kept across hibernation');
  });

  it('fails an explicit apply of a changed spec clearly in that state: the registry really is out of reach', async () => {
    const changed = { ...spec, servers: [{ ...spec.servers[0]!, env: { ...spec.servers[0]!.env, CHANGED: '1' } }] };
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}`, owner, changed)).status).toBe(200);
    const detail: WorkspaceDetail = await gw.waitStatus(WS, owner, ['failed'], 120_000);
    expect(detail.servers[0]!.phase).toMatch(/could not resolve npm package "@modelcontextprotocol\/server-memory"/);
    const failed = (await events()).filter((e) => e.type === 'workspace_failed').at(-1);
    expect(String(failed?.detail?.reason)).toMatch(/could not resolve npm package/);
  });

  it('answers a failed wake-up with its reason, not "Unknown tool", for calls and lists alike', async () => {
    await waitFor('the second workspace asleep', async () => ((await status(NOWAKE)) === 'hibernating' ? true : undefined), 20_000);
    // This gateway never ran it, so its stopped container is the only record of its image: without it the wake-up
    // must resolve the package again, and the registry is out of reach.
    await docker.getContainer(`mcpx-${NOWAKE}-memory`).remove({ force: true });
    const client = await connect(NOWAKE);
    try {
      const failure = (p: Promise<unknown>) => p.then(() => new Error('it answered'), (e: unknown) => e);
      const reason = /workspace "it-hibernate-nowake" could not be started: server "memory": could not resolve npm package "@modelcontextprotocol\/server-memory"/;
      for (const err of [await failure(client.callTool({ name: 'read_graph', arguments: {} })), await failure(client.listTools())]) {
        expect(err).toBeInstanceOf(McpError);
        expect((err as McpError).code).toBe(-32603);
        expect((err as McpError).message).toMatch(reason);
      }
    } finally {
      await client.close();
    }
    expect(await status(NOWAKE)).toBe('failed');
    const missing = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${NOWAKE}/events`, owner)).body.find((e) => e.type === 'container_missing');
    expect(missing?.detail).toMatchObject({ reason: 'not found at wake-up', resolving: true });
  });
});
