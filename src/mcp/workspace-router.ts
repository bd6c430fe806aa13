// The multiplexer and aggregator behind /mcp/{workspace}: client sessions share each server's one process.
// Era-neutral: transports hand it parsed JSON-RPC messages and a sink for messages tied to one request, or open a
// listener (2026-07-28 `subscriptions/listen`) that shares the 2025 sessions' change notifications and subscriptions.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ProtocolError, RPC } from './json-rpc.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from './json-rpc.js';
import { responseSize, UpstreamClosedError } from './upstream-connection.js';
import { checkLimits, findForbiddenName, mayAccess, mayCall } from '../policy/index.js';
import type { AccessPolicy, Kind, Limits, SchemaValidator } from '../policy/index.js';
import type { InitializeResult, UpstreamConnection } from './upstream-connection.js';
import { noHits } from '../secrets/index.js';
import type { RedactionHits, Redactor } from '../secrets/index.js';

export const SUPPORTED_PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'] as const;
export const LATEST_PROTOCOL_VERSION = '2025-11-25';
export const NAME_SEPARATOR = '__';
/** The root the gateway reports for roots/list: every server's private volume. */
export const WORKSPACE_ROOT = { uri: 'file:///workspace', name: 'workspace' };
const RESOURCE_NOT_FOUND = -32002;
const FORBIDDEN = -32001;

export type Role = 'owner' | 'member' | 'viewer';

/** The logging levels of MCP (RFC 5424 severities), least severe first. */
export const LOGGING_LEVELS: readonly string[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const SEVERITY: ReadonlyMap<string, number> = new Map(LOGGING_LEVELS.map((l, i) => [l, i]));

/**
 * Whether a log message at `level` passes a client's `threshold` (at that level or above). Without a threshold
 * everything passes; a message whose level is not a known one passes only then.
 */
export function admitsLevel(threshold: string | undefined, level: unknown): boolean {
  if (threshold === undefined) return true;
  const t = SEVERITY.get(threshold);
  const l = typeof level === 'string' ? SEVERITY.get(level) : undefined;
  return t !== undefined && l !== undefined && l >= t;
}

/** The most verbose of some levels (unknown ones ignored); undefined when there is none. */
export function mostVerbose(levels: Iterable<string | undefined>): string | undefined {
  let best: string | undefined;
  for (const l of levels) if (l !== undefined && SEVERITY.has(l) && (best === undefined || SEVERITY.get(l)! < SEVERITY.get(best)!)) best = l;
  return best;
}

/** What a `Mcp-Param-*` check refuses a call with (the 2026-07-28 transport supplies the check). */
export interface ArgumentHeaderIssue {
  code: number;
  message: string;
  data?: unknown;
}

/** Where messages for one client go: a request's own stream, or the session's GET stream. */
export interface ClientSink {
  send(message: JsonRpcMessage): boolean;
}

/** A workspace's request guardrails (from its spec); see src/policy. */
export interface Guardrails {
  policy: AccessPolicy;
  limits: Limits;
  forbiddenArgs: readonly string[];
  maxResponseBytes: number;
  concurrentPerServer: number;
}

/** What the router tells its transport about one request, for the audit trail. */
export interface RequestNote {
  server?: string;
  target?: string;
  decision: 'allow' | 'deny';
  reason?: string;
}

export const RATE_LIMITED = -32029;
const UNKNOWN = RPC.invalidParams;

export interface Directory {
  serverNames(workspace: string): string[] | undefined;
  guardrails(workspace: string): Guardrails | undefined;
  /** A request starts (+1) or ends (-1); returns a promise when the workspace must first wake from hibernation. */
  activity(workspace: string, delta: 1 | -1): Promise<void> | undefined;
  connection(workspace: string, server: string): UpstreamConnection | undefined;
  /**
   * Why the workspace could not be started (it failed), else undefined; asked only when a server has no connection.
   * Optional so that a directory for the router alone can leave it out.
   */
  unavailable?(workspace: string): string | undefined;
  onConnection(listener: (workspace: string, server: string, conn: UpstreamConnection) => void): () => void;
  /**
   * A server crashed (`false`) or is back after one (`true`); not called for deliberate stops (hibernation,
   * apply, delete) or their starts. Optional so that a directory for the router alone can leave it out.
   */
  onAvailability?(listener: (workspace: string, server: string, available: boolean) => void): () => void;
}

export interface Session {
  id: string;
  workspace: string;
  sub: string;
  role: Role;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo?: unknown;
  /** The standalone GET stream, when the client has one open. */
  stream?: ClientSink;
  lastSeen: number;
  /** Client request id -> the upstream request it became (for cancellation). */
  requests: Map<JsonRpcId, { conn: UpstreamConnection; upstreamId: number }>;
  subscriptions: Set<string>;
  /** A stateless (2026-07-28) request's `io.modelcontextprotocol/logLevel`: it gets log messages at or above it. */
  logLevel?: string;
  /**
   * A stateless `tools/call`'s check of the HTTP headers mirroring arguments against the tool's input schema, run
   * after the schema validation and before anything reaches the server; undefined (2025 sessions) checks nothing.
   */
  headerCheck?: (inputSchema: unknown, args: unknown) => ArgumentHeaderIssue | undefined;
}

interface InFlight {
  session: Session;
  sink: ClientSink;
}

/** The change notifications a listener asks for (the revision's SubscriptionFilter); absent means not wanted. */
export interface ListenFilter {
  toolsListChanged?: boolean;
  promptsListChanged?: boolean;
  resourcesListChanged?: boolean;
  resourceSubscriptions?: string[];
}

/** Which change notifications a workspace's servers declare they send: what a listener can be promised. */
export interface ChangeSupport {
  tools: boolean;
  prompts: boolean;
  resources: boolean;
  subscribe: boolean;
  /** Some server declares `logging`: its log messages reach 2026 requests that carry a `logLevel`. */
  logging: boolean;
}

/** Where a listener's notifications go. */
export interface ListenSink extends ClientSink {
  /** The caller's role now: re-read before every delivery (as a session's is on every request); undefined ends the listener. */
  role(): Role | undefined;
  /** The router ended the listener itself (access gone, workspace deleted, gateway stopping); called at most once. */
  ended(reason: string): void;
}

/** An open listener; `honored` is the part of its filter the router delivers. */
export interface Listener {
  readonly id: string;
  readonly honored: ListenFilter;
  /** Releases everything it holds (its resource subscriptions included); idempotent. */
  close(): void;
}

interface ListenerEntry {
  /** A session that is never stored: it only holds the listener's resource subscriptions and routes its upstream calls. */
  session: Session;
  /** The list kinds (tools, prompts, resources) it gets list_changed for. */
  kinds: Set<string>;
  sink: ListenSink;
  open: boolean;
}

type Body = Omit<JsonRpcResponse, 'jsonrpc' | 'id'>;

interface PendingClientAnswer {
  session: Session;
  resolve(r: Omit<JsonRpcResponse, 'jsonrpc' | 'id'>): void;
  timer: NodeJS.Timeout;
}

interface WorkspaceIndex {
  /** Resource URI -> the server that listed it. */
  resources: Map<string, string>;
  templates: { server: string; pattern: RegExp }[];
  /** "server\0uri" -> the ids of the sessions and listeners holding a subscription (never empty). */
  subscriptions: Map<string, Set<string>>;
  /** "server\0uri" -> the first holder's subscribe, while the server has not answered it. */
  subscribing: Map<string, Promise<Body>>;
  /** "server\0kind" -> the items that server listed (name -> item), kept until it says its list changed. */
  catalogs: Map<string, Map<string, Params>>;
  /** The level the 2025 sessions asked for last (`logging/setLevel`, workspace-wide); undefined: never set. */
  logLevel?: string;
  /** Server -> the list kinds its last handshake declared, kept past its process: a crashed server's lists are known. */
  declared: Map<string, string[]>;
}

export class CancelledError extends Error {
  constructor() {
    super('the request was cancelled');
    this.name = 'CancelledError';
  }
}

/** Redaction of what servers send towards clients (see src/secrets); optional so the router stays testable alone. */
export interface RouterRedaction {
  forWorkspace(workspace: string): Redactor | undefined;
  onRedacted(workspace: string, server: string, hits: RedactionHits): void;
}

/** JSON-RPC error for a response withheld by the `block` policy. */
export const WITHHELD = -32005;

export interface RouterOptions {
  directory: Directory;
  validator: SchemaValidator;
  redaction?: RouterRedaction;
  logger: Pick<Logger, 'warn' | 'debug' | 'info'>;
  requestTimeoutMs?: number;
  sessionIdleMs?: number;
  maxSessions?: number;
  /** Open listeners per user and workspace (default 16), and in all (default 1,000). */
  maxListenersPerUser?: number;
  maxListeners?: number;
  /** How long a server keeps a level raised for 2026 requests after the last one ended (default 1 s: coalesces bursts). */
  logLevelLingerMs?: number;
  gatewayVersion?: string;
}

type Params = Record<string, unknown>;

const obj = (v: unknown): Params => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Params) : {});

/** Turns an RFC 6570 template into a matcher for the URIs it can expand to (simple expressions only). */
export function templatePattern(template: string): RegExp {
  let out = '';
  let last = 0;
  for (const m of template.matchAll(/\{([+#]?)[^}]*\}/g)) {
    out += template.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out += m[1] ? '.*' : '[^/]*';
    last = m.index + m[0].length;
  }
  out += template.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${out}$`);
}

export function createWorkspaceRouter(opts: RouterOptions) {
  const { directory, logger } = opts;
  const timeoutMs = opts.requestTimeoutMs ?? 300_000;
  const sessions = new Map<string, Session>();
  const indexes = new Map<string, WorkspaceIndex>();
  const progress = new Map<string, { session: Session; token: string | number; sink: ClientSink }>();
  const inflight = new WeakMap<UpstreamConnection, Map<number, InFlight>>();
  const pendingAnswers = new Map<string, PendingClientAnswer>();
  const attached = new WeakSet<UpstreamConnection>();
  const connServer = new WeakMap<UpstreamConnection, { workspace: string; server: string }>();
  /** Per server process: the level the gateway last set upstream, and the levels 2026 requests in flight need. */
  const upstreamLevel = new WeakMap<UpstreamConnection, string>();
  const levelDemands = new WeakMap<UpstreamConnection, Map<string, number>>();
  const restoring = new WeakSet<UpstreamConnection>();
  let seq = 0;

  const index = (ws: string): WorkspaceIndex => {
    let i = indexes.get(ws);
    if (!i) {
      i = { resources: new Map(), templates: [], subscriptions: new Map(), subscribing: new Map(), catalogs: new Map(), declared: new Map() };
      indexes.set(ws, i);
    }
    return i;
  };

  const sessionsOf = (ws: string) => [...sessions.values()].filter((s) => s.workspace === ws);
  const listeners = new Map<string, ListenerEntry>();
  const listenersOf = (ws: string) => [...listeners.values()].filter((l) => l.session.workspace === ws);
  const NO_SINK: ClientSink = { send: () => false };

  /** A list change of the workspace: every 2025 session's stream, and the listeners that asked for that kind. */
  const announceListChanged = (workspace: string, kind: string, n: JsonRpcNotification): void => {
    for (const s of sessionsOf(workspace)) s.stream?.send(n);
    for (const l of listenersOf(workspace)) if (l.kinds.has(kind)) deliver(l, n);
  };

  /**
   * A listener gets a notification only while its caller still has a role in the workspace and, for a resource
   * update, may still access that URI under the workspace's policy; a caller without a role ends it.
   */
  const deliver = (l: ListenerEntry, n: JsonRpcNotification, uri?: string): void => {
    if (!l.open) return;
    const role = l.sink.role();
    if (!role) {
      endListener(l, 'the caller no longer has a role in this workspace');
      return;
    }
    l.session.role = role;
    if (uri !== undefined) {
      const policy = directory.guardrails(l.session.workspace)?.policy;
      if (!policy || !mayAccess(policy, 'resources', role, uri).allow) return;
    }
    l.sink.send(n);
  };

  /**
   * Everything a server sends towards a client passes here: secret values are always replaced by
   * [REDACTED:NAME]; credential shapes are redacted or, under the `block` policy, the whole message is withheld.
   */
  const protect = <T>(workspace: string, server: string, value: T): { value: T; blocked?: string } => {
    const r: Redactor | undefined = opts.redaction?.forWorkspace(workspace);
    if (!r || r.empty) return { value };
    const hits = noHits();
    const out = r.value(value, hits);
    if (hits.secrets.length === 0 && hits.patterns.length === 0) return { value };
    opts.redaction!.onRedacted(workspace, server, hits);
    if (r.policy === 'block' && hits.patterns.length > 0) return { value: out, blocked: hits.patterns.join(', ') };
    return { value: out };
  };

  const protectBody = (workspace: string, server: string, body: Omit<JsonRpcResponse, 'jsonrpc' | 'id'>): Omit<JsonRpcResponse, 'jsonrpc' | 'id'> => {
    const p = protect(workspace, server, body);
    if (p.blocked) return { error: { code: WITHHELD, message: `the server's response was withheld: it contained credential-shaped text (${p.blocked})` } };
    return p.value;
  };

  /** Notifications are redacted too; a blocked one is dropped. */
  const protectNote = <T extends JsonRpcMessage>(workspace: string, server: string, n: T): T | undefined => {
    const p = protect(workspace, server, n);
    return p.blocked ? undefined : p.value;
  };

  // ---- messages from servers ---------------------------------------------------------------------------

  const onUpstreamNotification = (workspace: string, server: string, conn: UpstreamConnection, multi: () => boolean) => (raw: JsonRpcNotification) => {
    const n = protectNote(workspace, server, raw);
    if (!n) return;
    const params = obj(n.params);
    switch (n.method) {
      case 'notifications/progress': {
        const entry = progress.get(String(params.progressToken));
        if (entry) entry.sink.send({ ...n, params: { ...params, progressToken: entry.token } });
        return;
      }
      case 'notifications/resources/updated': {
        const uri = String(params.uri);
        const subs = index(workspace).subscriptions.get(`${server}\0${uri}`);
        for (const id of [...(subs ?? [])]) {
          const s = sessions.get(id);
          if (s) s.stream?.send(n);
          else {
            const l = listeners.get(id);
            if (l) deliver(l, n, uri);
          }
        }
        return;
      }
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed': {
        const kind = n.method.split('/')[1]!;
        index(workspace).catalogs.delete(`${server}\0${kind}`);
        // With several servers this is still the workspace's one list (names prefixed), so the method is unchanged.
        announceListChanged(workspace, kind, n);
        return;
      }
      case 'notifications/message': {
        const sub = typeof params.logger === 'string' ? `/${params.logger}` : '';
        const msg = multi() ? { ...n, params: { ...params, logger: `${server}${sub}` } } : n;
        // 2025 sessions: at or above the level they asked for (the server may be more verbose for a 2026 request).
        if (admitsLevel(index(workspace).logLevel, params.level)) for (const s of sessionsOf(workspace)) s.stream?.send(msg);
        const only = soleRequest(conn);
        if (only?.session.logLevel !== undefined && admitsLevel(only.session.logLevel, params.level)) only.sink.send(msg);
        return;
      }
      case 'notifications/cancelled': {
        // The server gave up on a request it sent to a client.
        const key = `${server}:${String(params.requestId)}`;
        for (const [id, p] of pendingAnswers) {
          if (id.startsWith(`${workspace}:${key}:`)) {
            clearTimeout(p.timer);
            pendingAnswers.delete(id);
            p.session.stream?.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { ...params, requestId: id } });
          }
        }
        return;
      }
      default:
        logger.debug({ workspace, server, method: n.method }, 'dropped a notification from a server');
    }
  };

  /** Server-to-client requests: roots answered here; sampling and elicitation go to the one asking session. */
  const onUpstreamRequest = (workspace: string, server: string, conn: UpstreamConnection) => async (req: JsonRpcRequest): Promise<Omit<JsonRpcResponse, 'jsonrpc' | 'id'>> => {
    if (req.method === 'roots/list') return { result: { roots: [WORKSPACE_ROOT] } };
    if (req.method === 'ping') return { result: {} };
    const candidates = new Map<string, InFlight>();
    for (const f of inflight.get(conn)?.values() ?? []) candidates.set(f.session.id, f);
    if (candidates.size !== 1) {
      const why = candidates.size === 0 ? 'no client has a request in flight to this server' : `${candidates.size} clients have requests in flight to this server, so the one to ask is ambiguous`;
      return { error: { code: RPC.invalidRequest, message: `the gateway cannot route ${req.method}: ${why}` } };
    }
    const target = [...candidates.values()][0]!;
    const capability = req.method.split('/')[0]!;
    if (!(capability in target.session.clientCapabilities)) {
      return { error: { code: RPC.methodNotFound, message: `the client does not support ${capability}` } };
    }
    const safe = protectNote(workspace, server, req);
    if (!safe) return { error: { code: WITHHELD, message: 'the request was withheld: it contained credential-shaped text' } };
    const gid = `${workspace}:${server}:${String(req.id)}:${++seq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pendingAnswers.delete(gid);
        resolve({ error: { code: RPC.internalError, message: `the client did not answer ${req.method} in time` } });
      }, timeoutMs);
      timer.unref();
      pendingAnswers.set(gid, { session: target.session, resolve, timer });
      if (!target.sink.send({ ...safe, id: gid })) {
        clearTimeout(timer);
        pendingAnswers.delete(gid);
        resolve({ error: { code: RPC.internalError, message: 'the client is no longer connected' } });
      }
    });
  };

  const attach = (workspace: string, server: string, conn: UpstreamConnection) => {
    if (attached.has(conn)) return;
    attached.add(conn);
    const i = index(workspace);
    const caps = obj(conn.initializeResult?.capabilities);
    i.declared.set(server, ['tools', 'prompts', 'resources'].filter((k) => caps[k] !== undefined));
    connServer.set(conn, { workspace, server });
    const multi = () => (directory.serverNames(workspace)?.length ?? 1) > 1;
    conn.onNotification(onUpstreamNotification(workspace, server, conn, multi));
    conn.requestHandler = onUpstreamRequest(workspace, server, conn);
    // A new process (restart, wake-up, new version after an apply) may list other tools and schemas: what the old one
    // listed is asked again before the next call is validated against it.
    i.catalogs.delete(`${server}\0tools`);
    i.catalogs.delete(`${server}\0prompts`);
    // A restarted server forgets subscriptions: renew the ones clients still hold.
    for (const [key, subs] of i.subscriptions) {
      const [srv, uri] = key.split('\0');
      if (srv === server && subs.size > 0) void conn.call('resources/subscribe', { uri }).catch(() => undefined);
    }
  };
  directory.onConnection(attach);

  // A server that crashes takes its tools, prompts and resources out of the workspace's lists until it is back, and
  // may list others then: clients hear `list_changed` both times. Deliberate stops (hibernation) are not announced,
  // as clients re-listing would only wake the workspace again.
  directory.onAvailability?.((workspace, server) => {
    const kinds = index(workspace).declared.get(server) ?? ['tools', 'prompts', 'resources'];
    // The catalogs stay: a call to a crashed server's tool then says the server is down, not that the tool is
    // unknown; the new process's connection replaces them.
    for (const kind of kinds) announceListChanged(workspace, kind, { jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
  });

  /**
   * The error for a workspace that could not be started (a failed create, apply or wake-up), or undefined. Only on
   * the path where a server has no connection: a healthy workspace never asks. The reason is what the workspace's
   * detail shows its members, with secret values and credential shapes redacted.
   */
  const notStarted = (workspace: string): ProtocolError | undefined => {
    const why = directory.unavailable?.(workspace);
    if (why === undefined) return undefined;
    const redactor = opts.redaction?.forWorkspace(workspace);
    const reason = redactor && !redactor.empty ? redactor.text(why, noHits()) : why;
    return new ProtocolError(RPC.internalError, `workspace "${workspace}" could not be started: ${reason}`);
  };

  const connectionFor = (workspace: string, server: string): UpstreamConnection => {
    const conn = directory.connection(workspace, server);
    if (!conn) throw notStarted(workspace) ?? new ProtocolError(RPC.internalError, `server "${server}" is not running right now; its tools are unavailable until it is back`);
    attach(workspace, server, conn);
    return conn;
  };

  // ---- log levels: per-request (2026-07-28) over a session-wide level (2025) ------------------------------

  /**
   * The one client request in flight to a server, when there is exactly one (counted per session, so a request's
   * own list fetches do not count twice). A 2025 server's log message names no request: it can be attributed to a
   * request only when no other is in flight to that server; otherwise it goes to no request at all.
   */
  const soleRequest = (conn: UpstreamConnection): InFlight | undefined => {
    let only: InFlight | undefined;
    for (const f of inflight.get(conn)?.values() ?? []) {
      if (only && only.session !== f.session) return undefined;
      only ??= f;
    }
    return only;
  };

  const declaresLogging = (conn: UpstreamConnection): boolean => conn.initializeResult?.capabilities.logging !== undefined;

  /**
   * Sets a server's level to the most verbose one its consumers need: the 2025 sessions' level and the levels of
   * the 2026 requests in flight to it. A server never told a level is left alone while the 2025 side has not set
   * one: it then sends everything (as SDK servers do), and the gateway filters per consumer. Sent only on a change.
   */
  const applyLevel = async (workspace: string, conn: UpstreamConnection): Promise<void> => {
    const base = index(workspace).logLevel;
    if (base === undefined) return;
    const want = mostVerbose([base, ...(levelDemands.get(conn)?.keys() ?? [])])!;
    if (upstreamLevel.get(conn) === want || conn.isClosed) return;
    upstreamLevel.set(conn, want);
    await conn.call('logging/setLevel', { level: want }, 10_000).catch(() => undefined);
  };

  /**
   * The level goes back once no request needs it, after a short linger, so that a request's own list fetch and its
   * call, or a burst of requests, do not flap it; whatever is current then is sent (never an outdated level).
   */
  const restoreLater = (workspace: string, conn: UpstreamConnection): void => {
    if (restoring.has(conn)) return;
    restoring.add(conn);
    setTimeout(() => {
      restoring.delete(conn);
      void applyLevel(workspace, conn);
    }, opts.logLevelLingerMs ?? 1_000).unref();
  };

  const demand = (conn: UpstreamConnection, level: string, delta: 1 | -1): void => {
    let m = levelDemands.get(conn);
    if (!m) {
      m = new Map();
      levelDemands.set(conn, m);
    }
    const n = (m.get(level) ?? 0) + delta;
    if (n > 0) m.set(level, n);
    else m.delete(level);
  };

  const undemand = (workspace: string, conn: UpstreamConnection, level: string): void => {
    demand(conn, level, -1);
    restoreLater(workspace, conn);
  };

  // ---- forwarding --------------------------------------------------------------------------------------

  const forward = async (session: Session, clientId: JsonRpcId, server: string, method: string, params: Params | undefined, sink: ClientSink): Promise<Omit<JsonRpcResponse, 'jsonrpc' | 'id'>> => {
    const conn = connectionFor(session.workspace, server);
    // A 2026 request asking for log messages: the server must send at least down to its level while it runs.
    const level = session.logLevel !== undefined && declaresLogging(conn) ? session.logLevel : undefined;
    if (level !== undefined) {
      demand(conn, level, 1);
      await applyLevel(session.workspace, conn);
    }
    let upParams = params;
    let upToken: string | undefined;
    const meta = obj(params?._meta);
    const token = meta.progressToken;
    if (typeof token === 'string' || typeof token === 'number') {
      upToken = `p${++seq}`;
      upParams = { ...params, _meta: { ...meta, progressToken: upToken } };
      progress.set(upToken, { session, token, sink });
    }
    let flights = inflight.get(conn);
    if (!flights) {
      flights = new Map();
      inflight.set(conn, flights);
    }
    const cap = directory.guardrails(session.workspace)?.concurrentPerServer;
    if (cap !== undefined && flights.size >= cap) {
      if (upToken) progress.delete(upToken);
      if (level !== undefined) undemand(session.workspace, conn, level);
      throw new ProtocolError(RATE_LIMITED, `too many requests in flight to server "${server}" (limit ${cap}); retry shortly`, { retryAfter: 1 });
    }
    const { id, response } = conn.start(method, upParams, timeoutMs);
    flights.set(id, { session, sink });
    session.requests.set(clientId, { conn, upstreamId: id });
    try {
      const r = await response;
      const max = directory.guardrails(session.workspace)?.maxResponseBytes;
      if (max !== undefined && responseSize(r) > max) {
        return { error: { code: RPC.internalError, message: `the response of server "${server}" exceeded this workspace's limit of ${max} bytes` } };
      }
      return protectBody(session.workspace, server, r.error ? { error: r.error } : { result: r.result });
    } catch (err) {
      if (err instanceof CancelledError || err instanceof ProtocolError) throw err;
      if (err instanceof UpstreamClosedError) throw new ProtocolError(RPC.internalError, `server "${server}" stopped while handling the request`);
      throw err;
    } finally {
      flights.delete(id);
      session.requests.delete(clientId);
      if (upToken) progress.delete(upToken);
      if (level !== undefined) undemand(session.workspace, conn, level);
    }
  };

  const split = (session: Session, name: unknown, kind: string): { server: string; name: string } => {
    const names = directory.serverNames(session.workspace) ?? [];
    if (typeof name !== 'string' || name.length === 0) throw new ProtocolError(RPC.invalidParams, `${kind} name is required`);
    if (names.length === 1) return { server: names[0]!, name };
    const at = name.indexOf(NAME_SEPARATOR);
    const server = at > 0 ? name.slice(0, at) : '';
    if (!names.includes(server)) throw new ProtocolError(UNKNOWN, `Unknown ${kind}: ${name}`);
    return { server, name: name.slice(at + NAME_SEPARATOR.length) };
  };

  const LIST_KEYS: Record<string, string> = {
    'tools/list': 'tools',
    'prompts/list': 'prompts',
    'resources/list': 'resources',
    'resources/templates/list': 'resourceTemplates',
  };

  const remember = (ws: string, server: string, key: string, items: Params[], fresh: boolean) => {
    const i = index(ws);
    if (key === 'tools' || key === 'prompts') {
      const ck = `${server}\0${key}`;
      let cat = fresh ? undefined : i.catalogs.get(ck);
      if (!cat) {
        cat = new Map();
        i.catalogs.set(ck, cat);
      }
      for (const item of items) if (typeof item.name === 'string') cat.set(item.name, item);
    }
    if (key === 'resources') for (const r of items) if (typeof r.uri === 'string') i.resources.set(r.uri, server);
    if (key === 'resourceTemplates') {
      i.templates = i.templates.filter((t) => t.server !== server);
      for (const t of items) if (typeof t.uriTemplate === 'string') i.templates.push({ server, pattern: templatePattern(t.uriTemplate) });
    }
  };

  /** Every page of one server's list (bounded), remembered for routing and validation. */
  const fetchAll = async (session: Session, server: string, method: string, sink: ClientSink): Promise<Params[]> => {
    if (!directory.connection(session.workspace, server)) {
      // A server that is restarting lists nothing for now; one whose workspace failed to start is an error, not an
      // empty catalogue (which would make every call answer "Unknown tool").
      const failed = notStarted(session.workspace);
      if (failed) throw failed;
      return [];
    }
    const key = LIST_KEYS[method]!;
    const out: Params[] = [];
    let cursor: unknown;
    for (let page = 0; page < 50; page++) {
      const r = await forward(session, `list:${++seq}`, server, method, cursor === undefined ? undefined : { cursor }, sink).catch(() => undefined);
      if (!r?.result) break;
      const result = obj(r.result);
      const items = Array.isArray(result[key]) ? (result[key] as Params[]) : [];
      remember(session.workspace, server, key, items, page === 0);
      out.push(...items);
      cursor = result.nextCursor;
      if (typeof cursor !== 'string' || cursor === '') break;
    }
    return out;
  };

  const KIND_OF: Record<string, Kind> = { tools: 'tools', prompts: 'prompts', resources: 'resources', resourceTemplates: 'resources' };

  /** Drops what the caller may not see: it then simply does not exist for them. */
  const visible = (session: Session, key: string, items: Params[]): Params[] => {
    const policy = directory.guardrails(session.workspace)?.policy;
    if (!policy) return [];
    const kind = KIND_OF[key]!;
    return items.filter((item) => {
      const id = key === 'resources' ? item.uri : key === 'resourceTemplates' ? item.uriTemplate : item.name;
      return typeof id === 'string' && mayAccess(policy, kind, session.role, id).allow;
    });
  };

  /** Lists across every server of a multi-server workspace: all pages, names prefixed, filtered. */
  const aggregateList = async (session: Session, method: string, sink: ClientSink): Promise<Omit<JsonRpcResponse, 'jsonrpc' | 'id'>> => {
    const key = LIST_KEYS[method]!;
    const names = directory.serverNames(session.workspace) ?? [];
    const parts = await Promise.all(
      names.map(async (server) => {
        const items = await fetchAll(session, server, method, sink);
        return key === 'tools' || key === 'prompts' ? items.map((item) => ({ ...item, name: `${server}${NAME_SEPARATOR}${String(item.name)}` })) : items;
      }),
    );
    return { result: { [key]: visible(session, key, parts.flat()) } };
  };

  /** The item a server listed under `name` (asking it once more if unknown), or undefined. */
  const catalogItem = async (session: Session, server: string, kind: 'tools' | 'prompts', name: string, sink: ClientSink): Promise<Params | undefined> => {
    const key = `${server}\0${kind}`;
    const known = index(session.workspace).catalogs.get(key)?.get(name);
    if (known) return known;
    await fetchAll(session, server, `${kind}/list`, sink);
    return index(session.workspace).catalogs.get(key)?.get(name);
  };

  const ownerOf = async (session: Session, uri: unknown, sink: ClientSink): Promise<string> => {
    const names = directory.serverNames(session.workspace) ?? [];
    if (names.length === 1) return names[0]!;
    if (typeof uri !== 'string') throw new ProtocolError(RPC.invalidParams, 'uri is required');
    const find = () => {
      const i = index(session.workspace);
      return i.resources.get(uri) ?? i.templates.find((t) => t.pattern.test(uri))?.server;
    };
    let owner = find();
    if (!owner) {
      await aggregateList(session, 'resources/list', sink);
      await aggregateList(session, 'resources/templates/list', sink);
      owner = find();
    }
    if (!owner) throw new ProtocolError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}`);
    return owner;
  };

  // ---- resource subscriptions, shared by both eras -------------------------------------------------------

  /**
   * Adds `session` (a 2025 session or a listener) to the holders of (server, uri). Reference-counted across both
   * eras: only the first holder's `subscribe` reaches the server, and holders arriving while it is under way wait
   * for its answer instead of sending another. Returns the server's error when it refused.
   */
  const hold = async (session: Session, server: string, uri: string, subscribe: () => Promise<Body>): Promise<Body | undefined> => {
    const i = index(session.workspace);
    const key = `${server}\0${uri}`;
    if (!i.subscriptions.has(key)) {
      const theirs = i.subscribing.get(key);
      const settled = theirs ? await theirs.catch(() => undefined) : undefined;
      // Another holder's subscribe that failed (or was cancelled with its client) is no answer for this one.
      if ((!settled || settled.error) && !i.subscriptions.has(key)) {
        const mine: Promise<Body> = subscribe()
          .then((r) => {
            if (!r.error && !i.subscriptions.has(key)) i.subscriptions.set(key, new Set());
            return r;
          })
          .finally(() => {
            if (i.subscribing.get(key) === mine) i.subscribing.delete(key);
          });
        i.subscribing.set(key, mine);
        const r = await mine;
        if (r.error) return r;
      }
    }
    const holders = i.subscriptions.get(key) ?? new Set<string>();
    i.subscriptions.set(key, holders);
    holders.add(session.id);
    session.subscriptions.add(key);
    return undefined;
  };

  /** Removes `session` from the holders of `key`; true when it was the last one, so the server must be told. */
  const letGo = (session: Session, key: string): boolean => {
    session.subscriptions.delete(key);
    const subs = index(session.workspace).subscriptions;
    const holders = subs.get(key);
    if (!holders?.delete(session.id) || holders.size > 0) return false;
    subs.delete(key);
    return true;
  };

  const unsubscribeUpstream = (workspace: string, key: string): void => {
    const [server, uri] = key.split('\0');
    void directory.connection(workspace, server!)?.call('resources/unsubscribe', { uri }).catch(() => undefined);
  };

  const releaseHoldings = (session: Session): void => {
    for (const key of [...session.subscriptions]) if (letGo(session, key)) unsubscribeUpstream(session.workspace, key);
  };

  const serverSubscribes = (workspace: string, server: string): boolean =>
    obj(obj(directory.connection(workspace, server)?.initializeResult?.capabilities).resources).subscribe === true;

  const changeSupport = (workspace: string): ChangeSupport => {
    const caps = (directory.serverNames(workspace) ?? []).map((n) => obj(directory.connection(workspace, n)?.initializeResult?.capabilities));
    const declared = (kind: string, flag: string) => caps.some((c) => obj(c[kind])[flag] === true);
    return {
      tools: declared('tools', 'listChanged'),
      prompts: declared('prompts', 'listChanged'),
      resources: declared('resources', 'listChanged'),
      subscribe: declared('resources', 'subscribe'),
      logging: caps.some((c) => c.logging !== undefined),
    };
  };

  const closeListener = (l: ListenerEntry): void => {
    if (!l.open) return;
    l.open = false;
    listeners.delete(l.session.id);
    for (const clientId of [...l.session.requests.keys()]) router.abandon(l.session, clientId);
    releaseHoldings(l.session);
  };

  const endListener = (l: ListenerEntry, reason: string): void => {
    if (!l.open) return;
    closeListener(l);
    l.sink.ended(reason);
  };

  const negotiate = (requested: unknown): string =>
    typeof requested === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested) ? requested : LATEST_PROTOCOL_VERSION;

  const initializeResult = (workspace: string, protocolVersion: string): InitializeResult => {
    const names = directory.serverNames(workspace) ?? [];
    const inits = names.map((n) => directory.connection(workspace, n)?.initializeResult);
    if (names.length === 1 && inits[0]) {
      return { ...inits[0], protocolVersion };
    }
    // What the servers declared, merged; a server whose handshake is not known (down right now) might declare
    // anything, so while one is unknown the workspace claims every capability it can route.
    const caps = inits.map((i) => (i ? obj(i.capabilities) : undefined));
    const unknown = caps.some((c) => c === undefined);
    const has = (kind: string, flag?: string) => unknown || caps.some((c) => c !== undefined && c[kind] !== undefined && (flag === undefined || obj(c[kind])[flag] === true));
    const capabilities: Params = {};
    for (const kind of ['tools', 'prompts', 'resources']) {
      if (!has(kind)) continue;
      capabilities[kind] = {
        ...(has(kind, 'listChanged') ? { listChanged: true } : {}),
        ...(kind === 'resources' && has(kind, 'subscribe') ? { subscribe: true } : {}),
      };
    }
    for (const kind of ['logging', 'completions']) if (has(kind)) capabilities[kind] = {};
    const instructions = names
      .map((n, i) => (inits[i]?.instructions ? `[${n}] ${inits[i].instructions}` : ''))
      .filter(Boolean)
      .join('\n\n');
    return {
      protocolVersion,
      capabilities,
      serverInfo: { name: `mcpx/${workspace}`, version: opts.gatewayVersion ?? '0.1.0' },
      ...(instructions ? { instructions } : {}),
    };
  };

  // ---- the router's face -------------------------------------------------------------------------------

  const router = {
    /** Handles `initialize`: creates a session bound to the caller and answers from the cached handshakes. */
    initialize(workspace: string, sub: string, role: Role, request: JsonRpcRequest): { session: Session; result: InitializeResult } {
      if ((opts.maxSessions ?? 10_000) <= sessions.size) router.sweep(Date.now());
      if ((opts.maxSessions ?? 10_000) <= sessions.size) throw new ProtocolError(RPC.internalError, 'too many sessions; try again later');
      const params = obj(request.params);
      const protocolVersion = negotiate(params.protocolVersion);
      const session: Session = {
        id: randomBytes(24).toString('base64url'),
        workspace,
        sub,
        role,
        protocolVersion,
        clientCapabilities: obj(params.capabilities),
        clientInfo: params.clientInfo,
        lastSeen: Date.now(),
        requests: new Map(),
        subscriptions: new Set(),
      };
      sessions.set(session.id, session);
      return { session, result: initializeResult(workspace, protocolVersion) };
    },

    /**
     * A session for one stateless request (protocol 2026-07-28): never stored, so no later request can name it.
     * The caller dispatches with it, then calls `release`.
     */
    statelessSession(
      workspace: string,
      sub: string,
      role: Role,
      meta: { protocolVersion: string; clientCapabilities?: unknown; clientInfo?: unknown; logLevel?: string; headerCheck?: Session['headerCheck'] },
    ): Session {
      return {
        ...(meta.logLevel !== undefined ? { logLevel: meta.logLevel } : {}),
        ...(meta.headerCheck ? { headerCheck: meta.headerCheck } : {}),
        id: `stateless:${randomBytes(12).toString('base64url')}`,
        workspace,
        sub,
        role,
        protocolVersion: meta.protocolVersion,
        clientCapabilities: obj(meta.clientCapabilities),
        clientInfo: meta.clientInfo,
        lastSeen: Date.now(),
        requests: new Map(),
        subscriptions: new Set(),
      };
    },

    /** Ends a stateless session's in-flight work (its client went away). */
    release(session: Session): void {
      for (const clientId of [...session.requests.keys()]) router.abandon(session, clientId);
    },

    /** What `initialize` would answer (capabilities, serverInfo, instructions), for `server/discover`. */
    describe(workspace: string, protocolVersion: string): InitializeResult {
      return initializeResult(workspace, protocolVersion);
    },

    /** A session, only for the user it belongs to; anything else is indistinguishable from an unknown id. */
    session(id: string, workspace: string, sub: string): Session | undefined {
      const s = sessions.get(id);
      if (!s || s.workspace !== workspace || s.sub !== sub) return undefined;
      s.lastSeen = Date.now();
      return s;
    },

    /** Answers one client request. Messages tied to it (progress, sampling) go to `sink` first. */
    /**
     * Answers one client request. Messages tied to it (progress, sampling) go to `sink` first. `note` receives
     * what the audit trail records: the server, the target, and the guardrails' decision with its reason.
     */
    async request(session: Session, msg: JsonRpcRequest, sink: ClientSink, note: RequestNote = { decision: 'allow' }): Promise<JsonRpcResponse> {
      const waking = directory.activity(session.workspace, 1);
      try {
        if (waking) await waking;
        const body = await router.dispatch(session, msg, sink, note);
        return { jsonrpc: '2.0', id: msg.id, ...body };
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        if (err instanceof ProtocolError) return { jsonrpc: '2.0', id: msg.id, error: err.toJSON() };
        logger.warn({ err, method: msg.method }, 'request failed');
        return { jsonrpc: '2.0', id: msg.id, error: { code: RPC.internalError, message: 'internal error' } };
      } finally {
        void directory.activity(session.workspace, -1);
      }
    },

    /** Wakes a hibernating workspace (before a handshake or discovery answered from its servers' caches). */
    awake(workspace: string): Promise<void> | undefined {
      const waking = directory.activity(workspace, 1);
      void directory.activity(workspace, -1);
      return waking;
    },

    async dispatch(session: Session, msg: JsonRpcRequest, sink: ClientSink, note: RequestNote = { decision: 'allow' }): Promise<Omit<JsonRpcResponse, 'jsonrpc' | 'id'>> {
      const params = obj(msg.params);
      const names = directory.serverNames(session.workspace);
      const g = directory.guardrails(session.workspace);
      if (!names || !g) throw new ProtocolError(RPC.internalError, 'the workspace is gone');
      const single = names.length === 1;
      /** Refuses before anything reaches a server, and says why in the audit note. */
      const deny = (reason: string, error: ProtocolError): never => {
        note.decision = 'deny';
        note.reason = reason;
        throw error;
      };
      const limits = checkLimits(msg.params, g.limits);
      if (!limits.ok) deny(limits.reason, new ProtocolError(RPC.invalidParams, `Invalid params: ${limits.reason} (at ${limits.path})`));

      switch (msg.method) {
        case 'initialize':
          throw new ProtocolError(RPC.invalidRequest, 'the session is already initialized');
        case 'ping':
          return { result: {} };
        case 'tools/list':
        case 'prompts/list':
        case 'resources/list':
        case 'resources/templates/list': {
          const key = LIST_KEYS[msg.method]!;
          if (!single) return aggregateList(session, msg.method, sink);
          note.server = names[0]!;
          const r = await forward(session, msg.id, names[0]!, msg.method, msg.params, sink);
          if (!r.result) return r;
          const result = obj(r.result);
          const items = Array.isArray(result[key]) ? (result[key] as Params[]) : [];
          remember(session.workspace, names[0]!, key, items, params.cursor === undefined);
          return { result: { ...result, [key]: visible(session, key, items) } };
        }
        case 'tools/call':
        case 'prompts/get': {
          const kind = msg.method === 'tools/call' ? 'tools' : 'prompts';
          const label = kind === 'tools' ? 'tool' : 'prompt';
          const exposed = typeof params.name === 'string' ? params.name : '';
          note.target = exposed;
          // A name the caller may not use answers exactly as a name that does not exist.
          // Built only when needed: an error's stack trace costs tens of microseconds on every allowed call.
          const missing = () => new ProtocolError(UNKNOWN, `Unknown ${label}: ${exposed}`);
          const allowed = kind === 'tools' ? mayCall(g.policy, session.role, exposed) : mayAccess(g.policy, 'prompts', session.role, exposed);
          if (!allowed.allow) {
            if (kind === 'tools' && session.role === 'viewer') deny(allowed.reason, new ProtocolError(FORBIDDEN, 'your role in this workspace (viewer) may list tools but not call them'));
            deny(allowed.reason, missing());
          }
          const forbidden = findForbiddenName(params.arguments, g.forbiddenArgs);
          if (!forbidden.ok) deny(forbidden.reason, new ProtocolError(RPC.invalidParams, `Invalid arguments for ${label} ${exposed}: ${forbidden.reason} (at arguments.${forbidden.path})`));
          let target: { server: string; name: string };
          try {
            target = split(session, params.name, label);
          } catch {
            return deny(`no such ${label}`, missing());
          }
          note.server = target.server;
          const item = await catalogItem(session, target.server, kind, target.name, sink);
          if (!item) deny(`no such ${label}`, missing());
          if (kind === 'tools') {
            const valid = opts.validator.validate(item!.inputSchema, params.arguments ?? {});
            if (!valid.ok) deny(valid.reason, new ProtocolError(RPC.invalidParams, `Invalid arguments for tool ${exposed}: ${valid.reason}`));
            const issue = session.headerCheck?.(item!.inputSchema, params.arguments);
            if (issue) deny(issue.message, new ProtocolError(issue.code, issue.message, issue.data));
          }
          return forward(session, msg.id, target.server, msg.method, { ...params, name: target.name }, sink);
        }
        case 'resources/read':
        case 'resources/subscribe':
        case 'resources/unsubscribe': {
          const uri = typeof params.uri === 'string' ? params.uri : '';
          note.target = uri;
          const access = mayAccess(g.policy, 'resources', session.role, uri);
          if (!access.allow) deny(access.reason, new ProtocolError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}`));
          const server = await ownerOf(session, params.uri, sink);
          note.server = server;
          if (msg.method === 'resources/read') return forward(session, msg.id, server, msg.method, msg.params, sink);
          if (msg.method === 'resources/subscribe') {
            const refused = await hold(session, server, uri, () => forward(session, msg.id, server, msg.method, msg.params, sink));
            if (refused) return refused;
          } else if (letGo(session, `${server}\0${uri}`)) {
            await forward(session, msg.id, server, msg.method, msg.params, sink).catch(() => undefined);
          }
          return { result: {} };
        }
        case 'completion/complete': {
          const ref = obj(params.ref);
          if (ref.type === 'ref/prompt') {
            const exposed = typeof ref.name === 'string' ? ref.name : '';
            note.target = exposed;
            const access = mayAccess(g.policy, 'prompts', session.role, exposed);
            if (!access.allow) deny(access.reason, new ProtocolError(UNKNOWN, `Unknown prompt: ${exposed}`));
            const { server, name } = split(session, ref.name, 'prompt');
            note.server = server;
            return forward(session, msg.id, server, msg.method, { ...params, ref: { ...ref, name } }, sink);
          }
          const uri = typeof ref.uri === 'string' ? ref.uri : '';
          note.target = uri;
          const access = mayAccess(g.policy, 'resources', session.role, uri);
          if (!access.allow) deny(access.reason, new ProtocolError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}`));
          const server = await ownerOf(session, ref.uri, sink);
          note.server = server;
          return forward(session, msg.id, server, msg.method, msg.params, sink);
        }
        case 'logging/setLevel': {
          // Workspace-wide, as before; each server gets the most verbose of it and what 2026 requests need now.
          if (typeof params.level !== 'string' || !SEVERITY.has(params.level)) throw new ProtocolError(RPC.invalidParams, `Invalid params: level must be one of ${LOGGING_LEVELS.join(', ')}`);
          index(session.workspace).logLevel = params.level;
          await Promise.all(
            names.flatMap((n) => {
              const conn = directory.connection(session.workspace, n);
              if (!conn) return [];
              attach(session.workspace, n, conn);
              return [applyLevel(session.workspace, conn)];
            }),
          );
          return { result: {} };
        }
        default:
          if (single) {
            note.server = names[0]!;
            return forward(session, msg.id, names[0]!, msg.method, msg.params, sink);
          }
          throw new ProtocolError(RPC.methodNotFound, `method not found: ${msg.method}`);
      }
    },

    /** Client notifications: cancellation is rewritten to the upstream id; the rest is handled here. */
    notification(session: Session, msg: JsonRpcNotification): void {
      const params = obj(msg.params);
      if (msg.method === 'notifications/cancelled') {
        const id = params.requestId;
        const r = typeof id === 'string' || typeof id === 'number' ? session.requests.get(id) : undefined;
        if (r) {
          r.conn.notify('notifications/cancelled', { ...params, requestId: r.upstreamId });
          r.conn.abandon(r.upstreamId, new CancelledError());
        }
      }
      // notifications/initialized, roots/list_changed (the gateway owns roots) and progress need nothing more.
    },

    /** A client's answer to a server-to-client request the gateway forwarded. */
    response(session: Session, msg: JsonRpcResponse): void {
      const p = typeof msg.id === 'string' ? pendingAnswers.get(msg.id) : undefined;
      if (!p || p.session !== session) return;
      clearTimeout(p.timer);
      pendingAnswers.delete(msg.id as string);
      p.resolve(msg.error ? { error: msg.error } : { result: msg.result });
    },

    /** Abandons a request whose client went away (connection closed before the answer). */
    abandon(session: Session, clientId: JsonRpcId): void {
      const r = session.requests.get(clientId);
      if (!r) return;
      r.conn.notify('notifications/cancelled', { requestId: r.upstreamId, reason: 'the client disconnected' });
      r.conn.abandon(r.upstreamId, new CancelledError());
    },

    close(id: string): boolean {
      const s = sessions.get(id);
      if (!s) return false;
      sessions.delete(id);
      for (const clientId of [...s.requests.keys()]) router.abandon(s, clientId);
      releaseHoldings(s);
      return true;
    },

    /**
     * Opens a listener (2026-07-28 `subscriptions/listen`) bound to the caller: list changes of the kinds it asks
     * for from every server of the workspace, and updates of the resources it watches. Watching a URI holds a
     * subscription exactly as a 2025 session's `resources/subscribe` does (reference-counted across both eras).
     * A URI the caller's role may not access, an unknown one, or one whose server does not do subscriptions is
     * silently not watched: it is left out of `honored`, like a kind no server of the workspace announces.
     */
    async listen(caller: { workspace: string; sub: string; role: Role; protocolVersion: string }, filter: ListenFilter, sink: ListenSink): Promise<Listener> {
      const { workspace, sub, role } = caller;
      const g = directory.guardrails(workspace);
      if (!directory.serverNames(workspace) || !g) throw new ProtocolError(RPC.internalError, 'the workspace is gone');
      const limits = checkLimits(filter, g.limits);
      if (!limits.ok) throw new ProtocolError(RPC.invalidParams, `Invalid params: ${limits.reason} (at notifications${limits.path ? `.${limits.path}` : ''})`);
      const perUser = opts.maxListenersPerUser ?? 16;
      if (listenersOf(workspace).filter((l) => l.session.sub === sub).length >= perUser) {
        throw new ProtocolError(RPC.internalError, `too many listen streams: at most ${perUser} per user and workspace; close one first`, { limit: perUser });
      }
      if (listeners.size >= (opts.maxListeners ?? 1_000)) throw new ProtocolError(RPC.internalError, 'too many listen streams on this gateway; try again later');

      const session: Session = {
        id: `listen:${randomBytes(12).toString('base64url')}`,
        workspace,
        sub,
        role,
        protocolVersion: caller.protocolVersion,
        clientCapabilities: {},
        lastSeen: Date.now(),
        requests: new Map(),
        subscriptions: new Set(),
      };
      const entry: ListenerEntry = { session, kinds: new Set(), sink, open: true };
      // Registered at once, so concurrent listens count against the limits.
      listeners.set(session.id, entry);
      const support = changeSupport(workspace);
      const honored: ListenFilter = {};
      for (const [flag, kind] of [
        ['toolsListChanged', 'tools'],
        ['promptsListChanged', 'prompts'],
        ['resourcesListChanged', 'resources'],
      ] as const) {
        if (filter[flag] === true && support[kind]) {
          honored[flag] = true;
          entry.kinds.add(kind);
        }
      }
      const uris = [...new Set(filter.resourceSubscriptions ?? [])];
      if (uris.length > 0) {
        const waking = directory.activity(workspace, 1);
        try {
          if (waking) await waking;
          const watched: string[] = [];
          for (const uri of uris) {
            if (!entry.open) break;
            if (!mayAccess(g.policy, 'resources', role, uri).allow) continue;
            const server = await ownerOf(session, uri, NO_SINK).catch(() => undefined);
            if (server === undefined || !serverSubscribes(workspace, server)) continue;
            const refused = await hold(session, server, uri, () => forward(session, `listen:${++seq}`, server, 'resources/subscribe', { uri }, NO_SINK)).catch(
              (err: unknown) => ({ error: { code: RPC.internalError, message: String(err) } }),
            );
            if (!refused) watched.push(uri);
          }
          if (watched.length > 0) honored.resourceSubscriptions = watched;
        } finally {
          void directory.activity(workspace, -1);
        }
      }
      // Ended while it was being set up (workspace deleted): whatever was taken meanwhile goes back.
      if (!entry.open) releaseHoldings(session);
      return { id: session.id, honored, close: () => closeListener(entry) };
    },

    /** Which change notifications the workspace's servers declare (what `server/discover` may advertise). */
    changeSupport(workspace: string): ChangeSupport {
      return changeSupport(workspace);
    },

    /** Ends every listener (gateway shutdown): each sink hears why, so its client can be told gracefully. */
    endListeners(reason: string): void {
      for (const l of [...listeners.values()]) endListener(l, reason);
    },

    get listenerCount(): number {
      return listeners.size;
    },

    /** Drops sessions idle for longer than the limit. */
    sweep(now: number): void {
      const idle = opts.sessionIdleMs ?? 3_600_000;
      for (const s of sessions.values()) if (now - s.lastSeen > idle && s.requests.size === 0) router.close(s.id);
    },

    /** Drops every session of a workspace (deleted). */
    forgetWorkspace(workspace: string): void {
      for (const s of sessionsOf(workspace)) router.close(s.id);
      for (const l of listenersOf(workspace)) endListener(l, 'the workspace was deleted');
      indexes.delete(workspace);
    },

    get sessionCount(): number {
      return sessions.size;
    },
  };
  return router;
}

export type WorkspaceRouter = ReturnType<typeof createWorkspaceRouter>;
