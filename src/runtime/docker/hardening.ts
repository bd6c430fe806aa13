// The one place that turns a validated server spec into a hardened container configuration. Pure: no I/O.
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { ResourceSpec, ServerSpec } from '../../config/spec.js';
import { LAUNCHER_PATH } from '../../images/index.js';
import { LABELS } from '../labels.js';

export const CONTAINER_USER = '10001:10001';
export const CONTAINER_PATH = '/usr/local/bin:/usr/bin:/bin';
export const WORKSPACE_MOUNT = '/workspace';
/** Reservations are soft floors the scheduler honours under contention; limits are hard ceilings. */
export const CPU_RESERVATION = 0.1;
export const MEMORY_RESERVATION = 64 * 1024 ** 2;
export const VAR_TMP_SIZE = 50 * 1024 ** 2;
const TMPFS_FLAGS = 'rw,noexec,nosuid,nodev';

export interface ContainerPlan {
  workspace: string;
  workspaceUid: string;
  /** The gateway that owns the container (label mcpx.gateway). */
  gatewayId?: string;
  server: ServerSpec;
  resources: ResourceSpec;
  isolation: 'standard' | 'gvisor';
  image: string;
  /** The command to run; empty means the image's own entrypoint. */
  entrypoint: string[];
  volumeName: string;
  /** A workspace network to join; undefined means no network at all (loopback only). */
  networkName?: string;
  /** The workspace's egress proxy (http://address:port), told to the servers in HTTP_PROXY/HTTPS_PROXY. */
  proxyUrl?: string;
  apiEndpoint: string;
  /**
   * Start through the gateway's launcher (package servers): secrets then travel over stdin at start and never
   * enter the container configuration. `entrypoint` is then [node, script].
   */
  launcher: boolean;
  /** Secret values that must go into the environment (only for servers without the launcher). */
  secretEnv?: Record<string, string>;
  /** Mount a tmpfs at /run/secrets for file-mode secrets. */
  secretFiles?: boolean;
}

export const SECRETS_DIR = '/run/secrets';
/** What proxy-aware clients read; both spellings, since libraries disagree on case. */
export function proxyEnv(proxyUrl: string): Record<string, string> {
  const noProxy = 'localhost,127.0.0.1,::1';
  return { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, http_proxy: proxyUrl, https_proxy: proxyUrl, NO_PROXY: noProxy, no_proxy: noProxy };
}

export function containerName(workspace: string, server: string): string {
  return `mcpx-${workspace}-${server}`;
}

/** The container's environment is exactly this: the spec's plain env, the proxy settings and the gateway's variables. */
export function containerEnv(plan: ContainerPlan): string[] {
  const env: Record<string, string> = {
    ...plan.server.env,
    ...(plan.launcher ? {} : plan.secretEnv),
    // The gateway's proxy settings win over the spec's: there is no other way out anyway.
    ...(plan.proxyUrl ? proxyEnv(plan.proxyUrl) : {}),
    WORKSPACE_ID: plan.workspace,
    CONTAINER_ID: containerName(plan.workspace, plan.server.name),
    MCPX_API_ENDPOINT: plan.apiEndpoint,
    PATH: CONTAINER_PATH,
  };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export function hardenedContainerConfig(plan: ContainerPlan): Docker.ContainerCreateOptions {
  const { resources: r } = plan;
  const name = containerName(plan.workspace, plan.server.name);
  const hostConfig: Docker.HostConfig = {
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    CapAdd: [],
    Privileged: false,
    // Docker applies its default seccomp profile unless told otherwise; we never tell it otherwise.
    SecurityOpt: ['no-new-privileges:true'],
    NanoCpus: Math.round(r.cpus * 1e9),
    CpuShares: Math.max(2, Math.round(CPU_RESERVATION * 1024)),
    Memory: r.memory,
    MemorySwap: r.memory,
    MemoryReservation: Math.min(MEMORY_RESERVATION, r.memory),
    PidsLimit: r.pids,
    Ulimits: [{ Name: 'nofile', Soft: r.nofile, Hard: r.nofile }],
    Tmpfs: {
      '/tmp': `${TMPFS_FLAGS},size=${r.tmp}`,
      '/var/tmp': `${TMPFS_FLAGS},size=${VAR_TMP_SIZE}`,
      ...(plan.secretFiles ? { [SECRETS_DIR]: `${TMPFS_FLAGS},size=1m,mode=0700,uid=10001,gid=10001` } : {}),
    },
    Mounts: [{ Type: 'volume', Source: plan.volumeName, Target: WORKSPACE_MOUNT, ReadOnly: false }],
    Binds: [],
    NetworkMode: plan.networkName ?? 'none',
    // A workspace network is IPv4 only: no link-local IPv6 path to the host either (the firewall drops it as well).
    ...(plan.networkName ? { Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '1' } } : {}),
    // Names resolve at the proxy, never in the container: a lookup there fails, and fails fast.
    ...(plan.networkName ? { DnsOptions: ['timeout:1', 'attempts:1'] } : {}),
    IpcMode: 'private',
    RestartPolicy: { Name: 'no' },
    // stdout carries the protocol and may carry secrets: the engine must not keep a copy. stderr is kept by the gateway.
    LogConfig: { Type: 'none', Config: {} },
    ...(plan.isolation === 'gvisor' ? { Runtime: 'runsc' } : {}),
  };
  const [command, args] = plan.launcher
    ? [[plan.entrypoint[0] ?? '/usr/local/bin/node', LAUNCHER_PATH], [...plan.entrypoint.slice(1), ...plan.server.args]]
    : [plan.entrypoint, plan.server.args];
  const config: Docker.ContainerCreateOptions = {
    name,
    Image: plan.image,
    User: CONTAINER_USER,
    WorkingDir: WORKSPACE_MOUNT,
    Env: containerEnv(plan),
    ...(command.length > 0 ? { Entrypoint: command } : {}),
    ...(args.length > 0 ? { Cmd: args } : {}),
    OpenStdin: true,
    StdinOnce: false,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: plan.networkName === undefined,
    Labels: {
      [LABELS.managed]: 'true',
      [LABELS.workspace]: plan.workspace,
      [LABELS.workspaceUid]: plan.workspaceUid,
      [LABELS.server]: plan.server.name,
      ...(plan.gatewayId ? { [LABELS.gateway]: plan.gatewayId } : {}),
    },
    HostConfig: hostConfig,
  };
  config.Labels = { ...config.Labels, [LABELS.configHash]: configHash(config) };
  return config;
}

/** A stable digest of a container configuration: an adopted container is kept only when this matches. */
export function configHash(config: Docker.ContainerCreateOptions): string {
  return createHash('sha256').update(stableJson(config)).digest('hex').slice(0, 16);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
