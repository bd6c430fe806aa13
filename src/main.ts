// Wiring only: builds every domain from one parsed config and starts the HTTP server.
import { mkdirSync, chmodSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { createTokenVerifier, effectiveRole, loadOrCreateSigningKey } from './auth/index.js';
import type { GatewayConfig, WorkspaceSpec } from './config/index.js';
import { createImageBuilder, npmEnvironment } from './images/index.js';
import { createApp, createMcpRoutes } from './ingress/index.js';
import { createWorkspaceRouter } from './mcp/index.js';
import { createMetrics } from './monitor/index.js';
import { startEgressProxy } from './egress/index.js';
import { checkHostTools, createDiskQuotas, createDockerRuntimeClient, createFirewall, hostKernel, runCommand } from './runtime/index.js';
import { createWorkspaceStore, loadOrCreateGatewayId, openDatabase } from './store/index.js';
import { createVerifier, createWorkspaceManager, unsupportedReasons } from './workspaces/index.js';
import type { SupervisionOptions, WorkspaceManager } from './workspaces/index.js';

export interface Gateway {
  url: string;
  dataDir: string;
  manager: WorkspaceManager;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: Logger;
  supervision?: Partial<SupervisionOptions>;
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
  const store = createWorkspaceStore(db);
  const signingKey = await loadOrCreateSigningKey(dataDir);
  const verify = createTokenVerifier({
    embedded: signingKey,
    ...(config.jwksUrl ? { external: { jwksUrl: config.jwksUrl, issuer: config.jwtIssuer!, audience: config.jwtAudience! } } : {}),
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
  let listenPort = config.port;
  const firewall = createFirewall(runCommand);
  const disks = createDiskQuotas({ dir: join(dataDir, 'volumes'), run: runCommand });
  const manager = createWorkspaceManager({
    store,
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

  const router = createWorkspaceRouter({ directory: manager, logger });
  manager.onWorkspaceGone((ws) => router.forgetWorkspace(ws));
  const sweeper = setInterval(() => router.sweep(Date.now()), 60_000);
  sweeper.unref();
  const mcp = createMcpRoutes({
    router,
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

  const metrics = createMetrics();
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
        await new Promise<void>((ok) => {
          server.close(() => ok());
          server.closeAllConnections();
        });
        clearInterval(sweeper);
        await manager.shutdown();
        db.close();
      })();
      return closing;
    },
  };
}
