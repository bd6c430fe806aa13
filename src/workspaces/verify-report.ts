// Turns what the probe saw inside a container (and what the engine says of it) into properties that hold or fail.
// Pure. Fails closed: a property the probe could not observe, and the engine cannot vouch for, fails.
import type { ProbeReport } from './verify-probe.js';

export const PROPERTIES = [
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
] as const;
export type PropertyName = (typeof PROPERTIES)[number];

export interface PropertyResult {
  property: PropertyName;
  ok: boolean;
  detail: string;
  /** Who observed it: the probe inside the container, or the engine's record of the container (gVisor hides cgroups). */
  source: 'probe' | 'engine';
}

export interface Expectation {
  uid: number;
  pids: number;
  memory: number;
  cpus: number;
  disk: number;
  isolation: 'standard' | 'gvisor';
  network: 'none' | 'egress';
  hostKernel: string;
  offListTarget: string;
  /** The container as the engine describes it (docker inspect). */
  engine: { runtime?: string; securityOpt: string[]; pidsLimit?: number; memory?: number; nanoCpus?: number };
}

const ZERO_CAPS = /^0+$/;
/** Failures that mean no packet got an answer from the host; a refusal (RST) means the host was reached. */
const UNREACHED = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'TIMEOUT', 'ETIMEDOUT', 'EACCES', 'EPERM', 'EADDRNOTAVAIL']);

export function failedProbe(reason: string): PropertyResult[] {
  return PROPERTIES.map((property) => ({ property, ok: false, detail: `probe could not run: ${reason}`, source: 'probe' as const }));
}

export function evaluateProbe(r: ProbeReport, e: Expectation): PropertyResult[] {
  const out: PropertyResult[] = [];
  const add = (property: PropertyName, ok: boolean, detail: string, source: 'probe' | 'engine' = 'probe') => out.push({ property, ok, detail, source });
  const gvisor = e.isolation === 'gvisor';

  add('non-root', r.uid !== 0 && r.uid === e.uid, `uid ${r.uid}, gid ${r.gid}`);

  add(
    'read-only root',
    !r.writeRoot.ok && (r.writeRoot.error === 'EROFS' || r.writeRoot.error === 'EACCES'),
    r.writeRoot.ok ? 'a write to / succeeded' : `a write to / failed with ${r.writeRoot.error ?? '?'}`,
  );

  const caps = ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb'].filter((k) => r.status[k] !== undefined);
  const nonZero = caps.filter((k) => !ZERO_CAPS.test(r.status[k]!));
  add(
    'no capabilities',
    caps.includes('CapEff') && nonZero.length === 0,
    caps.length === 0 ? 'capability sets not visible' : nonZero.length === 0 ? `${caps.join('/')} all zero` : `${nonZero.map((k) => `${k} ${r.status[k]}`).join(', ')}`,
  );

  if (r.status.NoNewPrivs !== undefined) {
    add('no privilege escalation', r.status.NoNewPrivs === '1', `NoNewPrivs ${r.status.NoNewPrivs}`);
  } else {
    const set = e.engine.securityOpt.includes('no-new-privileges:true') || e.engine.securityOpt.includes('no-new-privileges');
    add('no privilege escalation', set, `${set ? 'no-new-privileges set' : 'no-new-privileges missing'} (the sandbox does not show NoNewPrivs)`, 'engine');
  }

  const cgroupOrEngine = (property: PropertyName, seen: number | undefined, engine: number | undefined, want: number, fmt: (n: number) => string) => {
    if (seen !== undefined && Number.isFinite(seen)) add(property, seen === want, `${fmt(seen)} (want ${fmt(want)})`);
    else add(property, engine === want, `${engine === undefined ? 'not set' : fmt(engine)} (want ${fmt(want)}; cgroups not visible inside)`, 'engine');
  };
  const num = (s: string | undefined) => (s === undefined || s === 'max' ? undefined : Number(s));
  cgroupOrEngine('pid limit', num(r.cgroup.pidsMax), e.engine.pidsLimit, e.pids, String);
  const mib = (n: number) => `${Math.round(n / 1024 ** 2)} MiB`;
  cgroupOrEngine('memory limit', num(r.cgroup.memoryMax), e.engine.memory, e.memory, mib);

  let cpus: number | undefined;
  if (r.cgroup.cpuQuota && r.cgroup.cpuPeriod && Number(r.cgroup.cpuQuota) > 0) cpus = Number(r.cgroup.cpuQuota) / Number(r.cgroup.cpuPeriod);
  else if (r.cgroup.cpuMax && !r.cgroup.cpuMax.startsWith('max')) {
    const [q, p] = r.cgroup.cpuMax.split(' ').map(Number);
    if (q && p) cpus = q / p;
  }
  if (cpus !== undefined) add('cpu limit', Math.abs(cpus - e.cpus) < 0.011, `${cpus.toFixed(2)} CPU (want ${e.cpus})`);
  else {
    const engineCpus = e.engine.nanoCpus === undefined ? undefined : e.engine.nanoCpus / 1e9;
    add('cpu limit', engineCpus !== undefined && Math.abs(engineCpus - e.cpus) < 0.011, `${engineCpus ?? 'not set'} CPU (want ${e.cpus}; cgroups not visible inside)`, 'engine');
  }

  const noexecMount = r.tmpMountOptions === undefined ? undefined : r.tmpMountOptions.split(',').includes('noexec');
  add(
    '/tmp not executable',
    !r.execTmp.ok && r.execTmp.error === 'EACCES' && noexecMount !== false,
    `${r.execTmp.ok ? 'a script in /tmp ran' : `a script in /tmp failed with ${r.execTmp.error ?? '?'}`}${noexecMount ? '; mounted noexec' : ''}`,
  );

  const reached = r.hostAttempts.filter((a) => a.ok || !UNREACHED.has(a.error ?? ''));
  add(
    'no route to the host',
    r.hostAttempts.length > 0 && reached.length === 0,
    r.hostAttempts.length === 0 ? 'no host address to try' : r.hostAttempts.map((a) => `${a.host}:${a.port} ${a.ok ? 'CONNECTED' : (a.error ?? '?')}`).join(', '),
  );

  if (e.network === 'none') {
    const onlyLo = r.interfaces.length === 1 && r.interfaces[0] === 'lo';
    add('egress allowlist', onlyLo && !r.dns.ok, `network none: ${onlyLo ? 'loopback only' : `interfaces ${r.interfaces.join(', ')}`}; own DNS ${r.dns.ok ? 'RESOLVES' : 'fails'}`);
  } else {
    const refused = r.proxyOffList !== undefined && !r.proxyOffList.ok && r.proxyOffList.status === 403;
    add(
      'egress allowlist',
      refused && !r.dns.ok,
      `proxy ${refused ? 'refused' : `answered ${r.proxyOffList?.status ?? r.proxyOffList?.error ?? 'nothing'} for`} ${e.offListTarget}; own DNS ${r.dns.ok ? 'RESOLVES' : `fails (${r.dns.error ?? '?'})`}`,
    );
  }

  const total = r.workspace.totalBytes;
  const quotaOk = total !== undefined && total <= e.disk && total >= e.disk * 0.8 && (gvisor || (r.workspace.fsType === 'ext4' && (r.workspace.device ?? '').startsWith('/dev/loop')));
  add(
    'disk quota',
    quotaOk,
    total === undefined ? `/workspace not measurable (${r.workspace.error ?? '?'})` : `/workspace ${mib(total)} of ${mib(e.disk)}${r.workspace.fsType ? ` (${r.workspace.fsType}${r.workspace.device ? ` on ${r.workspace.device}` : ''})` : ''}`,
  );

  if (gvisor) add('kernel', r.kernel !== e.hostKernel && e.engine.runtime === 'runsc', `gVisor (${r.kernel}, runtime ${e.engine.runtime ?? 'runc'})`);
  else add('kernel', r.kernel === e.hostKernel, `host (${r.kernel})`);
  return out;
}
