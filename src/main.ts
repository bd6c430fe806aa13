// Wiring only: builds every domain from one parsed config and starts the HTTP server.
import { mkdirSync, chmodSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { AUDIT_HEAD_FILE, createAuditLog } from './audit/index.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { createTokenVerifier, effectiveRole, loadOrCreateSigningKey } from './auth/index.js';
import type { GatewayConfig, WorkspaceSpec } from './config/index.js';
import { createImageBuilder, npmEnvironment } from './images/index.js';
import { createApp, createMcpRoutes, createRequestGuard } from './ingress/index.js';
import { createWorkspaceRouter } from './mcp/index.js';
import { createSchemaValidator } from './policy/index.js';
import { createGuardrailsCache } from './workspaces/index.js';
import { createMetrics } from './monitor/index.js';
import { startEgressProxy } from './egress/index.js';
import { checkHostTools, createDiskQuotas, createDockerRuntimeClient, createFirewall, hostKernel, runCommand } from './runtime/index.js';
import { createSecretStore, createWorkspaceStore, loadOrCreateGatewayId, openDatabase } from './store/index.js';
import { createRedactionRegistry, createSecretService } from './secrets/index.js';
import { createVerifier, createWorkspaceManager, unsupportedReasons } from './workspaces/index.js';
import type { HibernationOptions, SupervisionOptions, WorkspaceManager } from './workspaces/index.js';

export interface Gateway {
  url: string;
  dataDir: string;
  manager: WorkspaceManager;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: Logger;
  supervision?: Partial<SupervisionOptions>;
  hibernation?: Partial<HibernationOptions>;
}

export function createLogger(level: GatewayConfig['logLevel']): Logger {
  // Logs go to stderr: stdout is reserved for what commands print.
  return pino({ level, base: { service: 'mcpx' } }, pino.destination(2));
}

/** Makes the data directory (mode 0700) and returns its absolute path. */
export function prepareDataDir(dir: string): string {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  chmodSync(abs, 0o700);
  return abs;
}

export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const dataDir = prepareDataDir(config.dataDir);
  const db = openDatabase(join(dataDir, 'mcpx.db'));
  const headFile = join(dataDir, AUDIT_HEAD_FILE);
  // The head file is written off the request path: one write in flight at most, the newest head wins.
  let headPending: string | undefined;
  let headWriting: Promise<void> | undefined;
  let headWrittenAt = 0;
  let headTimer: NodeJS.Timeout | undefined;
  const writeHead = (): Promise<void> => {
    if (headWriting || headPending === undefined) return headWriting ?? Promise.resolve();
    headWrittenAt = Date.now();
    const text = headPending;
    headPending = undefined;
    headWriting = writeFile(headFile, text, { mode: 0o600 })
      .catch((err: unknown) => logger.error({ err }, 'could not write the audit head file'))
      .finally(() => {
        headWriting = undefined;
        void writeHead();
      });
    return headWriting;
  };
  const audit = createAuditLog(db, (head) => {
    headPending = JSON.stringify(head);
    // At most one write a second: it is a file write, and it is only there to notice a cut-off tail.
    const wait = headWrittenAt + 1000 - Date.now();
    if (wait <= 0) void writeHead();
    else
      headTimer ??= setTimeout(() => {
        headTimer = undefined;
        void writeHead();
      }, wait).unref();
  });
  // Every lifecycle and security event also enters the tamper-evident trail.
  const store = createWorkspaceStore(db, {
    onEvent: (workspace, e) => audit.append({ kind: 'event', workspace, method: e.type, ...(e.server ? { server: e.server } : {}), ...(e.detail ? { detail: e.detail } : {}) }),
  });
  const signingKey = await loadOrCreateSigningKey(dataDir);
  const verify = createTokenVerifier({
    embedded: signingKey,
    ...(config.jwksUrl ? { external: { jwksUrl: config.jwksUrl, issuer: config.jwtIssuer!, audience: config.jwtAudience! } } : {}),
  });

  const secrets = createSecretService({
    store: createSecretStore(db),
    masterKeyFile: config.masterKeyFile ?? join(dataDir, 'master.key'),
    createMasterKey: config.masterKeyFile === undefined,
  });
  const redaction = createRedactionRegistry({
    values: (uid) => secrets.values(uid),
    policy: (uid) => store.getByUid(uid)?.spec.redaction.patterns ?? 'redact',
  });

  const docker = new Docker();
  const runtime = createDockerRuntimeClient(docker);
  if (!(await runtime.ping())) {
    db.close();
    throw new Error('cannot reach the Docker Engine (DOCKER_HOST, else /var/run/docker.sock); start it and try again');
  }
  const images = createImageBuilder({
    docker,
    cacheDir: join(dataDir, 'cache'),
    logger,
    resolveTtlMs: config.imageCacheTtlMs,
    npmEnv: npmEnvironment(process.env),
  });

  let baseUrl = `http://${config.host}:${config.port}`;
  const metrics = createMetrics();
  let listenPort = config.port;
  const firewall = createFirewall(runCommand);
  const disks = createDiskQuotas({ dir: join(dataDir, 'volumes'), run: runCommand });
  const manager = createWorkspaceManager({
    hibernation: { ...options.hibernation, onWake: (ms) => metrics.wakeups.observe(ms / 1000) },
    store,
    secrets,
    redactLog: (uid, line) => redaction.text(uid, line),
    runtime,
    images,
    logger,
    apiEndpoint: (ws) => `${config.publicUrl ?? baseUrl}/mcp/${ws}`,
    ...(options.supervision ? { supervision: options.supervision } : {}),
    gatewayId: loadOrCreateGatewayId(dataDir),
    isolation: {
      disks,
      firewall,
      egressPort: config.egressProxyPort,
      protectedPorts: () => [listenPort, config.egressProxyPort],
      startProxy: startEgressProxy,
    },
  });

  // What the host can do, checked once (read-only); a spec needing a missing piece is refused with the fix.
  let hostMissing: Promise<string[]> | undefined;
  const checkSupported = async (spec: WorkspaceSpec): Promise<string[]> => {
    hostMissing ??= checkHostTools(runCommand, process.getuid?.()).then((checks) => checks.filter((c) => c.status === 'missing').map((c) => c.name));
    return unsupportedReasons(spec, { runtimes: await runtime.runtimes(), missing: await hostMissing });
  };

  const verifier = createVerifier({ runtime, view: (uid) => manager.isolationView(uid), hostKernel: hostKernel(), gatewayPort: () => listenPort });

  const guardrails = createGuardrailsCache();
  const router = createWorkspaceRouter({
    directory: {
      serverNames: (ws) => manager.serverNames(ws),
      connection: (ws, server) => manager.connection(ws, server),
      unavailable: (ws) => manager.unavailable(ws),
      onConnection: (listener) => manager.onConnection(listener),
      onAvailability: (listener) => manager.onAvailability(listener),
      activity: (ws, delta) => manager.activity(ws, delta),
      guardrails: (ws) => {
        const spec = manager.spec(ws);
        return spec && guardrails(spec);
      },
    },
    validator: createSchemaValidator(),
    logger,
    redaction: {
      forWorkspace: (ws) => {
        const uid = manager.uidOf(ws);
        return uid === undefined ? undefined : redaction.forWorkspace(uid);
      },
      onRedacted: (ws, server, hits) => {
        const uid = manager.uidOf(ws);
        if (uid !== undefined) store.addEvent(uid, 'secret_redacted', server, { secrets: hits.secrets, patterns: hits.patterns });
      },
    },
  });
  manager.onWorkspaceGone((ws, uid) => {
    router.forgetWorkspace(ws);
    redaction.invalidate(uid);
    secrets.forget(uid);
  });
  metrics.live('mcpx_mcp_sessions', 'Live MCP sessions of 2025-era clients', () => router.sessionCount);
  metrics.live('mcpx_listen_streams', 'Open subscriptions/listen streams of 2026-07-28 clients', () => router.listenerCount);
  const sweeper = setInterval(() => router.sweep(Date.now()), 60_000);
  sweeper.unref();
  const mcp = createMcpRoutes({
    router,
    guard: createRequestGuard((ws) => manager.spec(ws)),
    auditSettings: (ws) => manager.spec(ws)?.audit,
    audit,
    verify,
    roleOf: (workspace, identity) => {
      const uid = manager.uidOf(workspace);
      return uid === undefined ? undefined : effectiveRole(identity, store.roleOf(uid, identity.sub));
    },
    maxBodyBytes: config.maxBodyBytes,
    publicUrl: () => config.publicUrl?.replace(/\/+$/, '') ?? baseUrl,
    allowedOrigins: (config.allowedOrigins ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    ...(config.jwtIssuer ? { authorizationServer: config.jwtIssuer } : {}),
  });

  const app = createApp({
    store,
    manager,
    maxBodyBytes: config.maxBodyBytes,
    checkSupported,
    verify,
    verifyWorkspace: (uid) => verifier.verify(uid),
    logger,
    metrics,
    engineHealthy: () => runtime.ping(),
    mcp,
    secrets,
    onSpecReplaced: (rec) => redaction.invalidate(rec.uid),
    audit,
    auditLog: audit,
    onSecretChanged: (rec, name, removed) => {
      redaction.invalidate(rec.uid);
      if (!removed) manager.secretChanged(rec.name, name);
    },
  });

  const server = createServer({ keepAliveTimeout: 65_000 }, app);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(config.port, config.host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  // Known only once listening (port 0 picks one); containers are told it, so reconcile comes after.
  baseUrl = `http://${host}:${port}`;
  listenPort = port;
  await manager.reconcile();
  logger.info({ url: baseUrl, dataDir }, 'gateway started');

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    dataDir,
    manager,
    close() {
      closing ??= (async () => {
        // Listen streams are told the subscription ended (the revision's graceful close) before connections drop.
        router.endListeners('the gateway is shutting down');
        await new Promise<void>((ok) => {
          server.close(() => ok());
          server.closeAllConnections();
        });
        clearInterval(sweeper);
        await manager.shutdown();
        audit.flush();
        clearTimeout(headTimer);
        while (headWriting || headPending !== undefined) await writeHead();
        db.close();
      })();
      return closing;
    },
  };
}
