// JSON-RPC 2.0 message shapes and the error codes the gateway uses.
export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}
export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  result?: unknown;
  error?: JsonRpcErrorObject;
}
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export const RPC = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
} as const;

/** A JSON-RPC error that may cross the wire: its message is written for the client. */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
  toJSON(): JsonRpcErrorObject {
    return { code: this.code, message: this.message, ...(this.data === undefined ? {} : { data: this.data }) };
  }
}

export type Classified =
  | { kind: 'request'; msg: JsonRpcRequest }
  | { kind: 'notification'; msg: JsonRpcNotification }
  | { kind: 'response'; msg: JsonRpcResponse }
  | { kind: 'invalid'; reason: string; id?: JsonRpcId | null };

const isId = (v: unknown): v is JsonRpcId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Classifies a parsed value as one JSON-RPC message, or says why it is not one. */
export function classify(v: unknown): Classified {
  if (Array.isArray(v)) return { kind: 'invalid', reason: 'JSON-RPC batches are not supported' };
  if (!v || typeof v !== 'object') return { kind: 'invalid', reason: 'a JSON-RPC message must be an object' };
  const m = v as Record<string, unknown>;
  const id = isId(m.id) ? m.id : undefined;
  if (m.jsonrpc !== '2.0') return { kind: 'invalid', reason: 'jsonrpc must be "2.0"', id };
  if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params))) {
    return { kind: 'invalid', reason: 'params must be an object', id };
  }
  if (typeof m.method === 'string') {
    if (m.method.length === 0) return { kind: 'invalid', reason: 'method must not be empty', id };
    if ('id' in m) {
      if (id === undefined) return { kind: 'invalid', reason: 'id must be a string or a number' };
      return { kind: 'request', msg: m as unknown as JsonRpcRequest };
    }
    return { kind: 'notification', msg: m as unknown as JsonRpcNotification };
  }
  if ('method' in m) return { kind: 'invalid', reason: 'method must be a string', id };
  if ('result' in m || 'error' in m) {
    if (!('id' in m) || (id === undefined && m.id !== null)) return { kind: 'invalid', reason: 'a response needs an id' };
    return { kind: 'response', msg: m as unknown as JsonRpcResponse };
  }
  return { kind: 'invalid', reason: 'neither a request, a notification nor a response', id };
}
