// One JSON-RPC connection to one server process (newline-delimited over the attach bridge): requests with
// their own id space, the cached MCP handshake, and channels that let several clients share the process.
import { classify, ProtocolError, RPC } from './json-rpc.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from './json-rpc.js';

export const GATEWAY_PROTOCOL_VERSION = '2025-11-25';
export const GATEWAY_CLIENT_INFO = { name: 'mcpx-gateway', version: '0.1.0' };

export interface InitializeResult {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string; [k: string]: unknown };
  instructions?: string;
  [k: string]: unknown;
}

interface Pending {
  resolve(msg: JsonRpcResponse): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** The SDK's Transport shape, declared here so that src/ does not depend on the SDK's internals. */
export interface ChannelTransport {
  start(): Promise<void>;
  send(message: JsonRpcMessage): Promise<void>;
  close(): Promise<void>;
  onmessage?: (message: JsonRpcMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  sessionId?: string;
}

/** The size of the line each response arrived in (characters), for response size caps without re-serialising. */
const RESPONSE_BYTES = new WeakMap<JsonRpcResponse, number>();
export const responseSize = (msg: JsonRpcResponse): number => RESPONSE_BYTES.get(msg) ?? 0;

export class UpstreamClosedError extends Error {
  constructor(message = 'the server process is not running') {
    super(message);
    this.name = 'UpstreamClosedError';
  }
}

export interface UpstreamOptions {
  write(line: string): boolean;
  requestTimeoutMs?: number;
  onGarbage?(line: string, reason: string): void;
}

/** Answers a server-to-client request (sampling, elicitation, roots); resolves with the response body. */
export type UpstreamRequestHandler = (request: JsonRpcRequest) => Promise<Omit<JsonRpcResponse, 'jsonrpc' | 'id'>>;

/** What the gateway declares to a server: it can route sampling and elicitation, and answers roots itself. */
export const GATEWAY_CLIENT_CAPABILITIES = { roots: { listChanged: false }, sampling: {}, elicitation: {} };

export class UpstreamConnection {
  private nextId = 1;
  private readonly pending = new Map<JsonRpcId, Pending>();
  private readonly notificationListeners = new Set<(n: JsonRpcNotification) => void>();
  private closed = false;
  initializeResult: InitializeResult | undefined;
  /** Set by the MCP endpoint; without it, server-to-client requests are refused. */
  requestHandler: UpstreamRequestHandler | undefined;

  constructor(private readonly opts: UpstreamOptions) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Feeds one line read from the server's stdout. Never throws: a bad line is reported and dropped. */
  handleLine(line: string): void {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.opts.onGarbage?.(line, 'not JSON');
      return;
    }
    const c = classify(parsed);
    switch (c.kind) {
      case 'response': {
        const id = c.msg.id;
        const p = id === null ? undefined : this.pending.get(id);
        if (!p) {
          this.opts.onGarbage?.(line, 'response to an unknown request id');
          return;
        }
        this.pending.delete(id as JsonRpcId);
        clearTimeout(p.timer);
        RESPONSE_BYTES.set(c.msg, line.length);
        p.resolve(c.msg);
        return;
      }
      case 'notification':
        for (const l of this.notificationListeners) l(c.msg);
        return;
      case 'request': {
        // Server-to-client requests (sampling, elicitation, roots) are routed by the MCP endpoint; with no
        // route, refuse clearly so that the server does not wait forever.
        const id = c.msg.id;
        const handler = this.requestHandler;
        if (!handler) {
          this.send({ jsonrpc: '2.0', id, error: { code: RPC.methodNotFound, message: `the gateway does not serve ${c.msg.method} for this server` } });
          return;
        }
        handler(c.msg).then(
          (r) => this.send({ jsonrpc: '2.0', id, ...r }),
          () => this.send({ jsonrpc: '2.0', id, error: { code: RPC.internalError, message: 'the gateway could not route this request' } }),
        );
        return;
      }
      case 'invalid':
        this.opts.onGarbage?.(line, c.reason);
        return;
    }
  }

  /** Sends a request with a fresh upstream id and resolves with the whole response (result or error). */
  call(method: string, params?: Record<string, unknown>, timeoutMs?: number): Promise<JsonRpcResponse> {
    return this.start(method, params, timeoutMs).response;
  }

  /** Like call, but also gives the upstream id at once (to rewrite a cancellation that arrives later). */
  start(method: string, params?: Record<string, unknown>, timeoutMs = this.opts.requestTimeoutMs ?? 60_000): { id: number; response: Promise<JsonRpcResponse> } {
    const id = this.nextId++;
    if (this.closed) return { id, response: Promise.reject(new UpstreamClosedError()) };
    const response = new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError(RPC.internalError, `the server did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const msg: JsonRpcRequest = { jsonrpc: '2.0', id, method, ...(params ? { params } : {}) };
      if (!this.send(msg)) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new UpstreamClosedError());
      }
    });
    return { id, response };
  }

  /** Gives up on a pending request (after a cancellation): its caller gets `reason`, a late answer is dropped. */
  abandon(id: number, reason: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.reject(reason);
  }

  /** Like call, but resolves with the result and rejects with a ProtocolError for an error response. */
  async request(method: string, params?: Record<string, unknown>, timeoutMs?: number): Promise<unknown> {
    const r = await this.call(method, params, timeoutMs);
    if (r.error) throw new ProtocolError(r.error.code, r.error.message, r.error.data);
    return r.result;
  }

  notify(method: string, params?: Record<string, unknown>): boolean {
    return this.send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) });
  }

  onNotification(listener: (n: JsonRpcNotification) => void): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  /** The MCP handshake, done once per process; its result is cached and replayed to every client. */
  async initialize(timeoutMs: number): Promise<InitializeResult> {
    const result = (await this.request(
      'initialize',
      { protocolVersion: GATEWAY_PROTOCOL_VERSION, capabilities: GATEWAY_CLIENT_CAPABILITIES, clientInfo: GATEWAY_CLIENT_INFO },
      timeoutMs,
    )) as InitializeResult;
    if (!result || typeof result !== 'object' || typeof result.protocolVersion !== 'string') {
      throw new ProtocolError(RPC.internalError, 'the server answered initialize without a protocol version');
    }
    this.notify('notifications/initialized');
    this.initializeResult = result;
    return result;
  }

  close(reason = 'the server process exited'): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new UpstreamClosedError(reason));
      this.pending.delete(id);
    }
  }

  /**
   * A logical connection for one client over the shared process: the handshake is answered from the cache and
   * request ids are rewritten, so that clients never see each other's ids.
   */
  openChannel(): ChannelTransport {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const upstream = this;
    let open = true;
    let unsubscribe: (() => void) | undefined;
    const channel: ChannelTransport = {
      start() {
        unsubscribe = upstream.onNotification((n) => open && channel.onmessage?.(n));
        return Promise.resolve();
      },
      send(message) {
        const c = classify(message);
        if (c.kind === 'notification') {
          if (c.msg.method !== 'notifications/initialized') upstream.notify(c.msg.method, c.msg.params);
          return Promise.resolve();
        }
        if (c.kind !== 'request') return Promise.resolve();
        const reply = (r: Omit<JsonRpcResponse, 'jsonrpc' | 'id'>) => open && channel.onmessage?.({ jsonrpc: '2.0', id: c.msg.id, ...r });
        if (c.msg.method === 'initialize') {
          if (upstream.initializeResult) reply({ result: upstream.initializeResult });
          else reply({ error: { code: RPC.internalError, message: 'the server is not initialized' } });
          return Promise.resolve();
        }
        upstream.call(c.msg.method, c.msg.params).then(
          (r) => reply(r.error ? { error: r.error } : { result: r.result }),
          (err: unknown) => reply({ error: { code: RPC.internalError, message: err instanceof Error ? err.message : 'upstream failure' } }),
        );
        return Promise.resolve();
      },
      close() {
        if (!open) return Promise.resolve();
        open = false;
        unsubscribe?.();
        channel.onclose?.();
        return Promise.resolve();
      },
    };
    return channel;
  }

  private send(msg: JsonRpcMessage): boolean {
    if (this.closed) return false;
    return this.opts.write(JSON.stringify(msg));
  }
}
