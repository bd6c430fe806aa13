// Workspace lifecycle: create, converge to the spec, supervise (restart with backoff, degrade), delete, and
// reconcile with the engine at start-up. Operations on one workspace run one at a time, in order.
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { durationMs } from '../config/spec.js';
import type { ServerSpec, WorkspaceSpec } from '../config/spec.js';
import type { EgressProxy, EgressProxyOptions, EgressRecord } from '../egress/index.js';
import type { ImageBuilder, LaunchConfig, ServerImage } from '../images/index.js';
import { UpstreamConnection } from '../mcp/index.js';
import type { InitializeResult } from '../mcp/index.js';
import { AttachedStdio, bridgeName, containerName, hardenedContainerConfig, LABELS, networkName, ownedBy, workspaceLabels } from '../runtime/index.js';
import type { DiskQuotas, DockerRuntimeClient, Firewall } from '../runtime/index.js';
import { AppError, conflict, notFound } from '../shared/errors.js';
import { LogBuffer } from '../shared/log-buffer.js';
import type { WorkspaceRecord, WorkspaceStatus, WorkspaceStore } from '../store/index.js';
import type { IsolationView } from './verify.js';
import { wakeImage } from './wake-image.js';

export type ServerStatus = 'pending' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

/**
 * Why a converge keeps the images the containers were made from: a wake-up, a start-up under a converged spec, or a
 * secret change (which may only recreate a container whose environment holds the secret, never change its version).
 */
type Reuse = 'wake' | 'restart' | 'secret';

export interface SupervisionOptions {
  handshakeTimeoutMs: number;
  /** Crashes within this window count towards degrading the workspace. */
  crashWindowMs: number;
  crashThreshold: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A degraded workspace returns to ready once every server has stayed up this long. */
  stableMs: number;
}

export interface HibernationOptions {
  /** How often idle workspaces are looked for. */
  checkEveryMs: number;
  /** Called with each wake-up's duration (metrics). */
  onWake?(ms: number): void;
}

export const DEFAULT_SUPERVISION: SupervisionOptions = {
  handshakeTimeoutMs: 60_000,
  crashWindowMs: 60_000,
  crashThreshold: 3,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  stableMs: 60_000,
};

interface ServerState {
  spec: ServerSpec;
  name: string;
  containerId?: string;
  configHash?: string;
  image?: ServerImage;
  status: ServerStatus;
  phase: string;
  stdio?: AttachedStdio;
  conn?: UpstreamConnection;
  logs: LogBuffer;
  crashes: number[];
  restartTimer?: NodeJS.Timeout;
  /** Bumped for each attach; a close event from an older attach is ignored. */
  generation: number;
  /** Set while the gateway itself stops the container: its exit is not a crash. */
  stopping: boolean;
  /** Digest of the secrets the running process was started with: a change restarts it only if this differs. */
  launchDigest?: string;
  /** The container's address on the workspace network (egress mode), to name the server in egress events. */
  address?: string;
  /** Set when it crashed, cleared when it is back: its return is announced to clients (list changes). */
  crashed?: boolean;
}

/** A workspace network as the gateway set it up: the proxy listens on its gateway address. */
export interface WorkspaceNetwork {
  name: string;
  bridge: string;
  gateway: string;
  subnet: string;
  proxyPort: number;
}

interface WorkspaceState {
  uid: string;
  name: string;
  servers: Map<string, ServerState>;
  queue: Promise<void>;
  deleting: boolean;
  stableTimer?: NodeJS.Timeout;
  /** The spec's server names in order, kept in memory for the MCP endpoint. */
  serverOrder: string[];
  /** The current spec, in memory for the MCP endpoint's hot path. */
  spec: WorkspaceSpec;
  /** Idle hibernation: the last request's time, requests in flight, and the wake-up under way. */
  lastActive: number;
  active: number;
  hibernating: boolean;
  waking?: Promise<void>;
  /** Why the last converge (a create, an apply, a wake-up) left the workspace `failed`; cleared by the next one. */
  failure?: string;
  network?: WorkspaceNetwork;
  proxy?: EgressProxy;
}

export interface ServerView {
  name: string;
  status: ServerStatus;
  phase: string;
  container?: { id: string; name: string };
  image?: string;
  package?: string;
  serverInfo?: InitializeResult['serverInfo'];
  protocolVersion?: string;
  restarts: number;
}

export interface ManagerDeps {
  store: WorkspaceStore;
  /** Plaintext secret values for injection at start (never stored by the manager). */
  secrets: { values(uid: string, names?: readonly string[]): Map<string, string> };
  /** Redacts secret values and credential shapes from what a server writes to its log. */
  redactLog(uid: string, line: string): string;
  runtime: Pick<
    DockerRuntimeClient,
    | 'attach' | 'createContainer' | 'createDeviceVolume' | 'ensureNetwork' | 'exitInfo' | 'inspect' | 'inspectVolume' | 'kill'
    | 'listContainers' | 'listNetworks' | 'listVolumes' | 'remove' | 'removeNetwork' | 'removeVolume' | 'start'
  >;
  images: Pick<ImageBuilder, 'ensureServerImage' | 'recordedImage'>;
  logger: Logger;
  /** The URL a container is told (MCPX_API_ENDPOINT) for its workspace. */
  apiEndpoint(workspace: string): string;
  supervision?: Partial<SupervisionOptions>;
  hibernation?: Partial<HibernationOptions>;
  /** Host-level isolation: disk quotas, the firewall, egress proxies. */
  isolation: IsolationDeps;
  /** This gateway's id (label mcpx.gateway): reconciliation touches only what carries it (or no id at all). */
  gatewayId: string;
}

export interface IsolationDeps {
  disks: Pick<DiskQuotas, 'ensure' | 'release' | 'releaseImage' | 'reconcile' | 'copyInto'>;
  firewall: Pick<Firewall, 'apply' | 'remove' | 'reconcile'>;
  /** The port every workspace's egress proxy listens on, on its own network's gateway address. */
  egressPort: number;
  /** Ports the gateway serves on: the proxy refuses them on local addresses. */
  protectedPorts(): number[];
  startProxy(opts: EgressProxyOptions): Promise<EgressProxy>;
}

export function volumeName(workspace: string, uid: string): string {
  return `mcpx-${workspace}-${uid.slice(0, 8)}`;
}

export function createWorkspaceManager(deps: ManagerDeps) {
  const { store, runtime, images, logger, isolation } = deps;
  const opts: SupervisionOptions = { ...DEFAULT_SUPERVISION, ...deps.supervision };
  const states = new Map<string, WorkspaceState>();
  // The hot path (the MCP endpoint) looks workspaces up by name without touching the database.
  const byName = new Map<string, WorkspaceState>();
  const connectionListeners = new Set<(workspace: string, server: string, conn: UpstreamConnection) => void>();
  const availabilityListeners = new Set<(workspace: string, server: string, available: boolean) => void>();
  const goneListeners = new Set<(workspace: string, uid: string) => void>();
  let shuttingDown = false;

  const event = (ws: { uid: string }, type: string, server?: string, detail?: Record<string, unknown>) => {
    store.addEvent(ws.uid, type, server, detail);
    logger.info({ workspace: (ws as { name?: string }).name, type, server, ...(detail ? { detail } : {}) }, 'workspace event');
  };

  const recordEgress = (ws: WorkspaceState, r: EgressRecord) => {
    if (ws.deleting || !states.has(ws.uid)) return;
    const server = r.client === undefined ? undefined : [...ws.servers.values()].find((s) => s.address === r.client)?.name;
    event(ws, r.verdict === 'allowed' ? 'egress_allowed' : 'egress_denied', server, { ...r });
  };

  const setStatus = (ws: WorkspaceState, status: WorkspaceStatus) => {
    const rec = store.getByUid(ws.uid);
    if (rec && rec.status !== status) store.setStatus(ws.uid, status);
  };

  const stateFor = (rec: WorkspaceRecord): WorkspaceState => {
    let ws = states.get(rec.uid);
    if (!ws) {
      ws = { uid: rec.uid, name: rec.name, servers: new Map(), queue: Promise.resolve(), deleting: false, serverOrder: [], spec: rec.spec, lastActive: Date.now(), active: 0, hibernating: false };
      states.set(rec.uid, ws);
      byName.set(rec.name, ws);
    }
    ws.serverOrder = rec.spec.servers.map((s) => s.name);
    ws.spec = rec.spec;
    return ws;
  };

  /** Runs one operation after the previous ones on the same workspace; failures are logged, never thrown. */
  const enqueue = (ws: WorkspaceState, what: string, op: () => Promise<void>): Promise<void> => {
    ws.queue = ws.queue.then(op).catch((err: unknown) => {
      logger.error({ err, workspace: ws.name, op: what }, 'workspace operation failed');
    });
    return ws.queue;
  };

  // ---- supervision -------------------------------------------------------------------------------------

  const allRunning = (ws: WorkspaceState) => ws.servers.size > 0 && [...ws.servers.values()].every((s) => s.status === 'running');

  const onServerUp = (ws: WorkspaceState) => {
    if (ws.deleting || !allRunning(ws)) return;
    const status = store.getByUid(ws.uid)?.status;
    if (status === 'creating') {
      // Idle time counts from readiness, not from creation.
      ws.lastActive = Date.now();
      setStatus(ws, 'ready');
      event(ws, 'ready');
    } else if (status === 'degraded') {
      clearTimeout(ws.stableTimer);
      ws.stableTimer = setTimeout(() => {
        if (ws.deleting || !allRunning(ws) || store.getByUid(ws.uid)?.status !== 'degraded') return;
        for (const s of ws.servers.values()) s.crashes = [];
        setStatus(ws, 'ready');
        event(ws, 'ready', undefined, { recovered: true });
      }, opts.stableMs);
      ws.stableTimer.unref();
    }
  };

  const attachAndStart = async (ws: WorkspaceState, st: ServerState, alreadyRunning: boolean) => {
    const id = st.containerId!;
    const generation = ++st.generation;
    st.status = 'starting';
    st.phase = 'attaching';
    const stream = await runtime.attach(id);
    const conn = new UpstreamConnection({
      write: (line) => st.stdio?.writeLine(line) ?? false,
      onGarbage: (line, reason) => {
        st.logs.push(deps.redactLog(ws.uid, `[mcpx] dropped a line on stdout that is not protocol (${reason}): ${line.slice(0, 200)}`));
      },
    });
    st.conn = conn;
    st.stdio = new AttachedStdio(stream, {
      onStdoutLine: (line) => conn.handleLine(line),
      onStderrLine: (line) => st.logs.push(deps.redactLog(ws.uid, line)),
      onClose: () => onExit(ws, st, generation),
    });
    if (!alreadyRunning) {
      // The launcher's first stdin line: the secrets this server receives, read fresh at every start.
      if (st.spec.package !== undefined) {
        const config = launchConfig(ws, st.spec, true);
        st.launchDigest = digest(config);
        st.stdio.writeLine(JSON.stringify(config));
      }
      await runtime.start(id);
      event(ws, 'container_started', st.name, { container: containerName(ws.name, st.name), id: id.slice(0, 12) });
    }
    if (ws.network) {
      const info = await runtime.inspect(id);
      st.address = info?.NetworkSettings.Networks[ws.network.name]?.IPAddress || undefined;
    }
    st.phase = 'initializing';
    try {
      const init = await conn.initialize(opts.handshakeTimeoutMs);
      if (generation !== st.generation) return;
      st.status = 'running';
      st.phase = 'running';
      event(ws, 'server_initialized', st.name, { serverInfo: init.serverInfo, protocolVersion: init.protocolVersion });
      for (const l of connectionListeners) l(ws.name, st.name, conn);
      if (st.crashed) {
        st.crashed = false;
        for (const l of availabilityListeners) l(ws.name, st.name, true);
      }
      onServerUp(ws);
    } catch (err) {
      if (generation !== st.generation || st.stopping || ws.deleting) return;
      const reason = err instanceof Error ? err.message : String(err);
      st.logs.push(`[mcpx] MCP handshake failed: ${reason}`);
      event(ws, 'server_init_failed', st.name, { reason });
      // Killing the container turns this into an ordinary exit, which the supervisor restarts with backoff.
      await runtime.kill(id);
      if (st.stdio.isClosed === false) st.stdio.close();
    }
  };

  const digest = (config: LaunchConfig) => createHash('sha256').update(JSON.stringify(config)).digest('hex');

  const launchConfig = (ws: WorkspaceState, server: ServerSpec, report: boolean): LaunchConfig => {
    const names = server.secrets.map((s) => s.name);
    const values = names.length > 0 ? deps.secrets.values(ws.uid, names) : new Map<string, string>();
    const config: LaunchConfig = { mcpx: 1, env: {}, files: {} };
    for (const s of server.secrets) {
      const v = values.get(s.name);
      if (v === undefined) {
        if (report) event(ws, 'secret_missing', server.name, { secret: s.name });
        continue;
      }
      if (s.mode === 'file') config.files[s.name] = v;
      else config.env[s.name] = v;
    }
    return config;
  };

  /** A deliberate restart (not a crash): stop, then start the same container again. */
  const restartServer = async (ws: WorkspaceState, st: ServerState, reason: string) => {
    if (!st.containerId || ws.deleting) return;
    st.stopping = true;
    clearTimeout(st.restartTimer);
    st.generation++;
    st.conn?.close('the server is restarting');
    st.stdio?.close();
    await runtime.kill(st.containerId);
    for (let i = 0; i < 100 && (await runtime.exitInfo(st.containerId))?.running; i++) await new Promise((r) => setTimeout(r, 50));
    st.stopping = false;
    event(ws, 'container_restarted', st.name, { reason });
    await attachAndStart(ws, st, false);
  };

  const onExit = (ws: WorkspaceState, st: ServerState, generation: number) => {
    if (generation !== st.generation) return;
    st.conn?.close();
    if (st.stopping || ws.deleting || shuttingDown) return;
    st.status = 'restarting';
    if (!st.crashed) {
      st.crashed = true;
      for (const l of availabilityListeners) l(ws.name, st.name, false);
    }
    const now = Date.now();
    st.crashes = [...st.crashes.filter((t) => now - t < opts.crashWindowMs), now];
    const attempt = st.crashes.length;
    const delay = Math.min(opts.backoffMaxMs, opts.backoffBaseMs * 2 ** (attempt - 1));
    st.phase = `restarting in ${delay} ms`;
    void (async () => {
      const info = st.containerId ? await runtime.exitInfo(st.containerId).catch(() => undefined) : undefined;
      event(ws, 'container_exited', st.name, {
        exitCode: info?.exitCode ?? null,
        oomKilled: info?.oomKilled ?? false,
        restartInMs: delay,
        crashesInWindow: attempt,
      });
      const status = store.getByUid(ws.uid)?.status;
      if (attempt >= opts.crashThreshold && status !== 'degraded' && status !== 'deleting') {
        clearTimeout(ws.stableTimer);
        setStatus(ws, 'degraded');
        event(ws, 'workspace_degraded', st.name, { crashes: attempt, windowMs: opts.crashWindowMs });
      }
    })().catch((err: unknown) => logger.warn({ err }, 'recording an exit failed'));
    clearTimeout(st.restartTimer);
    st.restartTimer = setTimeout(() => {
      void enqueue(ws, 'restart', async () => {
        if (ws.deleting || st.stopping || generation !== st.generation || !st.containerId) return;
        event(ws, 'container_restarted', st.name, { attempt });
        try {
          await attachAndStart(ws, st, false);
        } catch (err) {
          if (ws.deleting || st.stopping) return;
          const reason = err instanceof Error ? err.message : String(err);
          if (!(await runtime.inspect(st.containerId).catch(() => undefined))) {
            // Removed behind the gateway's back: make a new one from the spec.
            event(ws, 'container_missing', st.name, { reason });
            st.containerId = undefined;
            st.configHash = undefined;
            await converge(ws);
          } else {
            // Could not start it again: this counts as another crash, with a longer wait.
            event(ws, 'container_restart_failed', st.name, { reason });
            onExit(ws, st, st.generation);
          }
        }
      });
    }, delay);
  };

  const destroyServer = async (ws: WorkspaceState, st: ServerState) => {
    st.stopping = true;
    clearTimeout(st.restartTimer);
    st.generation++;
    st.conn?.close('the server was stopped');
    st.stdio?.close();
    if (st.containerId) {
      await runtime.remove(st.containerId);
      event(ws, 'container_destroyed', st.name, { container: containerName(ws.name, st.name) });
    }
    st.containerId = undefined;
    st.status = 'stopped';
    st.phase = 'stopped';
  };

  // ---- converge: make the engine match the spec --------------------------------------------------------

  /**
   * A server's state, made on first use. Every server of a converge gets one before any of them can finish its
   * handshake: the workspace is ready when all the servers it knows run, so one not yet known would be left out.
   */
  const serverState = (ws: WorkspaceState, server: ServerSpec): ServerState => {
    let st = ws.servers.get(server.name);
    if (!st) {
      st = { spec: server, name: server.name, status: 'pending', phase: 'pending', logs: new LogBuffer(), crashes: [], generation: 0, stopping: false };
      ws.servers.set(server.name, st);
    }
    return st;
  };

  /**
   * Makes one server's container match the spec. `reuse` (see converge) brings the image the server already
   * has and the engine's view of its container, looked up by reuseServer: no image is resolved, built or pulled then.
   */
  const convergeServer = async (
    ws: WorkspaceState,
    spec: WorkspaceSpec,
    server: ServerSpec,
    reuse?: { image: ServerImage; container: Docker.ContainerInspectInfo | undefined },
  ) => {
    const st = serverState(ws, server);
    st.spec = server;
    st.phase = 'preparing image';
    const image =
      reuse?.image ??
      (await images.ensureServerImage(server, (message) => {
        st.phase = message;
      }));
    st.image = image;
    event(ws, 'image_built', server.name, {
      image: image.image,
      cached: image.cached,
      ...(image.packageVersion ? { package: image.packageVersion } : {}),
      ...(reuse ? { recorded: true } : {}),
    });

    const launcher = server.package !== undefined;
    const envSecrets = launcher ? [] : server.secrets.filter((s) => s.mode === 'env').map((s) => s.name);
    const secretEnv = envSecrets.length > 0 ? Object.fromEntries(deps.secrets.values(ws.uid, envSecrets)) : undefined;
    const config = hardenedContainerConfig({
      workspace: ws.name,
      workspaceUid: ws.uid,
      gatewayId: deps.gatewayId,
      server,
      launcher,
      ...(secretEnv ? { secretEnv } : {}),
      secretFiles: server.secrets.some((s) => s.mode === 'file'),
      resources: spec.resources,
      isolation: spec.isolation,
      image: image.image,
      entrypoint: image.entrypoint,
      volumeName: volumeName(ws.name, ws.uid),
      ...(ws.network && spec.network !== 'none' ? { networkName: ws.network.name, proxyUrl: `http://${ws.network.gateway}:${ws.network.proxyPort}` } : {}),
      apiEndpoint: deps.apiEndpoint(ws.name),
    });
    const hash = config.Labels![LABELS.configHash]!;
    event(ws, 'policies_applied', server.name, {
      user: config.User,
      readOnlyRootfs: true,
      capDrop: ['ALL'],
      noNewPrivileges: true,
      seccomp: 'default',
      network: config.HostConfig!.NetworkMode,
      ...(ws.network && spec.network !== 'none' ? { egress: spec.network.egress, proxy: `${ws.network.gateway}:${ws.network.proxyPort}`, firewall: ws.network.bridge } : {}),
      disk: spec.resources.disk,
      cpus: spec.resources.cpus,
      memory: spec.resources.memory,
      pids: spec.resources.pids,
      nofile: spec.resources.nofile,
      tmp: spec.resources.tmp,
      isolation: spec.isolation,
    });

    if (st.containerId && st.configHash === hash && (st.status === 'running' || st.status === 'starting' || st.status === 'restarting')) {
      return; // unchanged and alive
    }
    if (st.containerId) await destroyServer(ws, st);
    st.stopping = false;
    st.configHash = hash;

    const name = containerName(ws.name, server.name);
    const existing = reuse ? reuse.container : await runtime.inspect(name);
    if (existing) {
      const labels = existing.Config.Labels ?? {};
      if (labels[LABELS.workspaceUid] === ws.uid && labels[LABELS.configHash] === hash) {
        st.containerId = existing.Id;
        event(ws, 'container_adopted', server.name, { container: name, running: existing.State.Running });
        await attachAndStart(ws, st, existing.State.Running);
        return;
      }
      if (labels[LABELS.managed] !== 'true') {
        throw new AppError('conflict', `a container named ${name} exists and is not managed by mcpx`);
      }
      await runtime.remove(existing.Id);
    }
    st.phase = 'creating container';
    st.containerId = await runtime.createContainer(config);
    await attachAndStart(ws, st, false);
  };

  /**
   * One server of a wake-up, of a start-up under a spec already converged, or of a secret change: the container it
   * has (stopped by hibernate, or running) and the image that container was made from, so none of them asks a
   * registry or changes what the workspace runs. The image comes from the container (after a gateway restart the
   * container is the only record), else, for a container removed behind the gateway's back, from the gateway's
   * memory; a new container is then made from that image if it still exists. With neither, the server is converged
   * like a create, which resolves its package again (`container_missing`, `image_missing` say so). `seen`: the
   * engine's view of the container before the disk check; `removed`: the disk check has removed the workspace's
   * containers since (it replaced their volume), so the container is made again from the image `seen` records.
   */
  const reuseServer = async (ws: WorkspaceState, spec: WorkspaceSpec, server: ServerSpec, seen: Docker.ContainerInspectInfo | undefined, removed: boolean, why: Reuse) => {
    // Made before the first await: a restarted gateway knows no server yet (see serverState).
    const st = serverState(ws, server);
    const own = seen?.Config.Labels?.[LABELS.workspaceUid] === ws.uid ? seen : undefined;
    const source = wakeImage(own ? { image: own.Config.Image, id: own.Image } : undefined, st.image);
    const when = why === 'wake' ? 'at wake-up' : why === 'restart' ? 'at start-up' : 'at a secret change';
    if (!own) {
      event(ws, 'container_missing', server.name, {
        reason: `not found ${when}`,
        ...(source.from === 'recorded' ? { image: source.recorded.image } : { resolving: true }),
      });
    }
    const image = source.from === 'known' ? source.image : source.from === 'recorded' ? await images.recordedImage(server, source.recorded) : undefined;
    if (!image) {
      if (source.from === 'recorded') {
        event(ws, 'image_missing', server.name, { reason: `the image recorded for this server is gone ${when}`, image: source.recorded.image, id: source.recorded.id, resolving: true });
      }
      logger.warn({ workspace: ws.name, server: server.name, source }, 'no image recorded for this server is left: converging it like a create');
      return convergeServer(ws, spec, server);
    }
    return convergeServer(ws, spec, server, { image: { ...image, cached: true }, container: removed && own ? undefined : seen });
  };

  /**
   * The quota filesystem behind /workspace; a volume on another device (older gateway, reboot) is replaced. True
   * when the workspace's containers were removed for that (converge makes them again).
   */
  const ensureDisk = async (ws: WorkspaceState, spec: WorkspaceSpec): Promise<boolean> => {
    const name = volumeName(ws.name, ws.uid);
    const existing = await runtime.inspectVolume(name);
    // The volume names the device the image was attached to: checked first, so a wake-up lists no loop devices.
    const disk = await isolation.disks.ensure(ws.uid, spec.resources.disk, existing?.options.device);
    if (existing && existing.options.device === disk.device && existing.options.type === 'ext4') return false;
    if (existing) {
      // A volume cannot change its device while mounted: its containers go first and are recreated by converge.
      for (const st of ws.servers.values()) if (st.containerId) await destroyServer(ws, st);
      for (const c of await runtime.listContainers([`${LABELS.workspaceUid}=${ws.uid}`])) await runtime.remove(c.id);
      // A plain volume from an earlier version holds the workspace's data: it moves into the quota filesystem.
      const migrate = existing.options.device === undefined && existing.mountpoint !== '';
      if (migrate) await isolation.disks.copyInto(disk.device, existing.mountpoint);
      await runtime.removeVolume(name);
      event(ws, 'volume_replaced', undefined, { volume: name, previousDevice: existing.options.device ?? null, device: disk.device, migrated: migrate });
    }
    await runtime.createDeviceVolume(name, { ...workspaceLabels(ws.name, ws.uid, deps.gatewayId), [LABELS.diskImage]: disk.image }, disk.device, 'ext4', 'nosuid,nodev');
    return existing !== undefined;
  };

  /** The workspace network, its firewall rules and its egress proxy, in that order: nothing is reachable before the rules are in. */
  const ensureNetwork = async (ws: WorkspaceState, egress: readonly string[]) => {
    const name = networkName(ws.name, ws.uid);
    const bridge = bridgeName(ws.uid);
    const net = await runtime.ensureNetwork(name, workspaceLabels(ws.name, ws.uid, deps.gatewayId), bridge);
    await isolation.firewall.apply({ uid: ws.uid, gatewayId: deps.gatewayId, bridge, proxy: { address: net.gateway, port: isolation.egressPort } });
    if (ws.proxy && ws.network?.gateway === net.gateway) {
      ws.proxy.setAllowlist(egress);
    } else {
      await ws.proxy?.close();
      ws.proxy = await isolation.startProxy({
        allowlist: egress,
        host: net.gateway,
        port: isolation.egressPort,
        protectedPorts: isolation.protectedPorts(),
        record: (r) => recordEgress(ws, r),
      });
    }
    ws.network = { name, bridge, gateway: net.gateway, subnet: net.subnet, proxyPort: isolation.egressPort };
  };

  const removeNetwork = async (ws: WorkspaceState): Promise<{ networks: number; rules: number }> => {
    await ws.proxy?.close();
    ws.proxy = undefined;
    ws.network = undefined;
    const rules = await isolation.firewall.remove(ws.uid);
    const networks = await runtime.listNetworks([`${LABELS.workspaceUid}=${ws.uid}`]);
    for (const n of networks) await runtime.removeNetwork(n.id);
    return { networks: networks.length, rules };
  };

  /**
   * `reuse`: keep the images the servers' containers were made from (reuseServer for each server): a wake-up from
   * hibernation (then no network clean-up unless one is known), a start-up of a workspace whose spec was converged,
   * or a secret change. Without it (a create, an apply) every package is resolved again.
   */
  const converge = async (ws: WorkspaceState, how: { reuse?: Reuse } = {}) => {
    const rec = store.getByUid(ws.uid);
    if (!rec || ws.deleting) return;
    const spec = rec.spec;
    ws.failure = undefined;
    let seen: (Docker.ContainerInspectInfo | undefined)[] = [];
    let removed = false;
    try {
      // Reusing, first read each server's container, the record of the image it runs: a replaced volume (its loop
      // device changed, e.g. after a host reboot) removes the containers.
      if (how.reuse) seen = await Promise.all(spec.servers.map((s) => runtime.inspect(containerName(ws.name, s.name))));
      removed = await ensureDisk(ws, spec);
      if (spec.network !== 'none') await ensureNetwork(ws, spec.network.egress);
    } catch (err) {
      // Without its quota or its fence (or, reusing, the engine's answer) a workspace does not start at all.
      const reason = err instanceof Error ? err.message : String(err);
      for (const st of ws.servers.values()) st.phase = `failed: ${reason}`;
      event(ws, 'workspace_failed', undefined, { reason });
      ws.failure = reason;
      setStatus(ws, 'failed');
      return;
    }
    for (const [name, st] of ws.servers) {
      if (!spec.servers.some((s) => s.name === name)) {
        await destroyServer(ws, st);
        ws.servers.delete(name);
      }
    }
    const results = await Promise.allSettled(spec.servers.map((s, i) => (how.reuse ? reuseServer(ws, spec, s, seen[i], removed, how.reuse) : convergeServer(ws, spec, s))));
    // Back to network "none": the servers have left the network; now it, its proxy and its rules go. A workspace
    // hibernates only after a converge that finished, which for "none" removed them; the spec cannot change while
    // it sleeps (an apply converges without `reuse`), so a wake-up has nothing to remove unless this process knows
    // one. A start-up is not on the hot path and knows nothing yet: it cleans up.
    const mayHaveNetwork = how.reuse !== 'wake' || ws.network !== undefined || ws.proxy !== undefined;
    if (spec.network === 'none' && mayHaveNetwork && results.every((r) => r.status === 'fulfilled')) await removeNetwork(ws);
    const failed = results
      .map((r, i) => ({ r, server: spec.servers[i]!.name }))
      .filter((x): x is { r: PromiseRejectedResult; server: string } => x.r.status === 'rejected');
    if (failed.length > 0) {
      const reasons: string[] = [];
      for (const f of failed) {
        const st = ws.servers.get(f.server);
        const reason = f.r.reason instanceof Error ? f.r.reason.message : String(f.r.reason);
        if (st) {
          st.status = 'failed';
          st.phase = `failed: ${reason}`;
        }
        event(ws, 'workspace_failed', f.server, { reason });
        reasons.push(`server "${f.server}": ${reason}`);
      }
      ws.failure = reasons.join('; ');
      setStatus(ws, 'failed');
      return;
    }
    // The engine now matches this generation: a restart may adopt it as it is (an apply queued since runs next).
    if (rec.convergedGeneration !== rec.generation) store.setConverged(ws.uid, rec.generation);
    onServerUp(ws);
  };

  const teardown = async (ws: WorkspaceState) => {
    ws.deleting = true;
    clearTimeout(ws.stableTimer);
    for (const st of ws.servers.values()) await destroyServer(ws, st);
    // Anything else labelled with this workspace (left by a crash of an earlier gateway) goes too.
    for (const c of await runtime.listContainers([`${LABELS.workspaceUid}=${ws.uid}`])) {
      await runtime.remove(c.id);
      event(ws, 'container_destroyed', c.labels[LABELS.server], { container: c.name });
    }
    const volumes = await runtime.listVolumes([`${LABELS.workspaceUid}=${ws.uid}`]);
    for (const v of volumes) {
      await runtime.removeVolume(v.name);
      const image = v.labels[LABELS.diskImage];
      if (image) await isolation.disks.releaseImage(image);
    }
    const disk = await isolation.disks.release(ws.uid);
    const net = await removeNetwork(ws);
    event(ws, 'resources_cleaned', undefined, { volumes: volumes.length, networks: net.networks, firewallRules: net.rules, diskImage: disk.deleted });
    store.remove(ws.uid);
    states.delete(ws.uid);
    if (byName.get(ws.name) === ws) byName.delete(ws.name);
    for (const l of goneListeners) l(ws.name, ws.uid);
  };

  // ---- hibernation ---------------------------------------------------------------------------------------

  /** Stops an idle workspace's processes; containers, volume and state stay for a fast wake-up. */
  const hibernate = async (ws: WorkspaceState, idleMs: number, force = false) => {
    if (ws.deleting || ws.hibernating || ws.active > 0 || store.getByUid(ws.uid)?.status !== 'ready') return;
    // Judged idle when queued; still idle now? (A create or a request may have finished in between.)
    const after = durationMs(ws.spec.hibernate.after);
    if (!force && (after === undefined || Date.now() - ws.lastActive < after)) return;
    ws.hibernating = true;
    await Promise.all(
      [...ws.servers.values()].map(async (st) => {
        st.stopping = true;
        clearTimeout(st.restartTimer);
        st.generation++;
        st.conn?.close('the workspace is hibernating');
        st.stdio?.close();
        if (st.containerId) await runtime.kill(st.containerId);
        // Forget the container: the wake-up adopts it by name, which starts it again with fresh secrets.
        st.containerId = undefined;
        st.configHash = undefined;
        st.status = 'stopped';
        st.phase = 'hibernating';
        st.stopping = false;
      }),
    );
    // Reported once every process has stopped.
    setStatus(ws, 'hibernating');
    event(ws, 'workspace_hibernated', undefined, { idleMs });
  };

  const wake = (ws: WorkspaceState): Promise<void> => {
    ws.waking ??= enqueue(ws, 'wake', async () => {
      const started = performance.now();
      ws.hibernating = false;
      ws.lastActive = Date.now();
      setStatus(ws, 'creating');
      await converge(ws, { reuse: 'wake' });
      const ms = Math.round(performance.now() - started);
      event(ws, 'workspace_woken', undefined, { ms });
      hibernation.onWake?.(ms);
    }).finally(() => {
      ws.waking = undefined;
    });
    return ws.waking;
  };

  const hibernation: HibernationOptions = { checkEveryMs: 5_000, ...deps.hibernation };
  const idleSweeper = setInterval(() => {
    const now = Date.now();
    for (const ws of states.values()) {
      const after = durationMs(ws.spec.hibernate.after);
      if (after === undefined || ws.hibernating || ws.deleting || ws.active > 0 || now - ws.lastActive < after) continue;
      void enqueue(ws, 'hibernate', () => hibernate(ws, now - ws.lastActive));
    }
  }, hibernation.checkEveryMs);
  idleSweeper.unref();

  // ---- public operations -------------------------------------------------------------------------------

  return {
    create(spec: WorkspaceSpec, owner: string): WorkspaceRecord {
      if (store.get(spec.name)) throw conflict(`workspace "${spec.name}" already exists`);
      const rec = store.create(spec, owner);
      const ws = stateFor(rec);
      event(ws, 'workspace_created', undefined, { owner, servers: spec.servers.map((s) => s.name) });
      void enqueue(ws, 'create', () => converge(ws));
      return rec;
    },

    update(name: string, spec: WorkspaceSpec): WorkspaceRecord {
      const rec = store.get(name);
      if (!rec || rec.status === 'deleting') throw notFound(`workspace "${name}"`);
      if (spec.name !== name) throw new AppError('invalid', `name: the spec names "${spec.name}" but the URL names "${name}"`);
      store.replaceSpec(rec.uid, spec);
      const ws = stateFor(store.getByUid(rec.uid)!);
      ws.hibernating = false;
      ws.lastActive = Date.now();
      setStatus(ws, 'creating');
      event(ws, 'workspace_updated', undefined, { servers: spec.servers.map((s) => s.name) });
      void enqueue(ws, 'update', () => converge(ws));
      return store.getByUid(rec.uid)!;
    },

    delete(name: string): void {
      const rec = store.get(name);
      if (!rec) throw notFound(`workspace "${name}"`);
      if (rec.status === 'deleting') return;
      const ws = stateFor(rec);
      store.setStatus(rec.uid, 'deleting');
      event(ws, 'workspace_deleted');
      ws.deleting = true;
      void enqueue(ws, 'delete', () => teardown(ws));
    },

    servers(uid: string): ServerView[] {
      const ws = states.get(uid);
      if (!ws) return [];
      return [...ws.servers.values()].map((s) => ({
        name: s.name,
        status: s.status,
        phase: s.phase,
        ...(s.containerId ? { container: { id: s.containerId, name: containerName(ws.name, s.name) } } : {}),
        ...(s.image ? { image: s.image.image } : {}),
        ...(s.image?.packageVersion ? { package: s.image.packageVersion } : {}),
        ...(s.conn?.initializeResult
          ? { serverInfo: s.conn.initializeResult.serverInfo, protocolVersion: s.conn.initializeResult.protocolVersion }
          : {}),
        restarts: s.crashes.length,
      }));
    },

    logs(uid: string, server?: string, tail = 200): { server: string; at: string; line: string }[] {
      const ws = states.get(uid);
      if (!ws) return [];
      if (server !== undefined && !ws.servers.has(server)) throw notFound(`server "${server}"`);
      const out: { server: string; at: string; line: string }[] = [];
      for (const s of ws.servers.values()) {
        if (server !== undefined && s.name !== server) continue;
        for (const l of s.logs.tail(tail)) out.push({ server: s.name, ...l });
      }
      return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).slice(-tail);
    },

    /**
     * A secret changed: restart the servers that receive it (and only those). Servers that take secrets from the
     * container environment are recreated through converge, from the images they run (no package is resolved);
     * launcher servers are restarted in place. A hibernating
     * workspace is left asleep: its wake-up hands launcher servers the current values and recreates a container
     * whose environment no longer matches (its configuration hash differs).
     */
    secretChanged(workspace: string, secret: string): string[] {
      const ws = byName.get(workspace);
      if (!ws || ws.deleting) return [];
      const users = [...ws.servers.values()].filter((s) => s.spec.secrets.some((x) => x.name === secret));
      if (users.length === 0) return [];
      void enqueue(ws, 'secret change', async () => {
        // Judged when it runs: the workspace may have gone to sleep, or woken, since the change was queued.
        if (ws.hibernating) return;
        for (const st of users) {
          // A process that already started with the current values needs nothing.
          if (st.spec.package !== undefined && st.launchDigest !== digest(launchConfig(ws, st.spec, false))) {
            await restartServer(ws, st, `secret ${secret} changed`);
          }
        }
        if (users.some((st) => st.spec.package === undefined)) await converge(ws, { reuse: 'secret' });
      });
      return users.map((s) => s.name);
    },

    /** The live connection to a server, for the MCP endpoint and for tests of the bridge. */
    connection(workspace: string, server: string): UpstreamConnection | undefined {
      const ws = byName.get(workspace);
      const st = ws && !ws.deleting ? ws.servers.get(server) : undefined;
      return st?.status === 'running' ? st.conn : undefined;
    },

    /**
     * Why a workspace's servers are not running when it could not be started (status `failed`: its create, apply or
     * wake-up failed), else undefined. For the failure path of the MCP endpoint only: it reads the store.
     */
    unavailable(workspace: string): string | undefined {
      const ws = byName.get(workspace);
      if (!ws || ws.deleting || store.getByUid(ws.uid)?.status !== 'failed') return undefined;
      // After a gateway restart the reason is in the workspace's events only.
      return ws.failure ?? 'its last start failed (see the workspace events)';
    },

    /** The current spec of a live workspace, from memory. */
    spec(workspace: string): WorkspaceSpec | undefined {
      const ws = byName.get(workspace);
      return ws && !ws.deleting ? ws.spec : undefined;
    },

    /** The uid of a live workspace, from memory. */
    uidOf(workspace: string): string | undefined {
      const ws = byName.get(workspace);
      return ws && !ws.deleting ? ws.uid : undefined;
    },

    /** The servers a workspace's spec names (in spec order), from memory; undefined for an unknown workspace. */
    serverNames(workspace: string): string[] | undefined {
      const ws = byName.get(workspace);
      if (!ws || ws.deleting) return undefined;
      return ws.serverOrder;
    },

    /** What `verify` needs to know of a live workspace: its spec, network and server containers. */
    isolationView(uid: string): IsolationView | undefined {
      const ws = states.get(uid);
      const rec = store.getByUid(uid);
      if (!ws || !rec || ws.deleting) return undefined;
      return {
        name: ws.name,
        spec: rec.spec,
        ...(ws.network && rec.spec.network !== 'none' ? { network: { gateway: ws.network.gateway, proxyPort: ws.network.proxyPort } } : {}),
        servers: rec.spec.servers.map((s) => {
          const st = ws.servers.get(s.name);
          return { name: s.name, status: st?.status ?? 'pending', ...(st?.containerId ? { containerId: st.containerId } : {}) };
        }),
      };
    },

    /** Called once a workspace's deletion is complete. */
    onWorkspaceGone(listener: (workspace: string, uid: string) => void): () => void {
      goneListeners.add(listener);
      return () => goneListeners.delete(listener);
    },

    /** Called each time a server finishes its handshake (first start, restart, adoption). */
    onConnection(listener: (workspace: string, server: string, conn: UpstreamConnection) => void): () => void {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },

    /** Called when a server crashes (false) and when it is back after a crash (true); deliberate stops are not. */
    onAvailability(listener: (workspace: string, server: string, available: boolean) => void): () => void {
      availabilityListeners.add(listener);
      return () => availabilityListeners.delete(listener);
    },

    /** Waits for every queued operation on a workspace (tests and shutdown). */
    async settled(name: string): Promise<void> {
      const rec = store.get(name);
      const ws = rec && states.get(rec.uid);
      if (ws) await ws.queue;
    },

    /**
     * Start-up reconciliation: removes labelled resources that belong to no known workspace, finishes
     * interrupted deletes, leaves hibernating workspaces asleep, and converges every other workspace, adopting
     * containers that match, with the images they were made from when its spec had been converged.
     */
    async reconcile(): Promise<{ removedContainers: number; removedVolumes: number; removedNetworks: number; removedRules: number; releasedDisks: number }> {
      const known = new Map(store.list().map((r) => [r.uid, r]));
      const live = (labels: Record<string, string>) => {
        // Another gateway's resources are not ours to judge: count them as live.
        if (!ownedBy(labels, deps.gatewayId)) return true;
        const uid = labels[LABELS.workspaceUid];
        return uid !== undefined && known.has(uid) && known.get(uid)!.status !== 'deleting';
      };
      let removedContainers = 0;
      let removedVolumes = 0;
      let removedNetworks = 0;
      for (const c of await runtime.listContainers()) {
        // Only workspace containers: other labelled containers (e.g. a future egress proxy) carry no workspace.
        if (c.labels[LABELS.workspace] === undefined || live(c.labels)) continue;
        await runtime.remove(c.id);
        removedContainers++;
      }
      for (const v of await runtime.listVolumes()) {
        if (v.labels[LABELS.workspace] === undefined || live(v.labels)) continue;
        await runtime.removeVolume(v.name);
        const image = v.labels[LABELS.diskImage];
        if (image) await isolation.disks.releaseImage(image);
        removedVolumes++;
      }
      for (const n of await runtime.listNetworks()) {
        if (n.labels[LABELS.workspace] === undefined || live(n.labels)) continue;
        await runtime.removeNetwork(n.id);
        removedNetworks++;
      }
      const liveUids = new Set([...known.values()].filter((r) => r.status !== 'deleting').map((r) => r.uid));
      const removedRules = await isolation.firewall.reconcile(liveUids, deps.gatewayId);
      const releasedDisks = await isolation.disks.reconcile(liveUids);
      for (const rec of known.values()) {
        const ws = stateFor(rec);
        if (rec.status === 'deleting') {
          ws.deleting = true;
          void enqueue(ws, 'delete', () => teardown(ws));
        } else if (rec.status === 'hibernating') {
          // Stays asleep: the first request wakes it (thousands of registered workspaces must not all start).
          ws.hibernating = true;
        } else if (rec.status !== 'failed') {
          if (rec.status !== 'creating') setStatus(ws, 'creating');
          // A spec the engine was made to match is adopted as it runs, from the images its containers were made
          // from (no registry, no new version); a create or an apply cut short by the restart is finished in full.
          const adopt = rec.convergedGeneration === rec.generation;
          void enqueue(ws, 'reconcile', () => converge(ws, adopt ? { reuse: 'restart' } : {}));
        }
      }
      if (removedContainers + removedVolumes + removedNetworks + removedRules + releasedDisks > 0) {
        logger.info({ removedContainers, removedVolumes, removedNetworks, removedRules, releasedDisks }, 'removed orphaned resources');
      }
      return { removedContainers, removedVolumes, removedNetworks, removedRules, releasedDisks };
    },

    /**
     * Marks a request's start (+1) or end (-1) on a workspace: idle time counts from the last end. Returns a
     * promise to wait for when the workspace was hibernating (it is woken), else undefined.
     */
    activity(workspace: string, delta: 1 | -1): Promise<void> | undefined {
      const ws = byName.get(workspace);
      if (!ws) return undefined;
      ws.active = Math.max(0, ws.active + delta);
      ws.lastActive = Date.now();
      if (delta === 1 && (ws.hibernating || ws.waking)) return wake(ws);
      return undefined;
    },

    /** Puts an idle workspace to sleep now (operators, tests); false when it is busy or not ready. */
    async hibernateNow(workspace: string): Promise<boolean> {
      const ws = byName.get(workspace);
      if (!ws) return false;
      await enqueue(ws, 'hibernate', () => hibernate(ws, Date.now() - ws.lastActive, true));
      return ws.hibernating;
    },

    /** Detaches from every container without stopping them: the next gateway adopts them. */
    async shutdown(): Promise<void> {
      shuttingDown = true;
      clearInterval(idleSweeper);
      for (const ws of states.values()) {
        clearTimeout(ws.stableTimer);
        for (const st of ws.servers.values()) {
          clearTimeout(st.restartTimer);
          st.generation++;
          st.conn?.close('the gateway is shutting down');
          st.stdio?.close();
        }
      }
      await Promise.allSettled([...states.values()].map((ws) => ws.queue));
      // Proxies stop with the gateway; the firewall rules stay, so the containers stay shut in until the next start.
      await Promise.allSettled([...states.values()].map((ws) => (ws.proxy ? ws.proxy.close() : Promise.resolve())));
    },
  };
}

export type WorkspaceManager = ReturnType<typeof createWorkspaceManager>;
