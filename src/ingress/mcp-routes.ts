// The MCP endpoint's front: Origin check, bearer authentication with RFC 9728 challenges, the caller's role,
// then the Streamable HTTP transport of the caller's era. Also serves the protected-resource metadata.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken } from '../auth/index.js';
import type { Identity, TokenVerifier } from '../auth/index.js';
import type { Role } from '../config/index.js';
import { createStatelessHttp, createStreamableHttp, routesToStateless } from '../mcp/index.js';
import type { McpAuditRecord, WorkspaceRouter } from '../mcp/index.js';
import { argumentsHash } from '../audit/index.js';
import type { AuditLog } from '../audit/index.js';
import type { RequestGuard } from './request-guard.js';

export interface McpRouteDeps {
  router: WorkspaceRouter;
  guard: Pick<RequestGuard, 'admit'>;
  /** The workspace's audit settings, and where MCP requests are recorded. */
  auditSettings(workspace: string): { requests: boolean; arguments: 'hash' | 'none' } | undefined;
  audit: Pick<AuditLog, 'append'>;
  verify: TokenVerifier;
  /** The caller's role in a live workspace, or undefined (unknown workspace or no role: both answer 404). */
  roleOf(workspace: string, identity: Identity): Role | undefined;
  maxBodyBytes: number;
  /** The gateway's public base URL (for metadata links and the default Origin allowlist). */
  publicUrl(): string;
  allowedOrigins: string[];
  /** The authorization server to advertise (an external identity provider's issuer), if any. */
  authorizationServer?: string;
}

const MCP_PATH = /^\/mcp\/([a-z0-9-]{1,40})\/?$/;
const METADATA_PATH = /^\/\.well-known\/oauth-protected-resource\/mcp\/([a-z0-9-]{1,40})$/;

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function createMcpRoutes(deps: McpRouteDeps) {
  const transport = createStreamableHttp({ router: deps.router, maxBodyBytes: deps.maxBodyBytes });
  // 2026-07-28 clients (no session, a version per request); it hands 2025-era POSTs (initialize) back to `transport`.
  const stateless = createStatelessHttp({ router: deps.router, maxBodyBytes: deps.maxBodyBytes, legacy: transport });

  const originAllowed = (origin: string | undefined): boolean => {
    if (origin === undefined) return true; // not a browser
    const own = new URL(deps.publicUrl());
    const allowed = new Set([own.origin, ...deps.allowedOrigins]);
    if (own.hostname === '127.0.0.1' || own.hostname === 'localhost') {
      allowed.add(`${own.protocol}//localhost${own.port ? `:${own.port}` : ''}`);
      allowed.add(`${own.protocol}//127.0.0.1${own.port ? `:${own.port}` : ''}`);
    }
    return allowed.has(origin);
  };

  const metadataUrl = (ws: string) => `${deps.publicUrl()}/.well-known/oauth-protected-resource/mcp/${ws}`;

  /** Returns false when the path is not the MCP endpoint's. */
  return async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const meta = METADATA_PATH.exec(url.pathname);
    if (meta) {
      json(res, 200, {
        resource: `${deps.publicUrl()}/mcp/${meta[1]!}`,
        ...(deps.authorizationServer ? { authorization_servers: [deps.authorizationServer] } : {}),
        bearer_methods_supported: ['header'],
        scopes_supported: ['mcpx:admin'],
        resource_name: `mcpx workspace ${meta[1]!}`,
      });
      return true;
    }
    const m = MCP_PATH.exec(url.pathname);
    if (!m) return false;
    const workspace = m[1]!;
    if (!originAllowed(req.headers.origin)) {
      json(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Forbidden: this Origin is not allowed' } });
      return true;
    }
    const token = bearerToken(req.headers.authorization);
    const challenge = (error?: string) => ({
      'www-authenticate': `Bearer resource_metadata="${metadataUrl(workspace)}"${error ? `, error="${error}"` : ''}`,
    });
    if (!token) {
      json(res, 401, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Unauthorized: a bearer token is required' } }, challenge());
      return true;
    }
    const verified = await deps.verify(token);
    if (!verified.ok) {
      json(res, 401, { jsonrpc: '2.0', id: null, error: { code: -32001, message: `Unauthorized: ${verified.reason}` } }, challenge('invalid_token'));
      return true;
    }
    const role = deps.roleOf(workspace, verified.identity);
    if (!role) {
      json(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Not Found' } });
      return true;
    }
    if (req.method === 'POST') {
      const take = deps.guard.admit(workspace, token, Date.now());
      if (!take.ok) {
        json(res, 429, { jsonrpc: '2.0', id: null, error: { code: -32029, message: `Too Many Requests: retry after ${take.retryAfterSeconds} s` } }, { 'retry-after': String(take.retryAfterSeconds) });
        return true;
      }
      // A hibernating workspace is started again before the request is served, transparently.
      const waking = deps.router.awake(workspace);
      if (waking) await waking;
    }
    const sub = verified.identity.sub;
    const settings = deps.auditSettings(workspace);
    const caller = {
      workspace,
      sub,
      role,
      currentRole: () => deps.roleOf(workspace, verified.identity),
      ...(settings?.requests === false
        ? {}
        : {
            audit: (r: McpAuditRecord) =>
              deps.audit.append({
                kind: 'mcp',
                actor: sub,
                workspace,
                method: r.method,
                decision: r.note.decision,
                latencyMs: r.latencyMs,
                outcome: r.outcome,
                ...(r.note.server ? { server: r.note.server } : {}),
                ...(r.note.target ? { target: r.note.target } : {}),
                ...(r.note.reason ? { reason: r.note.reason } : {}),
                ...(settings?.arguments === 'hash' && r.arguments !== undefined ? { argsHash: argumentsHash(r.arguments) } : {}),
              }),
          }),
    };
    await (routesToStateless(req) ? stateless(req, res, caller) : transport(req, res, caller));
    return true;
  };
}

