// Test helpers for looking at, and cleaning, what the gateway left on the engine.
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
  for (const n of await docker.listNetworks({ filters: { label: ['mcpx.managed=true'] } })) {
    if (isTest(n.Labels)) await docker.getNetwork(n.Id).remove().catch(() => undefined);
  }
}
