// The gateway's HTTP front door: health, metrics, authentication, then the admin API (the MCP endpoint joins
// here). Never throws to node:http: every failure becomes an answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { bearerToken } from '../auth/index.js';
import type { TokenVerifier } from '../auth/index.js';
import type { AuditLog } from '../audit/index.js';
import type { Metrics } from '../monitor/index.js';
import { WORKSPACE_STATUSES } from '../store/index.js';
import type { WorkspaceStore } from '../store/index.js';
import { createAdminRoutes } from './admin-routes.js';
import type { AdminDeps } from './admin-routes.js';
import { sendError, sendProblem } from './http-util.js';

export interface AppDeps extends AdminDeps {
  audit: Pick<AuditLog, 'append'>;
  /** The MCP endpoint (and its metadata); returns false for paths that are not its own. */
  mcp(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  verify: TokenVerifier;
  logger: Logger;
  metrics: Metrics;
  engineHealthy(): Promise<boolean>;
  store: WorkspaceStore;
}

function routeFamily(path: string): string {
  if (path.startsWith('/api/')) return 'admin';
  if (path.startsWith('/mcp/') || path.startsWith('/.well-known/')) return 'mcp';
  if (path === '/healthz' || path === '/metrics') return path.slice(1);
  return 'other';
}

export function createApp(deps: AppDeps) {
  const admin = createAdminRoutes(deps);
  const { logger, metrics } = deps;

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (url.pathname === '/healthz' && req.method === 'GET') {
      const engine = await deps.engineHealthy();
      const body = JSON.stringify({ status: engine ? 'ok' : 'unavailable', engine: engine ? 'ok' : 'unreachable' });
      res.writeHead(engine ? 200 : 503, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (url.pathname === '/metrics' && req.method === 'GET') {
      const counts = new Map<string, number>(WORKSPACE_STATUSES.map((s) => [s, 0]));
      for (const w of deps.store.list()) counts.set(w.status, (counts.get(w.status) ?? 0) + 1);
      for (const [status, n] of counts) metrics.workspaces.set({ status }, n);
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      return;
    }
    if (await deps.mcp(req, res, url)) return;
    if (!url.pathname.startsWith('/api/v1/')) {
      sendProblem(res, 404, `no route for ${url.pathname}`);
      return;
    }
    // The token is read from the Authorization header only; a token in the query string is ignored.
    const token = bearerToken(req.headers.authorization);
    const challenge = { 'www-authenticate': 'Bearer realm="mcpx"' };
    if (!token) {
      sendProblem(res, 401, 'a bearer token is required', {}, challenge);
      return;
    }
    const verified = await deps.verify(token);
    if (!verified.ok) {
      sendProblem(res, 401, verified.reason, {}, { 'www-authenticate': 'Bearer realm="mcpx", error="invalid_token"' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // Every admin action enters the audit trail with who did it and how it ended (never a body: it may hold a secret).
      const actor = verified.identity.sub;
      const workspace = /^\/api\/v1\/workspaces\/([a-z0-9-]+)/.exec(url.pathname)?.[1];
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        deps.audit.append({
          kind: 'admin',
          actor,
          ...(workspace ? { workspace } : {}),
          method: `${req.method ?? ''} ${url.pathname}`,
          decision: res.statusCode < 400 ? 'allow' : 'deny',
          outcome: String(res.statusCode),
          latencyMs: Number(process.hrtime.bigint() - started) / 1e6,
        });
      });
    }
    if (!(await admin(req, res, verified.identity, url))) sendProblem(res, 404, `no route for ${url.pathname}`);
  };

  return function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      sendProblem(res, 400, 'the request target is not a valid URL');
      return;
    }
    const family = routeFamily(url.pathname);
    res.on('finish', () => {
      metrics.httpRequests.inc({ route: family, status: String(res.statusCode) });
      metrics.httpDuration.observe({ route: family }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    handle(req, res, url).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, err, (e) => logger.error({ err: e, path: url.pathname }, 'request failed'));
    });
  };
}
