// The self-check: `mcpx workspace verify` probes each container and prints the properties that hold (exit 0), and
// fails (exit 1) once one is broken on purpose; `mcpx doctor` reports the engine, runtimes, cgroups and host tools.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALICIOUS_PACKAGE, runCli, startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';
import { iptablesRules } from './helpers/isolation.js';

const NONE = 'it-iso-verify-none';
const EGRESS = 'it-iso-verify-egress';
const GV = 'it-iso-verify-gvisor';
const PROPERTIES = [
  'non-root',
  'read-only root',
  'no capabilities',
  'no privilege escalation',
  'pid limit',
  'memory limit',
  'cpu limit',
  '/tmp not executable',
  'no route to the host',
  'egress allowlist',
  'disk quota',
  'kernel',
];

interface VerifyJson {
  ok: boolean;
  servers: { server: string; ok: boolean; properties: { property: string; ok: boolean; detail: string; source: string }[] }[];
}

let gw: TestGateway;
let owner: string;

const verify = (name: string, json = false) => runCli(['workspace', 'verify', name, '--url', gw.url, '--token', owner, ...(json ? ['-o', 'json'] : [])]);

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
  const specs = [
    { name: NONE, servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }, { name: 'second', package: MALICIOUS_PACKAGE }], resources: { disk: '64m' } },
    { name: EGRESS, servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }], network: { egress: ['127.0.0.1:9'] }, resources: { disk: '64m', pids: 48, memory: '256m', cpus: 0.25 } },
    { name: GV, isolation: 'gvisor', servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }], resources: { disk: '64m' } },
  ];
  for (const s of specs) expect((await gw.api('POST', '/api/v1/workspaces', owner, { ...s, members: { bob: 'member' } })).status).toBe(201);
  for (const s of specs) await gw.waitStatus(s.name, owner, ['ready']);
});

afterAll(async () => {
  for (const name of [NONE, EGRESS, GV]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
});

describe('mcpx workspace verify', () => {
  it('prints every property as holding for each container of a network-none workspace, and exits 0', async () => {
    const r = await verify(NONE);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const server of ['evil', 'second']) {
      for (const p of PROPERTIES) expect(r.stdout).toMatch(new RegExp(`^${server}\\s+${p.replace('/', '\\/')}\\s+holds`, 'm'));
    }
    expect(r.stdout).toContain(`workspace ${NONE}: every property holds`);
    expect(r.stdout).toMatch(/no route to the host\s+holds\s+\d+\.\d+\.\d+\.\d+:\d+ ENETUNREACH/);
  });

  it('checks the limits the spec asked for and the egress allowlist in egress mode', async () => {
    const r = await verify(EGRESS, true);
    expect(r.code).toBe(0);
    const props = Object.fromEntries((JSON.parse(r.stdout) as VerifyJson).servers[0]!.properties.map((p) => [p.property, p]));
    expect(Object.keys(props)).toEqual(PROPERTIES);
    expect(props['pid limit']).toMatchObject({ ok: true, source: 'probe', detail: '48 (want 48)' });
    expect(props['memory limit']).toMatchObject({ ok: true, detail: '256 MiB (want 256 MiB)' });
    expect(props['cpu limit']).toMatchObject({ ok: true, detail: '0.25 CPU (want 0.25)' });
    expect(props['egress allowlist']!.detail).toMatch(/^proxy refused mcpx-verify\.invalid:443; own DNS fails/);
    expect(props['no route to the host']!.detail).toMatch(/EHOSTUNREACH/);
    expect(props['disk quota']!.detail).toMatch(/ext4 on \/dev\/loop\d+/);
  });

  it('reports the gVisor kernel, with the limits vouched for by the engine where the sandbox hides cgroups', async () => {
    const r = await verify(GV, true);
    expect(r.code).toBe(0);
    const props = Object.fromEntries((JSON.parse(r.stdout) as VerifyJson).servers[0]!.properties.map((p) => [p.property, p]));
    expect(props.kernel).toMatchObject({ ok: true, detail: 'gVisor (4.4.0, runtime runsc)' });
    expect(props['pid limit']!.source).toBe('engine');
    expect(Object.values(props).every((p) => p.ok)).toBe(true);
  });

  it('exits non-zero and names the property once the firewall is removed, and holds again after reconcile', async () => {
    const uid = gw.gateway.manager.uidOf(EGRESS)!;
    for (const line of iptablesRules().split('\n').filter((l) => l.includes(uid))) {
      execFileSync('iptables', ['-w', '5', ...line.replace(/^-A/, '-D').replace(/"/g, '').split(' ')]);
    }
    expect(iptablesRules()).not.toContain(uid);
    const broken = await verify(EGRESS);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/evil\s+no route to the host\s+FAILS/);
    expect(broken.stderr).toMatch(/^mcpx: isolation does not hold: evil: no route to the host/);
    await gw.gateway.manager.reconcile();
    await gw.waitStatus(EGRESS, owner, ['ready']);
    await gw.gateway.manager.settled(EGRESS);
    expect(iptablesRules()).toContain(uid);
    expect((await verify(EGRESS)).code).toBe(0);
  });

  it('is for owners: a member gets 403, a stranger 404', async () => {
    expect((await gw.api('POST', `/api/v1/workspaces/${NONE}/verify`, await gw.token('bob'))).status).toBe(403);
    expect((await gw.api('POST', `/api/v1/workspaces/${NONE}/verify`, await gw.token('mallory'))).status).toBe(404);
  });
});

describe('mcpx doctor', () => {
  it('reports the engine, both runtimes, the cgroup version and the host tools, and exits 0 when nothing is missing', async () => {
    const r = await runCli(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^docker engine\s+ok\s+required\s+\d+\.\d+/m);
    expect(r.stdout).toMatch(/^runtime runc\s+ok/m);
    expect(r.stdout).toMatch(/^runtime runsc\s+ok\s+gvisor/m);
    expect(r.stdout).toMatch(/^cgroups\s+ok\s+required\s+version [12], driver \w+/m);
    for (const tool of ['iptables', 'losetup', 'mkfs.ext4', 'loop devices']) expect(r.stdout).toMatch(new RegExp(`^${tool}\\s+ok`, 'm'));
  });

  it('exits non-zero with the fix when the engine does not answer', async () => {
    const r = await runCli(['doctor'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^docker engine\s+missing/m);
    expect(r.stdout).toContain('to fix:');
    expect(r.stdout).toContain('scripts/setup.sh');
    expect(r.stderr).toMatch(/^mcpx: missing: docker engine/);
  });
});
