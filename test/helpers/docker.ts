// Test helpers for looking at, and cleaning, what the gateway left on the engine.
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

export const docker = new Docker();

export async function labelled(label: string): Promise<{ containers: number; volumes: number; networks: number }> {
  const filters = { label: [label] };
  const [c, v, n] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listVolumes({ filters }),
    docker.listNetworks({ filters }),
  ]);
  return { containers: c.length, volumes: (v.Volumes ?? []).length, networks: n.length };
}

/** Removes everything labelled for the test workspaces (names starting with "it-") or by a test. */
export async function removeTestResources(): Promise<void> {
  const isTest = (labels: Record<string, string> | undefined) =>
    (labels?.['mcpx.workspace'] ?? '').startsWith('it-') || labels?.['mcpx.test'] !== undefined;
  for (const c of await docker.listContainers({ all: true, filters: { label: ['mcpx.managed=true'] } })) {
    if (isTest(c.Labels)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
  for (const v of (await docker.listVolumes({ filters: { label: ['mcpx.managed=true'] } })).Volumes ?? []) {
    if (isTest(v.Labels ?? undefined)) await docker.getVolume(v.Name).remove({ force: true }).catch(() => undefined);
  }
  const testUids = new Set<string>();
  for (const n of await docker.listNetworks({ filters: { label: ['mcpx.managed=true'] } })) {
    if (!isTest(n.Labels)) continue;
    const uid = n.Labels?.['mcpx.workspace-uid'];
    if (uid) testUids.add(uid);
    await docker.getNetwork(n.Id).remove().catch(() => undefined);
  }
  removeFirewallRules(testUids);
  detachTestLoops();
}

/** Deletes the MCPX-* iptables rules of the given workspaces (left by a test gateway that did not finish). */
function removeFirewallRules(uids: ReadonlySet<string>): void {
  if (uids.size === 0) return;
  for (const bin of ['iptables', 'ip6tables']) {
    for (const chain of ['MCPX-INPUT', 'MCPX-FORWARD']) {
      let listed: string;
      try {
        listed = execFileSync(bin, ['-w', '5', '-S', chain], { encoding: 'utf8' });
      } catch {
        continue;
      }
      for (const line of listed.split('\n')) {
        const uid = /mcpx-ws=([0-9a-f-]+)/.exec(line)?.[1];
        if (!line.startsWith('-A ') || !uid || !uids.has(uid)) continue;
        try {
          execFileSync(bin, ['-w', '5', ...line.replace(/^-A/, '-D').replace(/"/g, '').split(' ')]);
        } catch {
          // gone already
        }
      }
    }
  }
}

/** Detaches loop devices on quota images of test gateways (their data directories live in the temp directory). */
function detachTestLoops(): void {
  let out: string;
  try {
    out = execFileSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  } catch {
    return;
  }
  // Only the suites' own data folders (helpers/gateway.ts tempDir): a bench or a local gateway keeps its devices.
  const prefix = join(tmpdir(), 'mcpx-test-');
  for (const line of out.split('\n')) {
    const [device, file] = line.split(' ');
    if (!device || !file?.startsWith(prefix) || !file.includes('/volumes/')) continue;
    try {
      execFileSync('losetup', ['--detach', device]);
    } catch {
      // gone already
    }
  }
}
