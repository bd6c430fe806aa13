// MCP Streamable HTTP for protocol revision 2026-07-28 on /mcp/{workspace}: one stateless POST per request, the
// revision's validation ladder, results shaped for it, `subscriptions/listen` streams, and 2025-era POSTs handed on
// to the session transport.
import { IncomingMessage } from 'node:http';
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { accepts, parseJsonBody, PostResponder, readBody, SseStream, writeRpcError } from './http-exchange.js';
import { createInputBridge, Exchange } from './input-bridge.js';
import type { Binding } from './input-bridge.js';
import { ProtocolError, RPC } from './json-rpc.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from './json-rpc.js';
import {
  ALL_SUPPORTED_VERSIONS,
  HEADERS,
  INPUT_REQUIRED_METHODS,
  isModernVersion,
  META,
  MODERN_ERROR,
  MODERN_METHODS,
  MODERN_PROTOCOL_VERSION,
  admitPost,
  inBandStatus,
  modernCapabilities,
  modernError,
  modernResult,
  paramDeclarations,
  paramHeaderIssue,
  subscriptionFilter,
  upstreamParams,
} from './modern-era.js';
import type { Envelope } from './modern-era.js';
import type { Caller } from './streamable-http.js';
import { RATE_LIMITED } from './workspace-router.js';
import type { Listener, ListenSink, RequestNote, Session, WorkspaceRouter } from './workspace-router.js';

export interface StatelessDeps {
  router: WorkspaceRouter;
  maxBodyBytes: number;
  /** The 2025 session transport: a POST that turns out to be 2025 traffic is replayed into it unchanged. */
  legacy(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void>;
  /** How long a request that asked for input waits for the client's retry. */
  inputTimeoutMs?: number;
  maxParkedRequests?: number;
  /** Interval of the keep-alive comments on a `subscriptions/listen` stream. */
  keepAliveMs?: number;
}

const SSE_HEADERS = { 'x-accel-buffering': 'no' };

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/**
 * The `Mcp-Param-*` check of one `tools/call`, run by the router once it knows the tool's input schema (the one
 * it validates the arguments against). A tool that declares no `x-mcp-header` parameter costs a cache look-up.
 */
const headerCheckFor =
  (req: IncomingMessage, checked?: (inputSchema: unknown) => void): NonNullable<Session['headerCheck']> =>
  (inputSchema, args) => {
    checked?.(inputSchema);
    const declarations = paramDeclarations(inputSchema);
    if (declarations.length === 0) return undefined;
    return paramHeaderIssue(declarations, args, (key) => header(req, key));
  };

/**
 * Whether a request on /mcp/{workspace} goes to the stateless handler: anything naming a 2026-era revision in
 * MCP-Protocol-Version, and POSTs without a session (which may be either era: the body decides). Requests within
 * a 2025 session never pass through it.
 */
export function routesToStateless(req: IncomingMessage): boolean {
  if (isModernVersion(header(req, HEADERS.protocolVersion)?.trim())) return true;
  return req.method === 'POST' && req.headers[HEADERS.session] === undefined;
}

/** A request whose body was already read, readable again for the 2025 transport. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  // An unconnected socket: the copy owns nothing, so ending or destroying it cannot touch the client's connection.
  const copy = new IncomingMessage(new Socket());
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.complete = true;
  copy.push(body);
  copy.push(null);
  return copy;
}

type Params = Record<string, unknown>;
const isObject = (v: unknown): v is Params => v !== null && typeof v === 'object' && !Array.isArray(v);

export function createStatelessHttp(deps: StatelessDeps) {
  const { router } = deps;
  const bridge = createInputBridge({ ttlMs: deps.inputTimeoutMs ?? 120_000, maxParked: deps.maxParkedRequests ?? 1_000 });
  const keepAliveMs = deps.keepAliveMs ?? 25_000;

  const serverInfo = (workspace: string) => router.describe(workspace, MODERN_PROTOCOL_VERSION).serverInfo;

  const discover = (caller: Caller): Params => {
    const d = router.describe(caller.workspace, MODERN_PROTOCOL_VERSION);
    return modernResult(
      'server/discover',
      { supportedVersions: [...ALL_SUPPORTED_VERSIONS], capabilities: modernCapabilities(d.capabilities, router.changeSupport(caller.workspace)), ...(d.instructions ? { instructions: d.instructions } : {}) },
      d.serverInfo,
    );
  };

  /** The identity a retry must repeat: who asks, and exactly which call (name or URI and arguments). */
  const bindingOf = (caller: Caller, msg: JsonRpcRequest): Binding => {
    const p = msg.params ?? {};
    return { workspace: caller.workspace, sub: caller.sub, method: msg.method, target: JSON.stringify([p.name, p.uri, p.arguments]) };
  };

  /** A notification stamped with the listen request's id, as the revision requires of every one on the stream. */
  const stamped = (n: JsonRpcMessage, subscriptionId: JsonRpcId): JsonRpcMessage => {
    const params = 'params' in n && isObject(n.params) ? n.params : {};
    return { ...n, params: { ...params, _meta: { ...(isObject(params._meta) ? params._meta : {}), [META.subscriptionId]: subscriptionId } } };
  };

  /**
   * `subscriptions/listen`: the response is an SSE stream that opens with `notifications/subscriptions/acknowledged`
   * (the part of the filter honoured) and then carries the change notifications asked for, each stamped with the
   * request's id. Closing the response releases everything; the gateway ending it (access revoked, workspace
   * deleted, shutdown, or nothing to deliver) sends the empty result first, the revision's graceful close.
   */
  const listen = async (res: ServerResponse, msg: JsonRpcRequest, envelope: Envelope, caller: Caller): Promise<void> => {
    const record = auditor(caller, msg, { decision: 'allow' });
    const filter = subscriptionFilter(msg.params?.notifications);
    if (!filter) {
      writeRpcError(res, 200, { code: RPC.invalidParams, message: 'Invalid params: subscriptions/listen needs a notifications filter (booleans, and resourceSubscriptions as an array of strings)' }, msg.id);
      record(`error:${RPC.invalidParams}`);
      return;
    }
    // What the closures below see change as the stream is set up, acknowledged and ended.
    const at: { stream?: SseStream; listener?: Listener; timer?: NodeJS.Timeout; gone: boolean; endedEarly: boolean } = { gone: false, endedEarly: false };
    const early: JsonRpcMessage[] = [];
    const close = (): void => {
      const stream = at.stream;
      if (!stream?.isOpen) return;
      stream.send({ jsonrpc: '2.0', id: msg.id, result: { resultType: 'complete', _meta: { [META.subscriptionId]: msg.id, [META.serverInfo]: serverInfo(caller.workspace) } } });
      stream.end();
    };
    const sink: ListenSink = {
      send(n) {
        if (at.gone) return false;
        // Nothing may precede the acknowledgement: what arrives while the listener is being set up waits for it.
        if (!at.stream) {
          early.push(stamped(n, msg.id));
          return true;
        }
        return at.stream.send(stamped(n, msg.id));
      },
      role: () => (caller.currentRole ? caller.currentRole() : caller.role),
      ended() {
        if (at.stream) close();
        else at.endedEarly = true;
      },
    };
    res.on('close', () => {
      at.gone = true;
      clearInterval(at.timer);
      at.listener?.close();
    });
    let listener: Listener;
    try {
      listener = await router.listen({ workspace: caller.workspace, sub: caller.sub, role: caller.role, protocolVersion: envelope.protocolVersion }, filter, sink);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      if (!at.gone) writeRpcError(res, 200, modernError(err.toJSON(), msg.method, msg.params), msg.id);
      record(`error:${err.code}`);
      return;
    }
    at.listener = listener;
    if (at.gone) {
      listener.close();
      record('cancelled');
      return;
    }
    const stream = new SseStream(res, SSE_HEADERS);
    at.stream = stream;
    stream.send({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { _meta: { [META.subscriptionId]: msg.id }, notifications: listener.honored } });
    for (const m of early.splice(0)) stream.send(m);
    record('ok');
    if (at.endedEarly || Object.keys(listener.honored).length === 0) {
      // Nothing it asked for can be delivered: the slot is not kept open for nothing.
      listener.close();
      close();
      return;
    }
    at.timer = setInterval(() => {
      // A quiet stream loses its access as soon as a busy one: the role is re-read at every keep-alive too.
      if (caller.currentRole && !caller.currentRole()) {
        listener.close();
        close();
        return;
      }
      stream.keepAlive();
    }, keepAliveMs);
    at.timer.unref();
  };

  /** One line of the audit trail per request answered (each MRTR leg is a request of its own). */
  const auditor = (caller: Caller, msg: JsonRpcRequest, note: RequestNote) => {
    const started = process.hrtime.bigint();
    return (outcome: string) =>
      caller.audit?.({ method: msg.method, note, latencyMs: Number(process.hrtime.bigint() - started) / 1e6, outcome, arguments: msg.params?.arguments });
  };

  /** Answers one leg of an exchange: the final result, or `input_required` with the exchange parked for the retry. */
  const serve = async (exchange: Exchange, res: ServerResponse, msg: JsonRpcRequest, caller: Caller): Promise<void> => {
    const record = auditor(caller, msg, exchange.note);
    const responder = new PostResponder(res, {}, SSE_HEADERS);
    exchange.attach(responder);
    let settled = false;
    // Closing the response is how a client of this revision cancels (transports "Cancellation").
    res.on('close', () => {
      if (!settled) exchange.abandon('the client cancelled the request');
    });
    const outcome = await exchange.next();
    settled = true;
    exchange.attach(undefined);
    record(outcome.kind === 'final' ? (outcome.response.error ? `error:${outcome.response.error.code}` : 'ok') : outcome.kind === 'input' ? 'input_required' : outcome.kind === 'cancelled' ? 'cancelled' : `error:${MODERN_ERROR.missingRequiredClientCapability}`);
    switch (outcome.kind) {
      case 'cancelled':
        responder.finish(undefined);
        return;
      case 'missing-capability':
        exchange.abandon('the client lacks a capability the request needs');
        responder.finish(
          {
            jsonrpc: '2.0',
            id: msg.id,
            error: {
              code: MODERN_ERROR.missingRequiredClientCapability,
              message: `Missing required client capabilities: ${Object.keys(outcome.requiredCapabilities).join(', ')}`,
              data: { requiredCapabilities: outcome.requiredCapabilities },
            },
          },
          400,
        );
        return;
      case 'input': {
        const token = bridge.park(exchange, bindingOf(caller, msg));
        if (!token) {
          exchange.abandon('too many requests are waiting for input');
          responder.finish({ jsonrpc: '2.0', id: msg.id, error: { code: RPC.internalError, message: 'too many requests are waiting for client input; try again later' } });
          return;
        }
        responder.finish({
          jsonrpc: '2.0',
          id: msg.id,
          result: { resultType: 'input_required', inputRequests: outcome.inputRequests, requestState: token, _meta: { [META.serverInfo]: serverInfo(caller.workspace) } },
        });
        return;
      }
      case 'final': {
        const r = outcome.response;
        if (r.error?.code === RATE_LIMITED && !res.headersSent) {
          // The per-server concurrency cap: an HTTP-level "try again", with the code the revision allows.
          const retry = isObject(r.error.data) && typeof r.error.data.retryAfter === 'number' ? r.error.data.retryAfter : 1;
          writeRpcError(res, 429, modernError(r.error, msg.method, msg.params), msg.id, { 'retry-after': String(retry) });
          return;
        }
        if (r.error) {
          const error = modernError(r.error, msg.method, msg.params);
          responder.finish({ jsonrpc: '2.0', id: msg.id, error }, inBandStatus(error.code));
          return;
        }
        responder.finish({ jsonrpc: '2.0', id: msg.id, result: modernResult(msg.method, r.result, serverInfo(caller.workspace)) });
        return;
      }
    }
  };

  const request = async (req: IncomingMessage, res: ServerResponse, msg: JsonRpcRequest, envelope: Envelope, caller: Caller): Promise<void> => {
    if (!MODERN_METHODS.has(msg.method)) {
      writeRpcError(res, 404, { code: RPC.methodNotFound, message: `Method not found: ${msg.method} is not a method of protocol revision ${MODERN_PROTOCOL_VERSION}` }, msg.id);
      auditor(caller, msg, { decision: 'allow' })(`error:${RPC.methodNotFound}`);
      return;
    }
    if (msg.method === 'server/discover') {
      const body = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: discover(caller) } satisfies JsonRpcResponse);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      auditor(caller, msg, { decision: 'allow' })('ok');
      return;
    }
    if (msg.method === 'subscriptions/listen') return listen(res, msg, envelope, caller);
    const params = msg.params;
    const state = params?.requestState;
    if (state !== undefined && INPUT_REQUIRED_METHODS.has(msg.method)) {
      const responses = params?.inputResponses ?? {};
      if (typeof state !== 'string' || !isObject(responses)) {
        writeRpcError(res, 200, { code: RPC.invalidParams, message: 'Invalid params: requestState must be a string and inputResponses an object' }, msg.id);
        return;
      }
      const binding = bindingOf(caller, msg);
      const parked = bridge.peek(state, binding);
      // A retry is a request of its own: its Mcp-Param-* headers must match too (checked against the schema the first
      // leg was checked against). Refused, it resumes nothing: the exchange stays parked for a correct retry.
      const issue = parked && msg.method === 'tools/call' ? headerCheckFor(req)(parked.inputSchema, params?.arguments) : undefined;
      if (issue) {
        writeRpcError(res, 400, issue, msg.id);
        auditor(caller, msg, { ...parked!.note, decision: 'deny', reason: issue.message })(`error:${issue.code}`);
        return;
      }
      const exchange = parked && bridge.take(state, binding);
      if (!exchange) {
        writeRpcError(res, 200, { code: RPC.invalidParams, message: 'Invalid params: requestState is unknown, expired, or belongs to another request; send the request again without it' }, msg.id);
        return;
      }
      if (msg.method === 'tools/call' && caller.role === 'viewer') {
        exchange.abandon('the caller may no longer call tools');
        writeRpcError(res, 200, { code: -32001, message: 'your role in this workspace (viewer) may list tools but not call them' }, msg.id);
        return;
      }
      exchange.answer(responses);
      await serve(exchange, res, msg, caller);
      return;
    }
    const declared = envelope.clientCapabilities;
    // The schema the router checks this call's headers against is kept on the exchange, for the retries' headers.
    const at: { exchange?: Exchange } = {};
    const remember = (inputSchema: unknown): void => {
      if (at.exchange) at.exchange.inputSchema = inputSchema;
    };
    const session = router.statelessSession(caller.workspace, caller.sub, caller.role, {
      protocolVersion: envelope.protocolVersion,
      // The router refuses server-to-client requests of capabilities a session lacks, out of the client's sight;
      // the exchange must see them all to answer -32021 as the revision prescribes, so it checks `declared` itself.
      clientCapabilities: { ...declared, sampling: declared.sampling ?? {}, elicitation: declared.elicitation ?? {} },
      clientInfo: envelope.clientInfo,
      ...(envelope.logLevel !== undefined ? { logLevel: envelope.logLevel } : {}),
      ...(msg.method === 'tools/call' ? { headerCheck: headerCheckFor(req, remember) } : {}),
    });
    const upstream = upstreamParams(params);
    const exchange = new Exchange(router, session, INPUT_REQUIRED_METHODS.has(msg.method), declared);
    at.exchange = exchange;
    exchange.begin({ jsonrpc: '2.0', id: msg.id, method: msg.method, ...(upstream ? { params: upstream } : {}) });
    await serve(exchange, res, msg, caller);
  };

  return async function handle(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    if (req.method !== 'POST') {
      writeRpcError(res, 405, { code: RPC.invalidRequest, message: `Method Not Allowed: protocol revision ${MODERN_PROTOCOL_VERSION} uses POST only` }, null, { allow: 'POST' });
      return;
    }
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    if (!ct.startsWith('application/json')) {
      writeRpcError(res, 415, { code: RPC.invalidRequest, message: 'Unsupported Media Type: Content-Type must be application/json' });
      return;
    }
    const raw = await readBody(req, deps.maxBodyBytes);
    if (raw === 'too_large') {
      writeRpcError(res, 413, { code: RPC.invalidRequest, message: `Content Too Large: the body exceeds ${deps.maxBodyBytes} bytes` });
      return;
    }
    const parsed = parseJsonBody(raw);
    if (!parsed.ok) {
      writeRpcError(res, 400, { code: RPC.parseError, message: parsed.reason });
      return;
    }
    const admission = admitPost(
      { protocolVersion: header(req, HEADERS.protocolVersion), method: header(req, HEADERS.method), name: header(req, HEADERS.name) },
      parsed.value,
    );
    switch (admission.kind) {
      case 'legacy':
        return deps.legacy(replay(req, raw), res, caller);
      case 'reject':
        writeRpcError(res, admission.status, admission.error, admission.id);
        return;
      case 'notification':
        // The revision defines no client notifications over HTTP (closing a stream cancels); accepted and dropped.
        res.writeHead(202).end();
        return;
      case 'request':
        if (!accepts(req, 'application/json') || !accepts(req, 'text/event-stream')) {
          writeRpcError(res, 406, { code: RPC.invalidRequest, message: 'Not Acceptable: the client must accept both application/json and text/event-stream' }, admission.msg.id);
          return;
        }
        return request(req, res, admission.msg, admission.envelope, caller);
    }
  };
}
