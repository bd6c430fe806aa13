// Multi round-trip requests (2026-07-28) in front of 2025 servers: a server-to-client request (sampling,
// elicitation) that a 2025 server sends while handling a stateless request becomes an `input_required` result;
// the upstream call is parked under an unguessable `requestState` until the client retries with the answers.
import { randomBytes } from 'node:crypto';
import { RPC } from './json-rpc.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from './json-rpc.js';
import { inputRequest, missingCapabilities } from './modern-era.js';
import { CancelledError } from './workspace-router.js';
import type { ClientSink, RequestNote, Session, WorkspaceRouter } from './workspace-router.js';

type Params = Record<string, unknown>;
const isObject = (v: unknown): v is Params => v !== null && typeof v === 'object' && !Array.isArray(v);

export type Outcome =
  | { kind: 'final'; response: JsonRpcResponse }
  | { kind: 'cancelled' }
  | { kind: 'input'; inputRequests: Record<string, Params> }
  | { kind: 'missing-capability'; requiredCapabilities: Params };

/**
 * One client request and the upstream work it started, across however many HTTP legs it takes. Interim messages
 * go to whichever leg is attached; server-to-client requests are collected as input requests.
 */
export class Exchange {
  private responder: ClientSink | undefined;
  private final: JsonRpcResponse | 'cancelled' | undefined;
  private missing: Params | undefined;
  /** Input key -> the upstream request waiting for it. */
  private readonly asked = new Map<string, { gid: JsonRpcId; method: string; params?: Params }>();
  private waiter: (() => void) | undefined;
  private seq = 0;
  readonly sink: ClientSink = { send: (m) => this.onMessage(m) };
  /** What the router decided about the request (server, target, guardrails), for the audit trail. */
  readonly note: RequestNote = { decision: 'allow' };
  /** The input schema of the called tool, once the router checked the first leg's headers against it (for retries). */
  inputSchema: unknown;

  constructor(
    private readonly router: Pick<WorkspaceRouter, 'request' | 'response' | 'release'>,
    readonly session: Session,
    /** False for requests the revision does not let answer `input_required`: their server-to-client requests fail. */
    private readonly allowInput: boolean,
    /** What the client declared in this request's `_meta` (the session itself claims more; see stateless-http.ts). */
    private readonly declared: Params,
  ) {}

  begin(msg: JsonRpcRequest): void {
    void this.router.request(this.session, msg, this.sink, this.note).then(
      (response) => this.settle(response),
      // The router turns every failure but a cancellation into a JSON-RPC error; anything else is a bug there.
      (err: unknown) =>
        this.settle(err instanceof CancelledError ? 'cancelled' : { jsonrpc: '2.0', id: msg.id, error: { code: RPC.internalError, message: 'internal error' } }),
    );
  }

  /** The leg that receives interim messages (progress) until it is finished. */
  attach(responder: ClientSink | undefined): void {
    this.responder = responder;
  }

  /** Feeds a retry's `inputResponses` to the upstream requests they answer; unanswered ones stay pending. */
  answer(responses: Params): void {
    for (const [key, entry] of [...this.asked]) {
      const value = responses[key];
      if (!isObject(value)) continue;
      this.asked.delete(key);
      this.router.response(this.session, { jsonrpc: '2.0', id: entry.gid, result: value });
    }
  }

  /** Waits for what the current leg must answer: the final response, a cancellation, or input the client must give. */
  async next(): Promise<Outcome> {
    for (;;) {
      if (this.missing) return { kind: 'missing-capability', requiredCapabilities: this.missing };
      if (this.final === 'cancelled') return { kind: 'cancelled' };
      if (this.final) return { kind: 'final', response: this.final };
      if (this.asked.size > 0) {
        // Let requests the server sends in the same breath join this round.
        await new Promise((r) => setImmediate(r));
        if (this.missing || this.final) continue;
        const inputRequests: Record<string, Params> = {};
        for (const [key, e] of this.asked) inputRequests[key] = inputRequest(e.method, e.params);
        return { kind: 'input', inputRequests };
      }
      await new Promise<void>((r) => {
        this.waiter = r;
      });
    }
  }

  /** Gives up: pending input requests fail and the upstream request is cancelled. */
  abandon(reason: string): void {
    for (const e of this.asked.values()) this.router.response(this.session, { jsonrpc: '2.0', id: e.gid, error: { code: RPC.internalError, message: reason } });
    this.asked.clear();
    this.router.release(this.session);
  }

  private settle(final: JsonRpcResponse | 'cancelled'): void {
    this.final = final;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private onMessage(m: JsonRpcMessage): boolean {
    if (!('method' in m) || !('id' in m)) return this.responder?.send(m) ?? false;
    // A request from the server: the router registered it before handing it here, so it can be answered at once.
    const params = isObject(m.params) ? m.params : undefined;
    const missing = missingCapabilities(m.method, params, this.declared);
    if (!this.allowInput || missing) {
      const why = missing ? `the client did not declare ${Object.keys(missing).join(', ')}` : `the client's request cannot carry input requests`;
      queueMicrotask(() => this.router.response(this.session, { jsonrpc: '2.0', id: m.id, error: { code: RPC.methodNotFound, message: `${m.method} is unavailable: ${why}` } }));
      if (missing && this.allowInput) {
        this.missing = missing;
        this.wake();
      }
      return true;
    }
    this.asked.set(`input-${++this.seq}`, { gid: m.id, method: m.method, ...(params ? { params } : {}) });
    this.wake();
    return true;
  }
}

/** What a retry must match to resume a parked exchange (MRTR "Server Requirements": principal, request identity). */
export interface Binding {
  workspace: string;
  sub: string;
  method: string;
  /** The tool or prompt name / resource URI and the arguments, serialized. */
  target: string;
}

export interface InputBridgeOptions {
  /** How long a parked exchange waits for the client's retry. */
  ttlMs: number;
  maxParked: number;
}

/** Parked exchanges by `requestState`. The token is a random handle; the state itself never leaves the gateway. */
export function createInputBridge(opts: InputBridgeOptions) {
  const parked = new Map<string, { exchange: Exchange; binding: Binding; timer: NodeJS.Timeout }>();
  const same = (a: Binding, b: Binding) => a.workspace === b.workspace && a.sub === b.sub && a.method === b.method && a.target === b.target;
  return {
    /** Parks an exchange waiting for input; returns its `requestState`, or undefined when too many are parked. */
    park(exchange: Exchange, binding: Binding): string | undefined {
      if (parked.size >= opts.maxParked) return undefined;
      exchange.attach(undefined);
      const token = randomBytes(24).toString('base64url');
      const timer = setTimeout(() => {
        parked.delete(token);
        exchange.abandon('the client did not retry with the requested input in time');
      }, opts.ttlMs);
      timer.unref();
      parked.set(token, { exchange, binding, timer });
      return token;
    },
    /** The exchange a retry would resume, left parked (a retry refused before it resumes anything can be sent again). */
    peek(token: string, binding: Binding): Exchange | undefined {
      const p = parked.get(token);
      return p && same(p.binding, binding) ? p.exchange : undefined;
    },
    /** The exchange a retry resumes; a token presented by another user or for another request resumes nothing. */
    take(token: string, binding: Binding): Exchange | undefined {
      const p = parked.get(token);
      if (!p || !same(p.binding, binding)) return undefined;
      parked.delete(token);
      clearTimeout(p.timer);
      return p.exchange;
    },
    get size(): number {
      return parked.size;
    },
  };
}

export type InputBridge = ReturnType<typeof createInputBridge>;
