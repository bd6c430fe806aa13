// The gateway as a real process: killed with SIGKILL halfway through a create or an apply, it finishes the job at
// its next start without duplicates, removes labelled orphans, and adopts containers after a clean SIGTERM.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, labelled } from './helpers/docker.js';
import { apiClient, PROBE_PACKAGE, spawnGateway, tempDir, tokenFor, waitFor } from './helpers/gateway.js';
import type { EventView, GatewayProcess, WorkspaceDetail } from './helpers/gateway.js';

const WS = 'it-reconcile';
const dataDir = tempDir('reconcile');
let gwp: GatewayProcess | undefined;
let token: string;

// A fixed public URL keeps the containers' configuration (MCPX_API_ENDPOINT) stable across restarts on port 0.
const ENV = { MCPX_PUBLIC_URL: 'http://127.0.0.1:7470' };

const stop = async (signal: NodeJS.Signals) => {
  const child = gwp?.child;
  if (!child || child.exitCode !== null) return null;
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  child.kill(signal);
  return exited;
};

beforeAll(async () => {
  token = await tokenFor(dataDir, 'alice');
});

afterAll(async () => {
  if (gwp && gwp.child.exitCode === null) {
    const api = apiClient(gwp.url);
    await api('DELETE', `/api/v1/workspaces/${WS}`, token).catch(() => undefined);
    await waitFor('delete', async () => ((await api('GET', `/api/v1/workspaces/${WS}`, token)).status === 404 ? true : undefined), 60_000).catch(() => undefined);
    await stop('SIGTERM');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('reconciliation with the engine', () => {
  it('finishes a create interrupted by SIGKILL, without duplicates, and removes orphans', async () => {
    gwp = await spawnGateway(dataDir, ENV);
    let api = apiClient(gwp.url);
    const spec = {
      name: WS,
      servers: [
        { name: 'probe', package: PROBE_PACKAGE },
        { name: 'memory', package: '@modelcontextprotocol/server-memory' },
      ],
    };
    expect((await api('POST', '/api/v1/workspaces', token, spec)).status).toBe(201);
    // Kill as soon as the first container exists: the create is halfway.
    await waitFor('a first container', async () => ((await labelled(`mcpx.workspace=${WS}`)).containers > 0 ? true : undefined), 120_000, 20);
    expect(await stop('SIGKILL')).toBe(null);

    // Orphans: labelled resources of a workspace the store never knew.
    const orphanLabels = { 'mcpx.managed': 'true', 'mcpx.workspace': 'it-orphan', 'mcpx.workspace-uid': 'deadbeef-0000' };
    await docker.createVolume({ Name: 'mcpx-it-orphan-deadbeef', Labels: orphanLabels });
    const images = await docker.listImages({ filters: { label: ['mcpx.image=base'] } });
    await docker.createContainer({ name: 'mcpx-it-orphan-x', Image: images[0]!.Id, Cmd: ['/usr/local/bin/node', '-e', '0'], Labels: orphanLabels });
    expect(await labelled('mcpx.workspace=it-orphan')).toMatchObject({ containers: 1, volumes: 1 });

    gwp = await spawnGateway(dataDir, ENV);
    api = apiClient(gwp.url);
    expect(await labelled('mcpx.workspace=it-orphan')).toEqual({ containers: 0, volumes: 0, networks: 0 });
    const ws = await waitFor('ready after restart', async () => {
      const r = await api<WorkspaceDetail>('GET', `/api/v1/workspaces/${WS}`, token);
      return r.body.status === 'ready' ? r.body : undefined;
    }, 240_000);
    expect(ws.servers.map((s) => s.status)).toEqual(['running', 'running']);
    const containers = await docker.listContainers({ all: true, filters: { label: [`mcpx.workspace=${WS}`] } });
    expect(containers.map((c) => c.Names[0]).sort()).toEqual([`/mcpx-${WS}-memory`, `/mcpx-${WS}-probe`]);
    expect((await labelled(`mcpx.workspace=${WS}`)).volumes).toBe(1);
  });

  it('leaves containers running on SIGTERM and adopts them at the next start', async () => {
    const before = (await docker.listContainers({ filters: { label: [`mcpx.workspace=${WS}`] } })).map((c) => c.Id).sort();
    expect(before).toHaveLength(2);
    const mark = (await apiClient(gwp!.url)<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, token)).body.at(-1)!.id;
    expect(await stop('SIGTERM')).toBe(0);
    gwp = await spawnGateway(dataDir, ENV);
    const api = apiClient(gwp.url);
    const events = await waitFor('ready after adoption', async () => {
      const r = await api<WorkspaceDetail>('GET', `/api/v1/workspaces/${WS}`, token);
      if (r.body.status !== 'ready') return undefined;
      return (await api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events?after=${mark}`, token)).body;
    }, 120_000);
    const after = (await docker.listContainers({ filters: { label: [`mcpx.workspace=${WS}`] } })).map((c) => c.Id).sort();
    expect(after).toEqual(before);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'container_adopted')).toHaveLength(2);
    expect(types.filter((t) => t === 'server_initialized')).toHaveLength(2);
    expect(types).not.toContain('container_started');
    expect(types.at(-1)).toBe('ready');
    expect(events.filter((e) => e.type === 'container_adopted').every((e) => e.detail?.running === true)).toBe(true);
  });

  it('finishes an apply interrupted by SIGKILL in full: the adopted containers of the old spec do not stay', async () => {
    let api = apiClient(gwp!.url);
    const detail = async () => (await api<{ status: string; servers: { name: string; serverInfo?: { name: string } }[] }>('GET', `/api/v1/workspaces/${WS}`, token)).body;
    /** Each server's serverInfo name, by server. */
    const running = async () => Object.fromEntries((await detail()).servers.map((s) => [s.name, s.serverInfo?.name]));
    expect(await running()).toEqual({ probe: 'mcpx-probe-server', memory: expect.stringMatching(/memory/) as unknown });
    // The server "memory" now runs another package: only resolving the spec again can give it the right image.
    const spec = { name: WS, servers: [{ name: 'probe', package: PROBE_PACKAGE }, { name: 'memory', package: PROBE_PACKAGE }] };
    expect((await api('PUT', `/api/v1/workspaces/${WS}`, token, spec)).status).toBe(200);
    expect(await stop('SIGKILL')).toBe(null);
    gwp = await spawnGateway(dataDir, ENV);
    api = apiClient(gwp.url);
    await waitFor('ready after restart', async () => ((await detail()).status === 'ready' ? true : undefined), 240_000);
    expect(await running()).toEqual({ probe: 'mcpx-probe-server', memory: 'mcpx-probe-server' });
  });

  it('deletes the workspace and leaves nothing labelled with it', async () => {
    const api = apiClient(gwp!.url);
    expect((await api('DELETE', `/api/v1/workspaces/${WS}`, token)).status).toBe(202);
    await waitFor('delete', async () => ((await api('GET', `/api/v1/workspaces/${WS}`, token)).status === 404 ? true : undefined), 60_000);
    expect(await labelled(`mcpx.workspace=${WS}`)).toEqual({ containers: 0, volumes: 0, networks: 0 });
  });
});
