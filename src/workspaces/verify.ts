// `verify`: runs the probe inside each server container of a workspace and reports which isolation properties hold.
import type { WorkspaceSpec } from '../config/index.js';
import type { DockerRuntimeClient } from '../runtime/index.js';
import { CONTAINER_USER } from '../runtime/index.js';
import { PROBE_SOURCE } from './verify-probe.js';
import type { ProbeConfig, ProbeReport } from './verify-probe.js';
import { evaluateProbe, failedProbe } from './verify-report.js';
import type { PropertyResult } from './verify-report.js';

export interface IsolationView {
  name: string;
  spec: WorkspaceSpec;
  network?: { gateway: string; proxyPort: number };
  servers: { name: string; containerId?: string; status: string }[];
}

export interface VerifyResult {
  workspace: string;
  ok: boolean;
  servers: { server: string; container?: string; ok: boolean; properties: PropertyResult[] }[];
}

export interface VerifierDeps {
  runtime: Pick<DockerRuntimeClient, 'exec' | 'inspect' | 'networkGateway'>;
  view(uid: string): IsolationView | undefined;
  hostKernel: string;
  /** The gateway's own listening port: tried on every host address, it must not answer. */
  gatewayPort(): number;
  timeoutMs?: number;
}

/** A destination no allowlist can name: the .invalid TLD never resolves (RFC 6761). */
export const OFF_LIST_TARGET = 'mcpx-verify.invalid:443';
const NODE = '/usr/local/bin/node';

export function createVerifier(deps: VerifierDeps) {
  const timeoutMs = deps.timeoutMs ?? 1_500;

  const probeOne = async (view: IsolationView, server: IsolationView['servers'][number], config: ProbeConfig): Promise<VerifyResult['servers'][number]> => {
    if (!server.containerId || server.status !== 'running') {
      return { server: server.name, ok: false, properties: failedProbe(`the server is ${server.status}`) };
    }
    const info = await deps.runtime.inspect(server.containerId);
    if (!info?.State.Running) return { server: server.name, container: server.containerId, ok: false, properties: failedProbe('the container is not running') };
    let report: ProbeReport | undefined;
    let reason = '';
    try {
      const r = await deps.runtime.exec(server.containerId, [NODE, '-e', PROBE_SOURCE, JSON.stringify(config)], timeoutMs * 10 + 10_000);
      const line = r.stdout.trim().split('\n').at(-1) ?? '';
      const parsed = line ? (JSON.parse(line) as ProbeReport & { probeError?: string }) : undefined;
      if (parsed && parsed.probeError === undefined) report = parsed;
      else reason = parsed?.probeError ?? (r.stderr.trim().split('\n')[0] || `exit code ${String(r.exitCode)}`);
    } catch (err) {
      // An image without Node cannot host the probe: reported, never guessed.
      reason = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    }
    if (!report) return { server: server.name, container: server.containerId, ok: false, properties: failedProbe(reason.slice(0, 200)) };
    const h = info.HostConfig;
    const properties = evaluateProbe(report, {
      uid: Number(CONTAINER_USER.split(':')[0]),
      pids: view.spec.resources.pids,
      memory: view.spec.resources.memory,
      cpus: view.spec.resources.cpus,
      disk: view.spec.resources.disk,
      isolation: view.spec.isolation,
      network: view.spec.network === 'none' ? 'none' : 'egress',
      hostKernel: deps.hostKernel,
      offListTarget: OFF_LIST_TARGET,
      engine: {
        ...(h.Runtime ? { runtime: h.Runtime } : {}),
        securityOpt: (h.SecurityOpt as string[] | undefined) ?? [],
        ...(h.PidsLimit ? { pidsLimit: h.PidsLimit } : {}),
        ...(h.Memory ? { memory: h.Memory } : {}),
        ...(h.NanoCpus ? { nanoCpus: h.NanoCpus } : {}),
      },
    });
    return { server: server.name, container: server.containerId, ok: properties.every((p) => p.ok), properties };
  };

  return {
    async verify(uid: string): Promise<VerifyResult | undefined> {
      const view = deps.view(uid);
      if (!view) return undefined;
      const port = deps.gatewayPort();
      const hosts = new Set<string>();
      if (view.network) hosts.add(view.network.gateway);
      const docker0 = await deps.runtime.networkGateway('bridge');
      if (docker0) hosts.add(docker0);
      const config: ProbeConfig = {
        hostTargets: [...hosts].map((host) => ({ host, port })),
        ...(view.network ? { proxy: { host: view.network.gateway, port: view.network.proxyPort } } : {}),
        offListTarget: OFF_LIST_TARGET,
        dnsName: 'mcpx-verify.invalid',
        timeoutMs,
      };
      const servers = await Promise.all(view.servers.map((s) => probeOne(view, s, config)));
      return { workspace: view.name, ok: servers.length > 0 && servers.every((s) => s.ok), servers };
    },
  };
}

export type Verifier = ReturnType<typeof createVerifier>;
