// The admin API's edges: authentication, roles (a non-member gets 404), spec errors naming the field,
// problem+json, limits, health and metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_PACKAGE, startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const WS = 'it-admin';
let gw: TestGateway;
let alice: string;
let bob: string;
let carol: string;
let mallory: string;
let admin: string;

beforeAll(async () => {
  gw = await startTestGateway();
  [alice, bob, carol, mallory, admin] = await Promise.all([gw.token('alice'), gw.token('bob'), gw.token('carol'), gw.token('mallory'), gw.token('root', true)]);
  const r = await gw.api('POST', '/api/v1/workspaces', alice, {
    name: WS,
    servers: [{ name: 'probe', package: PROBE_PACKAGE }],
    members: { bob: 'member', carol: 'viewer' },
  });
  expect(r.status).toBe(201);
  await gw.waitStatus(WS, alice, ['ready']);
});

afterAll(async () => {
  await gw?.remove(WS, alice).catch(() => undefined);
  await gw?.close();
});

describe('authentication', () => {
  it('answers 401 with a challenge for a missing, malformed or forged token', async () => {
    const none = await gw.api('GET', '/api/v1/workspaces');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect((await gw.api('GET', '/api/v1/workspaces', 'not-a-jwt')).status).toBe(401);
    const [h, p] = alice.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'root', scope: 'mcpx:admin' })).toString('base64url')}.${alice.split('.')[2]}`;
    expect((await gw.api('GET', '/api/v1/workspaces', forged)).status).toBe(401);
  });

  it('ignores a token in the query string', async () => {
    const r = await gw.api('GET', `/api/v1/workspaces?access_token=${alice}`);
    expect(r.status).toBe(401);
  });
});

describe('roles', () => {
  it('hides a workspace from a non-member with 404, everywhere', async () => {
    for (const [method, path] of [
      ['GET', `/api/v1/workspaces/${WS}`],
      ['GET', `/api/v1/workspaces/${WS}/events`],
      ['DELETE', `/api/v1/workspaces/${WS}`],
      ['GET', `/api/v1/workspaces/nonexistent`],
    ] as const) {
      const r = await gw.api<{ detail: string }>(method, path, mallory);
      expect(r.status).toBe(404);
    }
    expect((await gw.api<unknown[]>('GET', '/api/v1/workspaces', mallory)).body).toEqual([]);
  });

  it('lets a member read and see logs but not manage; a viewer read only', async () => {
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}`, bob)).status).toBe(200);
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}/logs`, bob)).status).toBe(200);
    expect((await gw.api('DELETE', `/api/v1/workspaces/${WS}`, bob)).status).toBe(403);
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}/members/mallory`, bob, { role: 'member' })).status).toBe(403);
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}`, carol)).status).toBe(200);
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}/logs`, carol)).status).toBe(403);
  });

  it('lets the owner manage members and an administrator see everything', async () => {
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}/members/dave`, alice, { role: 'viewer' })).status).toBe(200);
    const members = await gw.api<{ user: string; role: string }[]>('GET', `/api/v1/workspaces/${WS}/members`, alice);
    expect(members.body).toContainEqual({ user: 'dave', role: 'viewer' });
    expect((await gw.api('PUT', `/api/v1/workspaces/${WS}/members/dave`, alice, { role: 'god' })).status).toBe(400);
    expect((await gw.api('DELETE', `/api/v1/workspaces/${WS}/members/dave`, alice)).status).toBe(204);
    const all = await gw.api<{ name: string }[]>('GET', '/api/v1/workspaces', admin);
    expect(all.body.map((w) => w.name)).toContain(WS);
    expect((await gw.api('GET', `/api/v1/workspaces/${WS}`, admin)).status).toBe(200);
  });
});

describe('spec errors', () => {
  const cases: [string, unknown, string][] = [
    ['an unknown key', { name: 'it-bad', servers: [{ name: 'a', package: 'x' }], bogus: true }, 'bogus: unknown key "bogus"'],
    ['a bad name', { name: 'Bad Name', servers: [{ name: 'a', package: 'x' }] }, 'name:'],
    ['negative memory', { name: 'it-bad', servers: [{ name: 'a', package: 'x' }], resources: { memory: -1 } }, 'resources.memory:'],
    ['a bind mount', { name: 'it-bad', servers: [{ name: 'a', package: 'x', mounts: ['/:/host'] }] }, 'servers[0].mounts: unknown key "mounts"'],
    ['an egress entry without a port', { name: 'it-bad', servers: [{ name: 'a', package: 'x' }], network: { egress: ['example.com'] } }, 'network'],
  ];
  it.each(cases)('refuses %s with a problem naming the field', async (_what, spec, field) => {
    const r = await gw.api<{ status: number; title: string; detail: string; errors: string[] }>('POST', '/api/v1/workspaces', alice, spec);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body.errors.join('\n')).toContain(field);
    expect(r.body.detail).toContain(field);
    expect((await gw.api('GET', '/api/v1/workspaces/it-bad', alice)).status).toBe(404);
  });

  it('refuses gvisor clearly when the engine has no runsc', async () => {
    const runtimes = await import('./helpers/docker.js').then(async (m) => Object.keys(((await m.docker.info()) as { Runtimes: object }).Runtimes));
    const r = await gw.api<{ detail: string }>('POST', '/api/v1/workspaces', alice, { name: 'it-gv', servers: [{ name: 'a', package: PROBE_PACKAGE }], isolation: 'gvisor' });
    if (runtimes.includes('runsc')) {
      expect(r.status).toBe(201);
      await gw.remove('it-gv', alice);
    } else {
      expect(r.status).toBe(400);
      expect(r.body.detail).toContain('isolation: gvisor needs the runsc runtime');
    }
  });

  it('refuses bad JSON, a duplicate name, an oversized body and a wrong method', async () => {
    expect((await gw.api('POST', '/api/v1/workspaces', alice, '{not json')).status).toBe(400);
    expect((await gw.api('POST', '/api/v1/workspaces', alice, { name: WS, servers: [{ name: 'a', package: 'x' }] })).status).toBe(409);
    const huge = JSON.stringify({ name: 'it-huge', servers: [{ name: 'a', package: 'x', env: { BIG: 'x'.repeat(5 * 1024 * 1024) } }] });
    expect((await gw.api('POST', '/api/v1/workspaces', alice, huge)).status).toBe(413);
    expect((await gw.api('PATCH', `/api/v1/workspaces/${WS}`, alice, {})).status).toBe(405);
    expect((await gw.api('GET', '/api/v1/nothing', alice)).status).toBe(404);
  });
});

describe('health and metrics', () => {
  it('reports health and Prometheus metrics', async () => {
    const h = await gw.api<{ status: string }>('GET', '/healthz');
    expect(h.status).toBe(200);
    expect(h.body.status).toBe('ok');
    const m = await fetch(`${gw.url}/metrics`);
    const text = await m.text();
    expect(m.headers.get('content-type')).toContain('text/plain');
    expect(text).toMatch(/mcpx_workspaces\{status="ready"\} [1-9]/);
    expect(text).toContain('mcpx_http_requests_total');
  });
});
