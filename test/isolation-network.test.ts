// Network isolation shown by a malicious server: in egress mode it reaches exactly its allowlist through the
// gateway's proxy; the host (through the bridge address), the gateway's ports, other workspaces and outside names
// all fail. Where the difference is the point, the same attempt succeeds from a container mcpx did not harden.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { MALICIOUS_PACKAGE, startTestGateway, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';
import { attempt, attemptUnhardened, hostServer, iptablesRules, plainNetwork } from './helpers/isolation.js';

const A = 'it-iso-net-a';
const B = 'it-iso-net-b';
const NONE = 'it-iso-net-none';

interface Conn {
  ok: boolean;
  error?: string;
  data?: string;
  status?: number;
  host?: string | null;
}

let gw: TestGateway;
let owner: string;
let allowed: Awaited<ReturnType<typeof hostServer>>;
let offList: Awaited<ReturnType<typeof hostServer>>;
let image: string;
let plain: Awaited<ReturnType<typeof plainNetwork>>;
let uidA: string;

const spec = (name: string, egress: string[] | 'none') => ({
  name,
  servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }],
  network: egress === 'none' ? 'none' : { egress },
});

beforeAll(async () => {
  // Both listen on every address, as many host services do: the firewall, not the bind address, must keep them out.
  allowed = await hostServer('allowed-target', '0.0.0.0');
  offList = await hostServer('host-service', '0.0.0.0');
  // The gateway listens on every address too, so that only the firewall stands between a container and its API.
  gw = await startTestGateway({ host: '0.0.0.0' });
  owner = await gw.token('alice');
  const apiPort = Number(new URL(gw.url).port);
  for (const [name, egress] of [
    [A, [`127.0.0.1:${allowed.port}`, `127.0.0.1:${apiPort}`]],
    [B, [`127.0.0.1:${allowed.port}`]],
    [NONE, 'none'],
  ] as const) {
    const r = await gw.api('POST', '/api/v1/workspaces', owner, spec(name, egress as string[] | 'none'));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  for (const name of [A, B, NONE]) await gw.waitStatus(name, owner, ['ready']);
  const detail = await gw.api<{ servers: { image: string }[] }>('GET', `/api/v1/workspaces/${A}`, owner);
  image = detail.body.servers[0]!.image;
  uidA = gw.gateway.manager.uidOf(A)!;
  plain = await plainNetwork('mcpx-it-iso-plain');
});

afterAll(async () => {
  for (const name of [A, B, NONE]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
  await plain?.remove().catch(() => undefined);
  await allowed?.close();
  await offList?.close();
});

const events = async (ws: string) => (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${ws}/events`, owner)).body;

describe('egress mode', () => {
  it('gives each egress workspace its own internal network, with the proxy in its environment', async () => {
    const a = await attempt<{ interfaces: string[]; gateway: string; proxy: string; addresses: string[] }>(gw, A, 'evil', 'whoami');
    const b = await attempt<{ gateway: string; addresses: string[] }>(gw, B, 'evil', 'whoami');
    expect(a.interfaces).toEqual(['eth0', 'lo']);
    expect(a.proxy).toBe(`http://${a.gateway}:3128`);
    expect(a.gateway).not.toBe(b.gateway);
    const nets = await docker.listNetworks({ filters: { label: [`mcpx.workspace=${A}`] } });
    expect(nets).toHaveLength(1);
    const info = (await docker.getNetwork(nets[0]!.Id).inspect()) as { Internal: boolean; Labels: Record<string, string> };
    expect(info.Internal).toBe(true);
    expect(info.Labels).toMatchObject({ 'mcpx.managed': 'true', 'mcpx.workspace': A, 'mcpx.workspace-uid': uidA, 'mcpx.gateway': expect.stringMatching(/^[0-9a-f]{12}$/) as unknown });
  });

  it('reaches an allowlisted destination through the proxy, and the connection is recorded with its bytes', async () => {
    const tunnel = await attempt<Conn>(gw, A, 'evil', 'via_proxy', { target: `127.0.0.1:${allowed.port}` });
    expect(tunnel).toMatchObject({ ok: true, status: 200 });
    expect(tunnel.data).toContain('allowed-target GET /via-proxy');
    const plainHttp = await attempt<Conn>(gw, A, 'evil', 'http_via_proxy', { url: `http://127.0.0.1:${allowed.port}/absolute` });
    expect(plainHttp.data).toContain('allowed-target GET /absolute');
    const ev = await waitFor('egress_allowed events', async () => {
      const list = (await events(A)).filter((e) => e.type === 'egress_allowed');
      return list.length >= 2 ? list : undefined;
    }, 10_000);
    expect(ev[0]!.server).toBe('evil');
    expect(ev[0]!.detail).toMatchObject({ verdict: 'allowed', destination: `127.0.0.1:${allowed.port}`, address: '127.0.0.1', method: 'CONNECT' });
    expect(ev[0]!.detail!.bytesIn as number).toBeGreaterThan(0);
    expect(ev[0]!.detail!.bytesOut as number).toBeGreaterThan(0);
  });

  it('is refused a destination off its allowlist, which answers anyone not fenced in (recorded as denied)', async () => {
    const r = await attempt<Conn>(gw, A, 'evil', 'via_proxy', { target: `127.0.0.1:${offList.port}` });
    expect(r).toMatchObject({ ok: false, status: 403 });
    expect(r.data).toContain('not on the allowlist');
    const h = await attempt<Conn>(gw, A, 'evil', 'http_via_proxy', { url: `http://127.0.0.1:${offList.port}/` });
    expect(h.status).toBe(403);
    // Unprotected: the same destination answers a client that is not behind the proxy.
    expect(await (await fetch(`http://127.0.0.1:${offList.port}/`)).text()).toContain('host-service');
    const denied = await waitFor('egress_denied event', async () => (await events(A)).find((e) => e.type === 'egress_denied'), 10_000);
    expect(denied.detail).toMatchObject({ verdict: 'denied', destination: `127.0.0.1:${offList.port}`, reason: 'not on the allowlist', bytesIn: 0 });
  });

  it('cannot reach the host through the bridge address, on any port, while an unhardened container can', async () => {
    const apiPort = Number(new URL(gw.url).port);
    for (const port of [offList.port, allowed.port, apiPort]) {
      const r = await attempt<Conn>(gw, A, 'evil', 'connect_gateway', { port });
      expect(r.ok, `port ${port}: ${JSON.stringify(r)}`).toBe(false);
      expect(r.error).toBe('EHOSTUNREACH');
    }
    const unprotected = await attemptUnhardened<Conn>(image, 'connect_gateway', { port: offList.port }, { NetworkMode: plain.id });
    expect(unprotected.ok).toBe(true);
    expect(unprotected.data).toContain('host-service');
    expect(unprotected.host).toBe(plain.gateway);
    const api = await attemptUnhardened<Conn>(image, 'connect_gateway', { port: apiPort, send: 'GET /healthz HTTP/1.0\r\n\r\n' }, { NetworkMode: plain.id });
    expect(api.data).toMatch(/^HTTP\/1\.1 200/);
  });

  it("refuses the gateway's own port through the proxy even when the spec allowlists it", async () => {
    const apiPort = Number(new URL(gw.url).port);
    const r = await attempt<Conn>(gw, A, 'evil', 'via_proxy', { target: `127.0.0.1:${apiPort}` });
    expect(r).toMatchObject({ ok: false, status: 403 });
    expect(r.data).toContain("the gateway's own port");
  });

  it('cannot resolve outside names; an outside name through the proxy is refused before any lookup', async () => {
    const r = await attempt<Conn>(gw, A, 'evil', 'resolve', { name: 'example.com' });
    expect(r.ok).toBe(false);
    expect(['EAI_AGAIN', 'ENOTFOUND', 'TIMEOUT']).toContain(r.error);
    const p = await attempt<Conn>(gw, A, 'evil', 'via_proxy', { target: 'example.com:443' });
    expect(p).toMatchObject({ ok: false, status: 403 });
    expect(p.data).toContain('not on the allowlist');
  });

  it("cannot reach another workspace's containers, directly or through the proxy", async () => {
    const listening = await attempt<{ ok: boolean; addresses: string[] }>(gw, B, 'evil', 'listen', { port: 7000 });
    expect(listening.ok).toBe(true);
    const target = listening.addresses[0]!;
    // The listener is there: B reaches it on its own address.
    expect(await attempt<Conn>(gw, B, 'evil', 'connect', { host: target, port: 7000, send: '' })).toMatchObject({ ok: true, data: expect.stringContaining('hello') as unknown });
    const direct = await attempt<Conn>(gw, A, 'evil', 'connect', { host: target, port: 7000, send: '' });
    expect(direct.ok).toBe(false);
    expect(['EHOSTUNREACH', 'TIMEOUT', 'ENETUNREACH']).toContain(direct.error);
    const proxied = await attempt<Conn>(gw, A, 'evil', 'via_proxy', { target: `${target}:7000` });
    expect(proxied.status).toBe(403);
    // Nor B's proxy: only a workspace's own proxy address is open from its bridge.
    const bGateway = (await attempt<{ gateway: string }>(gw, B, 'evil', 'whoami')).gateway;
    expect(await attempt<Conn>(gw, B, 'evil', 'connect', { host: bGateway, port: 3128, send: '' })).toMatchObject({ ok: true });
    expect(await attempt<Conn>(gw, A, 'evil', 'connect', { host: bGateway, port: 3128, send: '' })).toMatchObject({ ok: false, error: 'EHOSTUNREACH' });
  });

  it('fences the bridge with labelled rules: the proxy port is the only thing accepted', () => {
    const rules = iptablesRules().split('\n').filter((l) => l.includes(`mcpx-ws=${uidA}`));
    expect(rules.filter((l) => l.includes('-j ACCEPT'))).toEqual([expect.stringMatching(/--dport 3128/)]);
    expect(rules.filter((l) => l.includes('-j REJECT')).length).toBeGreaterThanOrEqual(3);
  });
});

describe('network none', () => {
  it('has loopback only: the host, the proxy and names are all out of reach', async () => {
    const who = await attempt<{ interfaces: string[]; gateway: string | null; proxy: string | null }>(gw, NONE, 'evil', 'whoami');
    expect(who).toMatchObject({ interfaces: ['lo'], gateway: null, proxy: null });
    const r = await attempt<Conn>(gw, NONE, 'evil', 'connect', { host: plain.gateway, port: offList.port });
    expect(r).toMatchObject({ ok: false, error: 'ENETUNREACH' });
    expect((await attempt<Conn>(gw, NONE, 'evil', 'resolve', { name: 'example.com' })).ok).toBe(false);
    expect(await docker.listNetworks({ filters: { label: [`mcpx.workspace=${NONE}`] } })).toHaveLength(0);
  });
});

describe('network lifecycle', () => {
  it('updates the allowlist in place, without recreating the containers', async () => {
    const before = (await gw.api<{ servers: { container: { id: string } }[] }>('GET', `/api/v1/workspaces/${B}`, owner)).body.servers[0]!.container.id;
    expect((await attempt<Conn>(gw, B, 'evil', 'via_proxy', { target: `127.0.0.1:${offList.port}` })).status).toBe(403);
    const r = await gw.api('PUT', `/api/v1/workspaces/${B}`, owner, spec(B, [`127.0.0.1:${allowed.port}`, `127.0.0.1:${offList.port}`]));
    expect(r.status).toBe(200);
    await gw.waitStatus(B, owner, ['ready']);
    await gw.gateway.manager.settled(B);
    expect((await attempt<Conn>(gw, B, 'evil', 'via_proxy', { target: `127.0.0.1:${offList.port}` })).status).toBe(200);
    const after = (await gw.api<{ servers: { container: { id: string } }[] }>('GET', `/api/v1/workspaces/${B}`, owner)).body.servers[0]!.container.id;
    expect(after).toBe(before);
  });

  it('removes the network, its proxy and its rules on delete; orphaned rules are removed at start-up', async () => {
    await gw.remove(A, owner);
    expect(await docker.listNetworks({ filters: { label: [`mcpx.workspace-uid=${uidA}`] } })).toHaveLength(0);
    expect(iptablesRules()).not.toContain(uidA);
    // A rule left by this gateway dying mid-delete goes at the next start; another gateway's rule stays.
    const gatewayId = readFileSync(join(gw.dataDir, 'gateway-id'), 'utf8').trim();
    const ghost = '00000000-dead-4bad-8bad-000000000000';
    const foreign = '00000000-f0e1-4bad-8bad-000000000000';
    const rule = (uid: string, owner: string) => ['MCPX-INPUT', '-i', 'mcpx-00000000de', '-m', 'comment', '--comment', `mcpx-ws=${uid}@${owner}`, '-j', 'REJECT'];
    execFileSync('iptables', ['-w', '5', '-A', ...rule(ghost, gatewayId)]);
    execFileSync('iptables', ['-w', '5', '-A', ...rule(foreign, 'ffffffffffff')]);
    try {
      expect(iptablesRules()).toContain(ghost);
      const r = await gw.gateway.manager.reconcile();
      expect(r.removedRules).toBe(1);
      expect(iptablesRules()).not.toContain(ghost);
      expect(iptablesRules()).toContain(foreign);
    } finally {
      execFileSync('iptables', ['-w', '5', '-D', ...rule(foreign, 'ffffffffffff')]);
    }
    await gw.waitStatus(B, owner, ['ready']);
  });

  it('goes back to network none on apply: the network, its proxy and its rules go; a wake-up later brings none back', async () => {
    const uidB = gw.gateway.manager.uidOf(B)!;
    const networksOfB = async () => docker.listNetworks({ filters: { label: [`mcpx.workspace-uid=${uidB}`] } });
    await gw.gateway.manager.settled(B);
    expect(await networksOfB()).toHaveLength(1);
    expect(iptablesRules()).toContain(uidB);
    expect((await gw.api('PUT', `/api/v1/workspaces/${B}`, owner, spec(B, 'none'))).status).toBe(200);
    await gw.waitStatus(B, owner, ['ready']);
    await gw.gateway.manager.settled(B);
    expect(await networksOfB()).toHaveLength(0);
    expect(iptablesRules()).not.toContain(uidB);
    expect((await docker.getContainer(`mcpx-${B}-evil`).inspect()).HostConfig.NetworkMode).toBe('none');

    expect(await gw.gateway.manager.hibernateNow(B)).toBe(true);
    // A request's arrival wakes it (what the MCP endpoint does).
    await gw.gateway.manager.activity(B, 1);
    void gw.gateway.manager.activity(B, -1);
    expect((await events(B)).at(-1)?.type).toBe('workspace_woken');
    expect(await networksOfB()).toHaveLength(0);
    expect((await docker.getContainer(`mcpx-${B}-evil`).inspect()).State.Running).toBe(true);
  });
});
