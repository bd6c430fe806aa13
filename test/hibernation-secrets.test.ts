// A secret set while a workspace hibernates starts nothing; the next wake-up runs every server with the new value:
// a launcher server reads it at start, an `image` server (secrets in its environment) gets a new container. A secret
// set while it runs recreates that container from the same image and resolves no package again.
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { REPO, startTestGateway, tempDir, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway, WorkspaceDetail } from './helpers/gateway.js';

const WS = 'it-hibernate-secrets';
const sha = (v: string) => createHash('sha256').update(v).digest('hex');
let gw: TestGateway;
let owner: string;
// A copy of the probe: a `file:` package is hashed at each resolution, so editing it shows whether one happened.
const probeDir = join(tempDir('probe-copy'), 'probe-server');
cpSync(join(REPO, 'test/fixtures/probe-server'), probeDir, { recursive: true });

const states = async () => (await docker.listContainers({ all: true, filters: { label: [`mcpx.workspace=${WS}`] } })).map((c) => c.State);
const status = async () => (await gw.api<{ status: string }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.status;
const setSecret = async (name: string, value: string) => expect((await gw.api('PUT', `/api/v1/workspaces/${WS}/secrets/${name}`, owner, { value })).status).toBe(204);

/** The sha256 of a secret as the server's process sees it in its environment (null when unset). */
async function seen(server: string, secret: string): Promise<string | null> {
  const client = new Client({ name: 'secret-check', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/${WS}`), { requestInit: { headers: { authorization: `Bearer ${owner}` } } }));
  try {
    const r = (await client.callTool({ name: `${server}__secret_info`, arguments: { name: secret } })) as { content: { text: string }[] };
    return (JSON.parse(r.content[0]!.text) as { env: string | null }).env;
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
  // The probe's application image, built by a first create, is then also used as a plain `image` server.
  const first = { name: WS, servers: [{ name: 'pkg', package: `file:${probeDir}`, secrets: ['PKG_TOKEN'] }], hibernate: { after: 'never' } };
  expect((await gw.api('POST', '/api/v1/workspaces', owner, first)).status).toBe(201);
  const image = (await gw.waitStatus(WS, owner, ['ready'])).servers[0] as WorkspaceDetail['servers'][number] & { image: string };
  expect(image.image).toMatch(/^mcpx-app:/);
  const both = { ...first, servers: [...first.servers, { name: 'img', image: image.image, secrets: ['IMG_TOKEN'] }] };
  expect((await gw.api('PUT', `/api/v1/workspaces/${WS}`, owner, both)).status).toBe(200);
  await gw.waitStatus(WS, owner, ['ready']);
  await setSecret('PKG_TOKEN', 'sv-pkg-before-1a2b3c');
  await setSecret('IMG_TOKEN', 'sv-img-before-4d5e6f');
  await gw.gateway.manager.settled(WS);
  await gw.waitStatus(WS, owner, ['ready']);
});

afterAll(async () => {
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
  rmSync(join(probeDir, '..'), { recursive: true, force: true });
});

describe('a secret change while hibernating', () => {
  it('starts no container and leaves the workspace asleep', async () => {
    expect(await seen('img', 'IMG_TOKEN')).toBe(sha('sv-img-before-4d5e6f'));
    expect(await seen('pkg', 'PKG_TOKEN')).toBe(sha('sv-pkg-before-1a2b3c'));
    expect(await gw.gateway.manager.hibernateNow(WS)).toBe(true);
    expect(await states()).toEqual(['exited', 'exited']);

    const mark = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body.at(-1)!.id;
    await setSecret('IMG_TOKEN', 'sv-img-after-7a8b9c');
    await setSecret('PKG_TOKEN', 'sv-pkg-after-0d1e2f');
    await gw.gateway.manager.settled(WS);
    // Give a wrongly started container the time to show up.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await states()).toEqual(['exited', 'exited']);
    expect(await status()).toBe('hibernating');
    const after = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events?after=${mark}`, owner)).body.map((e) => e.type);
    expect(after).not.toContain('container_started');
  });

  it('wakes with the new values: the launcher server reads them at start, the image server gets a new container', async () => {
    const before = await docker.getContainer(`mcpx-${WS}-img`).inspect();
    expect(await seen('img', 'IMG_TOKEN')).toBe(sha('sv-img-after-7a8b9c'));
    expect(await seen('pkg', 'PKG_TOKEN')).toBe(sha('sv-pkg-after-0d1e2f'));
    expect(await status()).toBe('ready');
    const now = await docker.getContainer(`mcpx-${WS}-img`).inspect();
    expect(now.Id).not.toBe(before.Id);
    expect(now.Image).toBe(before.Image);
    expect(await waitFor('both running', async () => ((await states()).every((s) => s === 'running') ? true : undefined), 10_000)).toBe(true);
  });
});

describe('a secret change while awake', () => {
  it('recreates the image server from the same image, resolving no package', async () => {
    const pkg = (await docker.getContainer(`mcpx-${WS}-pkg`).inspect()).Id;
    const img = await docker.getContainer(`mcpx-${WS}-img`).inspect();
    // The package's content changes: resolving it again would build a new image and replace its server.
    const server = join(probeDir, 'server.js');
    writeFileSync(server, readFileSync(server, 'utf8').replace("version: '1.0.0'", "version: '1.0.1-edited'"));
    const mark = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events`, owner)).body.at(-1)!.id;
    await setSecret('IMG_TOKEN', 'sv-img-awake-5c6d7e');
    await gw.gateway.manager.settled(WS);
    expect(await seen('img', 'IMG_TOKEN')).toBe(sha('sv-img-awake-5c6d7e'));
    const now = await docker.getContainer(`mcpx-${WS}-img`).inspect();
    expect(now.Id).not.toBe(img.Id);
    expect(now.Image).toBe(img.Image);
    expect((await docker.getContainer(`mcpx-${WS}-pkg`).inspect()).Id).toBe(pkg);
    const detail = await gw.api<{ servers: { name: string; serverInfo?: { version: string } }[] }>('GET', `/api/v1/workspaces/${WS}`, owner);
    expect(detail.body.servers.find((s) => s.name === 'pkg')?.serverInfo?.version).toBe('1.0.0');
    const built = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${WS}/events?after=${mark}`, owner)).body.filter((e) => e.type === 'image_built');
    expect(built.length).toBeGreaterThan(0);
    expect(built.every((e) => e.detail?.recorded === true)).toBe(true);
  });
});
