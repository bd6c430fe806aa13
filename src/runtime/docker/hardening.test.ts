import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../config/spec.js';
import type { WorkspaceSpec } from '../../config/spec.js';
import { hardenedContainerConfig } from './hardening.js';
import type { ContainerPlan } from './hardening.js';

function plan(overrides: Partial<WorkspaceSpec> = {}, server: Record<string, unknown> = {}): ContainerPlan {
  const r = validateSpec({ name: 'demo', servers: [{ name: 'srv', package: 'x', ...server }], ...overrides });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return {
    workspace: 'demo',
    workspaceUid: '0123456789abcdef',
    server: r.spec.servers[0]!,
    resources: r.spec.resources,
    isolation: r.spec.isolation,
    image: 'mcpx-app:abc',
    entrypoint: ['/usr/local/bin/node', '/app/x.js'],
    volumeName: 'mcpx-demo-01234567',
    apiEndpoint: 'http://127.0.0.1:7470/mcp/demo',
    launcher: false,
  };
}

describe('hardenedContainerConfig', () => {
  it('applies every default hardening property', () => {
    const c = hardenedContainerConfig(plan());
    const h = c.HostConfig!;
    expect(c.name).toBe('mcpx-demo-srv');
    expect(c.User).toBe('10001:10001');
    expect(h.ReadonlyRootfs).toBe(true);
    expect(h.CapDrop).toEqual(['ALL']);
    expect(h.CapAdd).toEqual([]);
    expect(h.Privileged).toBe(false);
    expect(h.SecurityOpt).toEqual(['no-new-privileges:true']);
    expect(JSON.stringify(h.SecurityOpt)).not.toContain('unconfined');
    expect(h.NanoCpus).toBe(500_000_000);
    expect(h.Memory).toBe(512 * 1024 ** 2);
    expect(h.MemorySwap).toBe(h.Memory);
    expect(h.MemoryReservation).toBe(64 * 1024 ** 2);
    expect(h.CpuShares).toBe(102);
    expect(h.PidsLimit).toBe(64);
    expect(h.Ulimits).toEqual([{ Name: 'nofile', Soft: 1024, Hard: 1024 }]);
    expect(h.Tmpfs).toEqual({
      '/tmp': `rw,noexec,nosuid,nodev,size=${100 * 1024 ** 2}`,
      '/var/tmp': `rw,noexec,nosuid,nodev,size=${50 * 1024 ** 2}`,
    });
    expect(h.Mounts).toEqual([{ Type: 'volume', Source: 'mcpx-demo-01234567', Target: '/workspace', ReadOnly: false }]);
    expect(h.Binds).toEqual([]);
    expect(h.NetworkMode).toBe('none');
    expect(c.NetworkDisabled).toBe(true);
    expect(h.Runtime).toBeUndefined();
    expect(h.LogConfig?.Type).toBe('none');
    expect(c.Labels).toMatchObject({ 'mcpx.managed': 'true', 'mcpx.workspace': 'demo', 'mcpx.server': 'srv' });
    expect(c.Labels!['mcpx.gateway']).toBeUndefined();
    expect(hardenedContainerConfig({ ...plan(), gatewayId: '0123456789ab' }).Labels).toMatchObject({ 'mcpx.gateway': '0123456789ab' });
  });

  it('builds the environment from the spec and the gateway variables only', () => {
    process.env.MCPX_CANARY_UNIT = 'leak';
    const c = hardenedContainerConfig(plan({}, { env: { LOG_LEVEL: 'debug' } }));
    expect([...c.Env!].sort()).toEqual(
      [
        'LOG_LEVEL=debug',
        'WORKSPACE_ID=demo',
        'CONTAINER_ID=mcpx-demo-srv',
        'MCPX_API_ENDPOINT=http://127.0.0.1:7470/mcp/demo',
        'PATH=/usr/local/bin:/usr/bin:/bin',
      ].sort(),
    );
    delete process.env.MCPX_CANARY_UNIT;
  });

  it('follows the spec limits and the gvisor tier', () => {
    const c = hardenedContainerConfig({
      ...plan({ resources: { cpus: 1.5, memory: '256m', pids: 32, nofile: 512, disk: '2g', tmp: '10m' } as never }),
      isolation: 'gvisor',
    });
    expect(c.HostConfig!.NanoCpus).toBe(1_500_000_000);
    expect(c.HostConfig!.Memory).toBe(256 * 1024 ** 2);
    expect(c.HostConfig!.PidsLimit).toBe(32);
    expect(c.HostConfig!.Tmpfs!['/tmp']).toContain(`size=${10 * 1024 ** 2}`);
    expect(c.HostConfig!.Runtime).toBe('runsc');
  });

  it('joins the workspace network with the proxy settings in egress mode', () => {
    const c = hardenedContainerConfig({ ...plan({}, { env: { HTTP_PROXY: 'http://elsewhere:1' } }), networkName: 'mcpx-demo-0123456789', proxyUrl: 'http://172.20.0.1:3128' });
    expect(c.HostConfig!.NetworkMode).toBe('mcpx-demo-0123456789');
    expect(c.NetworkDisabled).toBe(false);
    expect(c.HostConfig!.Sysctls).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '1' });
    expect(c.HostConfig!.DnsOptions).toEqual(['timeout:1', 'attempts:1']);
    expect(c.Env).toEqual(
      expect.arrayContaining([
        'HTTP_PROXY=http://172.20.0.1:3128',
        'HTTPS_PROXY=http://172.20.0.1:3128',
        'http_proxy=http://172.20.0.1:3128',
        'https_proxy=http://172.20.0.1:3128',
        'NO_PROXY=localhost,127.0.0.1,::1',
      ]),
    );
    expect(c.Env).not.toContain('HTTP_PROXY=http://elsewhere:1');
    expect(hardenedContainerConfig(plan()).HostConfig!.Sysctls).toBeUndefined();
    expect(c.Labels!['mcpx.config-hash']).not.toBe(hardenedContainerConfig(plan()).Labels!['mcpx.config-hash']);
  });

  it('gives a config hash that changes with the configuration and only then', () => {
    const a = hardenedContainerConfig(plan());
    const b = hardenedContainerConfig(plan());
    const c = hardenedContainerConfig(plan({}, { args: ['stdio'] }));
    expect(a.Labels!['mcpx.config-hash']).toBe(b.Labels!['mcpx.config-hash']);
    expect(a.Labels!['mcpx.config-hash']).not.toBe(c.Labels!['mcpx.config-hash']);
  });
});
