// What the gateway needs from its host and engine, checked without changing anything: used by `mcpx doctor` and by
// the gateway before it accepts a spec that needs a feature.
import { readFileSync } from 'node:fs';
import type { CommandRunner } from './exec.js';

export type CheckStatus = 'ok' | 'missing' | 'warn';

export interface HostCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it; empty when nothing is needed. */
  fix: string;
  /** The feature that needs it: a missing required check fails `mcpx doctor`. */
  needed: 'required' | 'egress' | 'disk' | 'gvisor';
}

export interface EngineFacts {
  reachable: boolean;
  version?: string;
  apiVersion?: string;
  runtimes: string[];
  cgroupVersion?: string;
  cgroupDriver?: string;
  error?: string;
}

const SETUP = 'run `bash scripts/setup.sh` (as root)';

async function works(run: CommandRunner, cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run(cmd, args);
    return { ok: true, out: `${r.stdout}${r.stderr}`.trim() };
  } catch (err) {
    return { ok: false, out: err instanceof Error ? err.message : String(err) };
  }
}

/** Host tools for the firewall and the disk quotas. Read-only: lists, versions, a free loop device. */
export async function checkHostTools(run: CommandRunner, uid: number | undefined): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  const root = uid === 0;
  checks.push({
    name: 'root',
    status: root ? 'ok' : 'missing',
    detail: root ? 'the gateway runs as root' : `running as uid ${String(uid)}`,
    fix: root ? '' : 'run the gateway as root: the firewall and loop devices need it',
    needed: 'required',
  });
  const ipt = await works(run, 'iptables', ['-w', '5', '-S', 'INPUT']);
  checks.push({
    name: 'iptables',
    status: ipt.ok ? 'ok' : 'missing',
    detail: ipt.ok ? 'filter table readable' : ipt.out.split('\n')[0]!.slice(0, 160),
    fix: ipt.ok ? '' : `apt-get install -y iptables, or ${SETUP}`,
    needed: 'egress',
  });
  const dockerUser = ipt.ok && (await works(run, 'iptables', ['-w', '5', '-S', 'DOCKER-USER'])).ok;
  checks.push({
    name: 'DOCKER-USER chain',
    status: dockerUser ? 'ok' : 'warn',
    detail: dockerUser ? 'present: workspace rules run before Docker\'s' : 'absent: workspace rules hook into FORWARD instead',
    fix: dockerUser ? '' : 'let dockerd manage iptables (the default) so that DOCKER-USER exists',
    needed: 'egress',
  });
  const ip6 = await works(run, 'ip6tables', ['-w', '5', '-S', 'INPUT']);
  checks.push({
    name: 'ip6tables',
    status: ip6.ok ? 'ok' : 'warn',
    detail: ip6.ok ? 'filter table readable' : 'unavailable: IPv6 is only switched off inside the containers',
    fix: ip6.ok ? '' : 'apt-get install -y iptables',
    needed: 'egress',
  });
  for (const [cmd, args, pkg] of [
    ['losetup', ['--version'], 'mount'],
    ['mkfs.ext4', ['-V'], 'e2fsprogs'],
    ['debugfs', ['-V'], 'e2fsprogs'],
    ['resize2fs', ['-h'], 'e2fsprogs'],
  ] as const) {
    const r = await works(run, cmd, [...args]);
    // resize2fs -h exits non-zero after printing its usage; a missing binary fails with ENOENT.
    const present = r.ok || !/ENOENT/.test(r.out);
    checks.push({
      name: cmd,
      status: present ? 'ok' : 'missing',
      detail: present ? (r.out.replace(/^.*? failed \([^)]*\): /, '').split('\n').find((l) => /\d/.test(l)) ?? 'present').slice(0, 80) : 'not found',
      fix: present ? '' : `apt-get install -y ${pkg}, or ${SETUP}`,
      needed: 'disk',
    });
  }
  const loop = root ? await works(run, 'losetup', ['--find']) : { ok: false, out: 'needs root' };
  checks.push({
    name: 'loop devices',
    status: loop.ok ? 'ok' : 'missing',
    detail: loop.ok ? `next free: ${loop.out}` : loop.out.split('\n')[0]!.slice(0, 160),
    fix: loop.ok ? '' : 'modprobe loop (and run as root); disk quotas need a free loop device per workspace',
    needed: 'disk',
  });
  return checks;
}

/** Engine facts: runtimes (runc, runsc), cgroup version. */
export function checkEngine(engine: EngineFacts): HostCheck[] {
  if (!engine.reachable) {
    return [
      {
        name: 'docker engine',
        status: 'missing',
        detail: engine.error ?? 'no answer',
        fix: `start dockerd, set DOCKER_HOST, or ${SETUP}`,
        needed: 'required',
      },
    ];
  }
  const checks: HostCheck[] = [
    { name: 'docker engine', status: 'ok', detail: `${engine.version ?? '?'} (API ${engine.apiVersion ?? '?'})`, fix: '', needed: 'required' },
    {
      name: 'runtime runc',
      status: engine.runtimes.includes('runc') ? 'ok' : 'missing',
      detail: engine.runtimes.includes('runc') ? 'registered' : `runtimes: ${engine.runtimes.join(', ') || 'none'}`,
      fix: engine.runtimes.includes('runc') ? '' : 'install runc (Debian: docker.io brings it)',
      needed: 'required',
    },
    {
      name: 'runtime runsc',
      status: engine.runtimes.includes('runsc') ? 'ok' : 'warn',
      detail: engine.runtimes.includes('runsc') ? 'registered: isolation "gvisor" is available (network none only)' : 'not registered: isolation "gvisor" is refused',
      fix: engine.runtimes.includes('runsc')
        ? ''
        : `apt-get install -y runsc; add "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}} to /etc/docker/daemon.json; kill -HUP $(pidof dockerd); or ${SETUP}`,
      needed: 'gvisor',
    },
    {
      name: 'cgroups',
      status: engine.cgroupVersion ? 'ok' : 'warn',
      detail: `version ${engine.cgroupVersion ?? '?'}, driver ${engine.cgroupDriver ?? '?'}`,
      fix: engine.cgroupVersion ? '' : 'an engine that reports its cgroup version (Docker >= 20.10)',
      needed: 'required',
    },
  ];
  return checks;
}

/** The host's kernel release, as the host sees it (a gVisor sandbox reports its own). */
export function hostKernel(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
