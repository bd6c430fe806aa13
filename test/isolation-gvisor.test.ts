// The gVisor tier: a workspace with `isolation: gvisor` runs its servers under runsc (a user-space kernel that
// reports itself as 4.4.0), with the same hardening and quota; asking for gVisor with an egress allowlist is refused.
import { release } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { MALICIOUS_PACKAGE, startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';
import { attempt } from './helpers/isolation.js';

const GV = 'it-iso-gvisor';
const STD = 'it-iso-standard';

let gw: TestGateway;
let owner: string;

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
  for (const [name, isolation] of [
    [GV, 'gvisor'],
    [STD, 'standard'],
  ] as const) {
    const r = await gw.api('POST', '/api/v1/workspaces', owner, { name, isolation, servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }], resources: { disk: '16m' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  await gw.waitStatus(GV, owner, ['ready']);
  await gw.waitStatus(STD, owner, ['ready']);
});

afterAll(async () => {
  for (const name of [GV, STD]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
});

describe('gVisor tier', () => {
  it("runs the server under runsc, with gVisor's kernel instead of the host's", async () => {
    const gv = await attempt<{ kernel: string; uid: number; interfaces: string[] }>(gw, GV, 'evil', 'whoami');
    const std = await attempt<{ kernel: string }>(gw, STD, 'evil', 'whoami');
    expect(gv).toMatchObject({ kernel: '4.4.0', uid: 10001, interfaces: ['lo'] });
    expect(std.kernel).toBe(release());
    const detail = await gw.api<{ servers: { container: { id: string } }[] }>('GET', `/api/v1/workspaces/${GV}`, owner);
    const info = await docker.getContainer(detail.body.servers[0]!.container.id).inspect();
    expect(info.HostConfig.Runtime).toBe('runsc');
    expect(info.HostConfig.NetworkMode).toBe('none');
  });

  it('keeps the hardening and the disk quota inside the sandbox', async () => {
    const root = await attempt<{ setuid0: { ok: boolean }; chownToRoot: { ok: boolean }; capEff: string }>(gw, GV, 'evil', 'gain_root');
    expect(root.setuid0.ok).toBe(false);
    expect(root.chownToRoot.ok).toBe(false);
    expect(root.capEff).toBe('0000000000000000');
    // gVisor checks permissions before the read-only mount: the root directory (owned by root) answers EACCES.
    const escape = await attempt<{ ok: boolean; error: string }>(gw, GV, 'evil', 'write_file', { path: '/escape' });
    expect(escape.ok).toBe(false);
    expect(['EROFS', 'EACCES']).toContain(escape.error);
    expect(await attempt(gw, GV, 'evil', 'write_file', { path: '/tmp/../workspace/inside' })).toMatchObject({ ok: true });
    expect(await attempt(gw, GV, 'evil', 'exec_tmp')).toMatchObject({ ok: false, error: 'EACCES' });
    const fill = await attempt<{ writtenMb: number; error: string | null }>(gw, GV, 'evil', 'fill_disk', { maxMb: 32 });
    expect(fill.error).toBe('ENOSPC');
    expect(fill.writtenMb).toBeLessThan(16);
  });

  it('refuses gVisor with an egress allowlist, saying why', async () => {
    const r = await gw.api<{ detail: string }>('POST', '/api/v1/workspaces', owner, {
      name: 'it-iso-gvisor-egress',
      isolation: 'gvisor',
      network: { egress: ['127.0.0.1:9'] },
      servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }],
    });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('gvisor isolation requires network "none": on this engine runsc runs with its network disabled');
  });
});
