import { describe, expect, it } from 'vitest';
import type { ProbeReport } from './verify-probe.js';
import { evaluateProbe, failedProbe, PROPERTIES } from './verify-report.js';
import type { Expectation } from './verify-report.js';

const MIB = 1024 ** 2;
const good: ProbeReport = {
  uid: 10001,
  gid: 10001,
  status: { CapEff: '0000000000000000', CapPrm: '0000000000000000', CapBnd: '0000000000000000', CapAmb: '0000000000000000', NoNewPrivs: '1', Seccomp: '2' },
  writeRoot: { ok: false, error: 'EROFS' },
  cgroup: { pidsMax: '64', memoryMax: String(512 * MIB), cpuQuota: '50000', cpuPeriod: '100000' },
  tmpMountOptions: 'rw,nosuid,nodev,noexec,relatime,size=102400k',
  execTmp: { ok: false, error: 'EACCES' },
  interfaces: ['lo'],
  hostAttempts: [{ host: '172.17.0.1', port: 7470, ok: false, error: 'ENETUNREACH' }],
  dns: { ok: false, error: 'EAI_AGAIN' },
  workspace: { fsType: 'ext4', device: '/dev/loop3', totalBytes: 980 * MIB },
  kernel: '6.1.0',
};
const expect0: Expectation = {
  uid: 10001,
  pids: 64,
  memory: 512 * MIB,
  cpus: 0.5,
  disk: 1024 * MIB,
  isolation: 'standard',
  network: 'none',
  hostKernel: '6.1.0',
  offListTarget: 'mcpx-verify.invalid:443',
  engine: { securityOpt: ['no-new-privileges:true'], pidsLimit: 64, memory: 512 * MIB, nanoCpus: 5e8 },
};
const byName = (r: ReturnType<typeof evaluateProbe>) => Object.fromEntries(r.map((p) => [p.property, p]));

describe('evaluateProbe', () => {
  it('holds every property for a hardened container, in a fixed order', () => {
    const r = evaluateProbe(good, expect0);
    expect(r.map((p) => p.property)).toEqual([...PROPERTIES]);
    expect(r.filter((p) => !p.ok)).toEqual([]);
  });

  it('fails each property on the matching weakness', () => {
    const bad: ProbeReport = {
      ...good,
      uid: 0,
      status: { ...good.status, CapEff: '00000000a80425fb', NoNewPrivs: '0' },
      writeRoot: { ok: true },
      cgroup: { pidsMax: 'max', memoryMax: String(2 ** 63 - 1), cpuQuota: '-1', cpuPeriod: '100000' },
      execTmp: { ok: true },
      interfaces: ['eth0', 'lo'],
      hostAttempts: [{ host: '172.17.0.1', port: 7470, ok: false, error: 'ECONNREFUSED' }],
      dns: { ok: true },
      workspace: { fsType: 'overlay', device: 'overlay', totalBytes: 100 * 1024 * MIB },
      kernel: '4.4.0',
    };
    const r = byName(evaluateProbe(bad, { ...expect0, engine: { securityOpt: [] } }));
    for (const p of PROPERTIES) expect(r[p]!.ok, p).toBe(false);
    // A refusal is an answer from the host: the host was reached.
    expect(r['no route to the host']!.detail).toContain('ECONNREFUSED');
  });

  it('takes the engine as witness only where the sandbox hides the facts (gVisor)', () => {
    const gv: ProbeReport = { ...good, status: { CapEff: '0000000000000000', CapPrm: '0000000000000000', CapBnd: '0000000000000000' }, cgroup: {}, kernel: '4.4.0', workspace: { fsType: '9p', device: 'none', totalBytes: 980 * MIB } };
    const r = byName(evaluateProbe(gv, { ...expect0, isolation: 'gvisor', engine: { ...expect0.engine, runtime: 'runsc' } }));
    expect(Object.values(r).filter((p) => !p.ok)).toEqual([]);
    expect(r['pid limit']!.source).toBe('engine');
    expect(r['no privilege escalation']!.source).toBe('engine');
    expect(r.kernel!.detail).toBe('gVisor (4.4.0, runtime runsc)');
    const unsandboxed = byName(evaluateProbe({ ...gv, kernel: '6.1.0' }, { ...expect0, isolation: 'gvisor', engine: { ...expect0.engine, runtime: 'runsc' } }));
    expect(unsandboxed.kernel!.ok).toBe(false);
  });

  it('checks the egress allowlist through the proxy in egress mode', () => {
    const egress = { ...good, interfaces: ['eth0', 'lo'], proxyOffList: { ok: false, status: 403 }, hostAttempts: [{ host: '172.20.0.1', port: 7470, ok: false, error: 'EHOSTUNREACH' }] };
    expect(byName(evaluateProbe(egress, { ...expect0, network: 'egress' }))['egress allowlist']!.ok).toBe(true);
    const open = { ...egress, proxyOffList: { ok: true, status: 200 } };
    expect(byName(evaluateProbe(open, { ...expect0, network: 'egress' }))['egress allowlist']!.ok).toBe(false);
  });

  it('fails every property when the probe cannot run', () => {
    const r = failedProbe('no node in the image');
    expect(r).toHaveLength(PROPERTIES.length);
    expect(r.every((p) => !p.ok && p.detail.includes('no node'))).toBe(true);
  });
});
