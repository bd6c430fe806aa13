// Can this gateway run a spec? A pure decision over facts about the engine and the host, with a fix in each reason.
import type { WorkspaceSpec } from '../config/index.js';

export interface SupportFacts {
  /** The engine's registered runtimes (docker info). */
  runtimes: readonly string[];
  /** Host checks that failed, by name (see runtime/host/host-checks.ts). */
  missing: readonly string[];
}

const DISK_NEEDS = ['root', 'losetup', 'mkfs.ext4', 'debugfs', 'loop devices'];
const EGRESS_NEEDS = ['root', 'iptables'];

export function unsupportedReasons(spec: WorkspaceSpec, facts: SupportFacts): string[] {
  const errors: string[] = [];
  if (spec.isolation === 'gvisor' && !facts.runtimes.includes('runsc')) {
    errors.push(
      'isolation: gvisor needs the runsc runtime, which this Docker Engine does not have; install runsc and register it in /etc/docker/daemon.json with runtimeArgs ["--network=none"] (see `mcpx doctor`)',
    );
  }
  const disk = DISK_NEEDS.filter((n) => facts.missing.includes(n));
  if (disk.length > 0) errors.push(`resources.disk: the /workspace quota needs ${disk.join(', ')} on the gateway host (see \`mcpx doctor\`)`);
  if (spec.network !== 'none') {
    const net = EGRESS_NEEDS.filter((n) => facts.missing.includes(n));
    if (net.length > 0) errors.push(`network: an egress allowlist needs ${net.join(', ')} on the gateway host to fence the workspace in (see \`mcpx doctor\`)`);
  }
  return errors;
}
