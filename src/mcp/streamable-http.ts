// MCP Streamable HTTP (2025-03-26 .. 2025-11-25) on /mcp/{workspace}: sessions bound to the token's user,
// header checks, JSON answers that turn into SSE only when a request needs a stream, GET and DELETE.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { accepts, parseJsonBody, PostResponder, readBody, SseStream, writeRpcError } from './http-exchange.js';
import { classify, RPC } from './json-rpc.js';
import type { JsonRpcId } from './json-rpc.js';
import { CancelledError, RATE_LIMITED, SUPPORTED_PROTOCOL_VERSIONS } from './workspace-router.js';
import type { RequestNote, Role, Session, WorkspaceRouter } from './workspace-router.js';

export const SESSION_HEADER = 'mcp-session-id';
export const VERSION_HEADER = 'mcp-protocol-version';

function rpcError(res: ServerResponse, status: number, code: number, message: string, id: JsonRpcId | null = null, headers: Record<string, string> = {}): void {
  writeRpcError(res, status, { code, message }, id, headers);
}

export interface StreamableDeps {
  router: WorkspaceRouter;
  maxBodyBytes: number;
}

/** One finished MCP request, for the audit trail. */
export interface McpAuditRecord {
  method: string;
  note: RequestNote;
  latencyMs: number;
  /** ok, error:<code>, cancelled */
  outcome: string;
  arguments?: unknown;
}

export interface Caller {
  workspace: string;
  sub: string;
  role: Role;
  /** The caller's role as it is now (undefined: none any more); read by long-lived streams, which outlive `role`. */
  currentRole?(): Role | undefined;
  /** Called once per request the transport answered (or that was cancelled). */
  audit?(record: McpAuditRecord): void;
}

export function createStreamableHttp(deps: StreamableDeps) {
  const { router } = deps;

  /** The session a request names, with the checks of the contract: missing 400, unknown or foreign 404. */
  const sessionFor = (req: IncomingMessage, res: ServerResponse, caller: Caller, id: JsonRpcId | null): Session | undefined => {
    const sid = req.headers[SESSION_HEADER];
    if (typeof sid !== 'string' || sid === '') {
      rpcError(res, 400, RPC.invalidRequest, 'Bad Request: Mcp-Session-Id header is required', id);
      return undefined;
    }
    const session = router.session(sid, caller.workspace, caller.sub);
    if (!session) {
      rpcError(res, 404, RPC.invalidRequest, 'Session not found', id);
      return undefined;
    }
    // A role change (or removal) applies to live sessions at once.
    session.role = caller.role;
    return session;
  };

  const versionOk = (req: IncomingMessage, res: ServerResponse): boolean => {
    const v = req.headers[VERSION_HEADER];
    if (v === undefined) return true; // the transport spec says to assume 2025-03-26
    if (typeof v === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(v)) return true;
    rpcError(res, 400, RPC.invalidRequest, `Bad Request: unsupported MCP-Protocol-Version ${String(v)} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    return false;
  };

  const post = async (req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> => {
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    if (!ct.startsWith('application/json')) {
      rpcError(res, 415, RPC.invalidRequest, 'Unsupported Media Type: Content-Type must be application/json');
      return;
    }
    const raw = await readBody(req, deps.maxBodyBytes);
    if (raw === 'too_large') {
      rpcError(res, 413, RPC.invalidRequest, `Content Too Large: the body exceeds ${deps.maxBodyBytes} bytes`);
      return;
    }
    const body = parseJsonBody(raw);
    if (!body.ok) {
      rpcError(res, 400, RPC.parseError, body.reason);
      return;
    }
    const c = classify(body.value);
    if (c.kind === 'invalid') {
      rpcError(res, 400, RPC.invalidRequest, `Invalid Request: ${c.reason}`, c.id ?? null);
      return;
    }

    if (c.kind === 'request' && c.msg.method === 'initialize') {
      if (req.headers[SESSION_HEADER] !== undefined) {
        rpcError(res, 400, RPC.invalidRequest, 'Bad Request: initialize must not carry an Mcp-Session-Id', c.msg.id);
        return;
      }
      if (!accepts(req, 'application/json') || !accepts(req, 'text/event-stream')) {
        rpcError(res, 406, RPC.invalidRequest, 'Not Acceptable: the client must accept both application/json and text/event-stream', c.msg.id);
        return;
      }
      const { session, result } = router.initialize(caller.workspace, caller.sub, caller.role, c.msg);
      const body = JSON.stringify({ jsonrpc: '2.0', id: c.msg.id, result });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'mcp-session-id': session.id });
      res.end(body);
      return;
    }

    const id = c.kind === 'request' ? c.msg.id : null;
    if (!versionOk(req, res)) return;
    const session = sessionFor(req, res, caller, id);
    if (!session) return;

    if (c.kind === 'notification') {
      router.notification(session, c.msg);
      res.writeHead(202).end();
      return;
    }
    if (c.kind === 'response') {
      router.response(session, c.msg);
      res.writeHead(202).end();
      return;
    }
    if (!accepts(req, 'application/json') || !accepts(req, 'text/event-stream')) {
      rpcError(res, 406, RPC.invalidRequest, 'Not Acceptable: the client must accept both application/json and text/event-stream', id);
      return;
    }
    const responder = new PostResponder(res, {});
    const clientId = c.msg.id;
    const started = process.hrtime.bigint();
    const note: RequestNote = { decision: 'allow' };
    const record = (outcome: string) =>
      caller.audit?.({ method: c.msg.method, note, latencyMs: Number(process.hrtime.bigint() - started) / 1e6, outcome, arguments: c.msg.params?.arguments });
    let finished = false;
    // A client that hangs up before its answer has cancelled the request.
    res.on('close', () => {
      if (!finished) router.abandon(session, clientId);
    });
    try {
      const response = await router.request(session, c.msg, responder, note);
      finished = true;
      if (response.error?.code === RATE_LIMITED && !responder.started) {
        const retry = String((response.error.data as { retryAfter?: number } | undefined)?.retryAfter ?? 1);
        rpcError(res, 429, RATE_LIMITED, response.error.message, c.msg.id, { 'retry-after': retry });
      } else {
        responder.finish(response);
      }
      record(response.error ? `error:${response.error.code}` : 'ok');
    } catch (err) {
      finished = true;
      if (err instanceof CancelledError) {
        responder.finish(undefined);
        record('cancelled');
      } else throw err;
    }
  };

  const get = (req: IncomingMessage, res: ServerResponse, caller: Caller): void => {
    if (!accepts(req, 'text/event-stream')) {
      rpcError(res, 406, RPC.invalidRequest, 'Not Acceptable: the client must accept text/event-stream');
      return;
    }
    if (!versionOk(req, res)) return;
    const session = sessionFor(req, res, caller, null);
    if (!session) return;
    if (session.stream && (session.stream as SseStream).isOpen) {
      rpcError(res, 409, RPC.invalidRequest, 'Conflict: this session already has an open stream');
      return;
    }
    const stream = new SseStream(res);
    session.stream = stream;
    res.on('close', () => {
      if (session.stream === stream) session.stream = undefined;
    });
  };

  const del = (req: IncomingMessage, res: ServerResponse, caller: Caller): void => {
    const session = sessionFor(req, res, caller, null);
    if (!session) return;
    (session.stream as SseStream | undefined)?.end();
    router.close(session.id);
    res.writeHead(200).end();
  };

  return async function handle(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    switch (req.method) {
      case 'POST':
        return post(req, res, caller);
      case 'GET':
        return get(req, res, caller);
      case 'DELETE':
        return del(req, res, caller);
      default:
        res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
    }
  };
}

