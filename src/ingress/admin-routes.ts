// The admin API under /api/v1: workspaces, events, logs, members. Authorisation per the contract: a caller
// with no role in a workspace gets 404, never a hint that it exists.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { effectiveRole, may } from '../auth/index.js';
import type { Action, Identity } from '../auth/index.js';
import { validateSpec } from '../config/index.js';
import type { Role, WorkspaceSpec } from '../config/index.js';
import { AppError, invalid, notFound } from '../shared/errors.js';
import type { WorkspaceRecord, WorkspaceStore } from '../store/index.js';
import type { VerifyResult, WorkspaceManager } from '../workspaces/index.js';
import type { SecretService } from '../secrets/index.js';
import type { AuditLog, AuditQuery } from '../audit/index.js';
import { readBody, sendJson, sendProblem } from './http-util.js';

export interface AdminDeps {
  store: WorkspaceStore;
  manager: WorkspaceManager;
  secrets: Pick<SecretService, 'set' | 'list' | 'remove'>;
  /** A secret was set or removed: rebuild redaction; on set, restart the servers that use it. */
  onSecretChanged(workspace: WorkspaceRecord, name: string, removed: boolean): void;
  onSpecReplaced(workspace: WorkspaceRecord): void;
  auditLog: Pick<AuditLog, 'append' | 'query'>;
  maxBodyBytes: number;
  /** Checks what the engine can do for a spec (e.g. gVisor present); returns errors naming the field. */
  checkSupported(spec: WorkspaceSpec): Promise<string[]>;
  /** Runs the isolation probe in each of a workspace's containers; undefined when the workspace is not live. */
  verifyWorkspace(uid: string): Promise<VerifyResult | undefined>;
}

type Handler = (ctx: { req: IncomingMessage; res: ServerResponse; who: Identity; params: string[]; url: URL }) => Promise<void>;

const NAME = '([a-z0-9-]{1,40})';

export function createAdminRoutes(deps: AdminDeps) {
  const { store, manager } = deps;

  const workspaceFor = (who: Identity, name: string, action: Action): WorkspaceRecord => {
    const rec = store.get(name);
    const role = rec && effectiveRole(who, store.roleOf(rec.uid, who.sub));
    if (!rec || !role) throw notFound(`workspace "${name}"`);
    if (!may(role, action)) throw new AppError('forbidden', `your role in workspace "${name}" (${role}) does not allow this`);
    return rec;
  };

  const readSpec = async (req: IncomingMessage): Promise<WorkspaceSpec> => {
    const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
    const raw = (await readBody(req, deps.maxBodyBytes)).toString('utf8');
    let doc: unknown;
    try {
      doc = type.includes('yaml') ? parseYaml(raw) : JSON.parse(raw);
    } catch {
      throw invalid(`the body is not valid ${type.includes('yaml') ? 'YAML' : 'JSON'}`);
    }
    const r = validateSpec(doc);
    if (!r.ok) throw invalid(`invalid workspace spec: ${r.errors.join('; ')}`, r.errors);
    const unsupported = await deps.checkSupported(r.spec);
    if (unsupported.length > 0) throw invalid(`workspace spec cannot run here: ${unsupported.join('; ')}`, unsupported);
    return r.spec;
  };

  const summary = (rec: WorkspaceRecord) => ({
    name: rec.name,
    status: rec.status,
    servers: manager.servers(rec.uid).map((s) => ({ name: s.name, status: s.status })),
  });

  const detail = (rec: WorkspaceRecord, role: Role) => ({
    name: rec.name,
    status: rec.status,
    owner: rec.owner,
    role,
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt,
    generation: rec.generation,
    servers: manager.servers(rec.uid),
    limits: rec.spec.resources,
    network: rec.spec.network,
    isolation: rec.spec.isolation,
    spec: rec.spec,
  });

  const routes: [string, RegExp, Handler][] = [
    [
      'POST',
      /^\/api\/v1\/workspaces$/,
      async ({ req, res, who }) => {
        const spec = await readSpec(req);
        const rec = manager.create(spec, who.sub);
        sendJson(res, 201, { name: rec.name, status: rec.status });
      },
    ],
    [
      'GET',
      /^\/api\/v1\/workspaces$/,
      ({ res, who }) => {
        const list = who.admin ? store.list() : store.listForUser(who.sub);
        sendJson(res, 200, list.map(summary));
        return Promise.resolve();
      },
    ],
    [
      'GET',
      new RegExp(`^/api/v1/workspaces/${NAME}$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'read');
        sendJson(res, 200, detail(rec, effectiveRole(who, store.roleOf(rec.uid, who.sub))!));
        return Promise.resolve();
      },
    ],
    [
      'PUT',
      new RegExp(`^/api/v1/workspaces/${NAME}$`),
      async ({ req, res, who, params }) => {
        const before = workspaceFor(who, params[0]!, 'manage');
        const spec = await readSpec(req);
        const rec = manager.update(params[0]!, spec);
        if (JSON.stringify(before.spec.audit) !== JSON.stringify(spec.audit)) {
          // Weakening the trail is itself recorded in it.
          deps.auditLog.append({ kind: 'admin', actor: who.sub, workspace: rec.name, method: 'audit_setting_changed', detail: { from: before.spec.audit, to: spec.audit } });
        }
        deps.onSpecReplaced(rec);
        sendJson(res, 200, { name: rec.name, status: rec.status });
      },
    ],
    [
      'DELETE',
      new RegExp(`^/api/v1/workspaces/${NAME}$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        manager.delete(rec.name);
        sendJson(res, 202, { name: rec.name, status: 'deleting' });
        return Promise.resolve();
      },
    ],
    [
      'GET',
      new RegExp(`^/api/v1/workspaces/${NAME}/events$`),
      ({ res, who, params, url }) => {
        const rec = workspaceFor(who, params[0]!, 'read');
        const after = Number(url.searchParams.get('after') ?? 0);
        sendJson(res, 200, store.events(rec.uid, Number.isFinite(after) ? after : 0));
        return Promise.resolve();
      },
    ],
    [
      'POST',
      new RegExp(`^/api/v1/workspaces/${NAME}/verify$`),
      async ({ res, who, params }) => {
        // Owners only: it runs a process in every container of the workspace.
        const rec = workspaceFor(who, params[0]!, 'manage');
        const result = await deps.verifyWorkspace(rec.uid);
        if (!result) throw new AppError('conflict', `workspace "${rec.name}" is ${rec.status}: nothing to verify`);
        sendJson(res, 200, result);
      },
    ],
    [
      'GET',
      new RegExp(`^/api/v1/workspaces/${NAME}/logs$`),
      ({ res, who, params, url }) => {
        const rec = workspaceFor(who, params[0]!, 'logs');
        const server = url.searchParams.get('server') ?? undefined;
        const tail = Math.min(10_000, Math.max(1, Number(url.searchParams.get('tail') ?? 200) || 200));
        sendJson(res, 200, manager.logs(rec.uid, server, tail));
        return Promise.resolve();
      },
    ],
    [
      'GET',
      new RegExp(`^/api/v1/workspaces/${NAME}/members$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'read');
        sendJson(res, 200, store.members(rec.uid));
        return Promise.resolve();
      },
    ],
    [
      'PUT',
      new RegExp(`^/api/v1/workspaces/${NAME}/members/([^/]{1,256})$`),
      async ({ req, res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        const user = decodeURIComponent(params[1]!);
        let body: unknown;
        try {
          body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8'));
        } catch {
          throw invalid('the body is not valid JSON');
        }
        const role = (body as { role?: unknown } | null)?.role;
        if (role !== 'member' && role !== 'viewer' && role !== 'owner') throw invalid('role: must be one of owner, member, viewer', ['role: must be one of owner, member, viewer']);
        if (user === rec.owner && role !== 'owner') throw invalid('role: the workspace owner keeps the owner role');
        store.setMember(rec.uid, user, role);
        sendJson(res, 200, { user, role });
      },
    ],
    [
      'DELETE',
      new RegExp(`^/api/v1/workspaces/${NAME}/members/([^/]{1,256})$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        const user = decodeURIComponent(params[1]!);
        if (user === rec.owner) throw invalid('the workspace owner cannot be removed');
        store.removeMember(rec.uid, user);
        res.writeHead(204).end();
        return Promise.resolve();
      },
    ],
    [
      'GET',
      new RegExp(`^/api/v1/workspaces/${NAME}/secrets$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        sendJson(res, 200, deps.secrets.list(rec.uid));
        return Promise.resolve();
      },
    ],
    [
      'PUT',
      new RegExp(`^/api/v1/workspaces/${NAME}/secrets/([^/]{1,256})$`),
      async ({ req, res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        const name = decodeURIComponent(params[1]!);
        let body: unknown;
        try {
          body = JSON.parse((await readBody(req, 128 * 1024)).toString('utf8'));
        } catch {
          // Never echo the body: it holds the value.
          throw invalid('the body is not valid JSON');
        }
        const value = (body as { value?: unknown } | null)?.value;
        if (typeof value !== 'string') throw invalid('value: must be a string', ['value: must be a string']);
        deps.secrets.set(rec.uid, name, value);
        deps.onSecretChanged(rec, name, false);
        res.writeHead(204).end();
      },
    ],
    [
      'DELETE',
      new RegExp(`^/api/v1/workspaces/${NAME}/secrets/([^/]{1,256})$`),
      ({ res, who, params }) => {
        const rec = workspaceFor(who, params[0]!, 'manage');
        const name = decodeURIComponent(params[1]!);
        if (!deps.secrets.remove(rec.uid, name)) throw notFound(`secret "${name}"`);
        deps.onSecretChanged(rec, name, true);
        res.writeHead(204).end();
        return Promise.resolve();
      },
    ],
    [
      'GET',
      /^\/api\/v1\/audit$/,
      ({ res, who, url }) => {
        const q = url.searchParams;
        const workspace = q.get('workspace') ?? undefined;
        // Administrators read the whole trail; an owner reads their own workspace's.
        if (!who.admin) {
          if (!workspace) throw new AppError('forbidden', 'only an administrator may read the whole audit trail; name a workspace you own');
          workspaceFor(who, workspace, 'manage');
        }
        const decision = q.get('decision');
        if (decision !== null && decision !== 'allow' && decision !== 'deny') throw invalid('decision: must be allow or deny');
        const kind = q.get('kind');
        if (kind !== null && kind !== 'mcp' && kind !== 'admin' && kind !== 'event') throw invalid('kind: must be mcp, admin or event');
        const query: AuditQuery = {
          ...(workspace ? { workspace } : {}),
          ...(q.get('user') ? { actor: q.get('user')! } : {}),
          ...(q.get('since') ? { since: q.get('since')! } : {}),
          ...(q.get('until') ? { until: q.get('until')! } : {}),
          ...(decision ? { decision } : {}),
          ...(kind ? { kind } : {}),
          afterId: Number(q.get('after') ?? 0) || 0,
          limit: Number(q.get('limit') ?? 1000) || 1000,
        };
        sendJson(res, 200, deps.auditLog.query(query));
        return Promise.resolve();
      },
    ],
  ];

  /** Returns false when no route matches the path (the caller answers 404). */
  return async function route(req: IncomingMessage, res: ServerResponse, who: Identity, url: URL): Promise<boolean> {
    let pathMatched = false;
    for (const [method, re, handler] of routes) {
      const m = re.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (method !== req.method) continue;
      await handler({ req, res, who, params: m.slice(1), url });
      return true;
    }
    if (pathMatched) {
      sendProblem(res, 405, `method ${req.method ?? ''} is not allowed on ${url.pathname}`);
      return true;
    }
    return false;
  };
}
