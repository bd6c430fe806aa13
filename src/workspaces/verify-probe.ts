// The probe `mcpx workspace verify` runs inside each server container (docker exec, same user, namespaces, cgroups,
// seccomp and runtime as the server). It only reads and attempts; every attempt is bounded and leaves nothing behind.
// It is plain JavaScript for the container's Node, given as `node -e PROBE_SOURCE CONFIG_JSON`.

export interface ProbeConfig {
  /** Addresses of the host to try (bridge gateways) with a port each: every attempt must fail. */
  hostTargets: { host: string; port: number }[];
  /** The workspace's egress proxy, when it has one. */
  proxy?: { host: string; port: number };
  /** A destination that is never on an allowlist (the .invalid TLD cannot exist): the proxy must refuse it. */
  offListTarget: string;
  /** A name to resolve without the proxy: resolution must fail. */
  dnsName: string;
  timeoutMs: number;
}

export interface ProbeAttempt {
  ok: boolean;
  error?: string;
  status?: number;
}

export interface ProbeReport {
  uid: number;
  gid: number;
  status: Record<string, string>;
  writeRoot: ProbeAttempt;
  cgroup: { pidsMax?: string; memoryMax?: string; cpuQuota?: string; cpuPeriod?: string; cpuMax?: string };
  tmpMountOptions?: string;
  execTmp: ProbeAttempt;
  interfaces: string[];
  hostAttempts: (ProbeAttempt & { host: string; port: number })[];
  proxyOffList?: ProbeAttempt;
  dns: ProbeAttempt;
  workspace: { fsType?: string; device?: string; totalBytes?: number; error?: string };
  kernel: string;
}

export const PROBE_SOURCE = String.raw`
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const os = require('node:os');
const { spawnSync } = require('node:child_process');
const cfg = JSON.parse(process.argv[1] || '{}');
const code = (e) => (e && (e.code || e.message)) || String(e);
const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return undefined; } };
const attempt = (fn) => { try { fn(); return { ok: true }; } catch (e) { return { ok: false, error: code(e) }; } };

function tcp(host, port, send) {
  return new Promise((done) => {
    const s = net.connect({ host, port });
    let data = '';
    const finish = (r) => { clearTimeout(t); s.destroy(); done(r); };
    const t = setTimeout(() => finish(data ? { ok: true, data } : { ok: false, error: 'TIMEOUT' }), cfg.timeoutMs);
    s.on('connect', () => { if (send) s.write(send); else finish({ ok: true }); });
    s.on('data', (c) => { data += c; if (/\r\n\r\n/.test(data)) finish({ ok: true, data }); });
    s.on('error', (e) => finish({ ok: false, error: code(e) }));
    s.on('end', () => finish({ ok: true, data }));
  });
}

(async () => {
  const status = {};
  for (const line of (read('/proc/self/status') || '').split('\n')) {
    const m = /^(Cap\w+|NoNewPrivs|Seccomp):\s*(\S+)/.exec(line);
    if (m) status[m[1]] = m[2];
  }
  const cg = {
    pidsMax: read('/sys/fs/cgroup/pids/pids.max') || read('/sys/fs/cgroup/pids.max'),
    memoryMax: read('/sys/fs/cgroup/memory/memory.limit_in_bytes') || read('/sys/fs/cgroup/memory.max'),
    cpuQuota: read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') || read('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us'),
    cpuPeriod: read('/sys/fs/cgroup/cpu/cpu.cfs_period_us') || read('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us'),
    cpuMax: read('/sys/fs/cgroup/cpu.max'),
  };
  const mounts = (read('/proc/mounts') || '').split('\n').map((l) => l.split(' '));
  const tmp = mounts.find((m) => m[1] === '/tmp');
  const ws = mounts.find((m) => m[1] === '/workspace');
  const script = '/tmp/.mcpx-verify-' + process.pid;
  const execTmp = attempt(() => {
    fs.writeFileSync(script, '#!' + process.execPath + '\n', { mode: 0o755 });
    const r = spawnSync(script, [], { timeout: cfg.timeoutMs });
    if (r.error) throw r.error;
  });
  try { fs.unlinkSync(script); } catch {}
  const rootFile = '/.mcpx-verify-' + process.pid;
  const writeRoot = attempt(() => fs.writeFileSync(rootFile, 'x'));
  if (writeRoot.ok) { try { fs.unlinkSync(rootFile); } catch {} }
  let interfaces = [];
  try { interfaces = fs.readdirSync('/sys/class/net').sort(); } catch { interfaces = Object.keys(os.networkInterfaces()).sort(); }
  const hostAttempts = [];
  for (const t of cfg.hostTargets || []) {
    const r = await tcp(t.host, t.port, '');
    hostAttempts.push({ host: t.host, port: t.port, ok: r.ok, ...(r.error ? { error: r.error } : {}) });
  }
  let proxyOffList;
  if (cfg.proxy) {
    const r = await tcp(cfg.proxy.host, cfg.proxy.port, 'CONNECT ' + cfg.offListTarget + ' HTTP/1.1\r\nhost: ' + cfg.offListTarget + '\r\n\r\n');
    const st = Number((/^HTTP\/1\.[01] (\d{3})/.exec(r.data || '') || [])[1] || 0);
    proxyOffList = { ok: st === 200, ...(st ? { status: st } : {}), ...(r.error ? { error: r.error } : {}) };
  }
  const dnsResult = await new Promise((done) => {
    const t = setTimeout(() => done({ ok: false, error: 'TIMEOUT' }), cfg.timeoutMs * 3);
    dns.lookup(cfg.dnsName, (e) => { clearTimeout(t); done(e ? { ok: false, error: code(e) } : { ok: true }); });
  });
  let workspace = {};
  try {
    const s = fs.statfsSync('/workspace');
    workspace = { fsType: ws && ws[2], device: ws && ws[0], totalBytes: s.blocks * s.bsize };
  } catch (e) { workspace = { error: code(e) }; }
  process.stdout.write(JSON.stringify({
    uid: process.getuid(), gid: process.getgid(), status, writeRoot, cgroup: cg, tmpMountOptions: tmp && tmp[3],
    execTmp, interfaces, hostAttempts, proxyOffList, dns: dnsResult, workspace, kernel: os.release(),
  }) + '\n', () => process.exit(0));
})().catch((e) => { process.stdout.write(JSON.stringify({ probeError: code(e) }) + '\n', () => process.exit(0)); });
`;
