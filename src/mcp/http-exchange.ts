// HTTP plumbing shared by both MCP eras on /mcp/{workspace}: the bounded body reader, JSON-RPC error answers,
// and the answer to one POSTed request (plain JSON unless something must be streamed first, then SSE).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from './json-rpc.js';
import type { ClientSink } from './workspace-router.js';

/** Text/event-stream writer for one HTTP response. */
export class SseStream implements ClientSink {
  private open = true;
  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string> = {},
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', ...headers });
    res.flushHeaders();
    res.on('close', () => {
      this.open = false;
    });
  }
  get isOpen(): boolean {
    return this.open;
  }
  send(message: JsonRpcMessage): boolean {
    if (!this.open) return false;
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return true;
  }
  /** An SSE comment: carries nothing, keeps intermediaries from closing a quiet stream. */
  keepAlive(): void {
    if (this.open) this.res.write(':\n\n');
  }
  end(): void {
    if (!this.open) return;
    this.open = false;
    this.res.end();
  }
}

/** The answer to one POSTed request: plain JSON unless something must be sent before it, then SSE. */
export class PostResponder implements ClientSink {
  private sse: SseStream | undefined;
  private done = false;
  /** True once anything was sent: the status line is then decided. */
  get started(): boolean {
    return this.sse !== undefined || this.done;
  }
  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
    private readonly sseHeaders: Record<string, string> = {},
  ) {}
  send(message: JsonRpcMessage): boolean {
    if (this.done || this.res.destroyed) return false;
    this.sse ??= new SseStream(this.res, { ...this.headers, ...this.sseHeaders });
    return this.sse.send(message);
  }
  /** Ends the exchange with the response (or, for a cancelled request, with nothing); `status` applies to JSON only. */
  finish(response: JsonRpcResponse | undefined, status = 200): void {
    if (this.done) return;
    this.done = true;
    if (this.sse) {
      if (response) this.sse.send(response);
      this.sse.end();
      return;
    }
    if (this.res.destroyed) return;
    if (!response) {
      this.res.writeHead(204, this.headers).end();
      return;
    }
    const body = JSON.stringify(response);
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...this.headers });
    this.res.end(body);
  }
}

export function writeRpcError(
  res: ServerResponse,
  status: number,
  error: { code: number; message: string; data?: unknown },
  id: JsonRpcId | null = null,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify({ jsonrpc: '2.0', id, error });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export const accepts = (req: IncomingMessage, type: string): boolean => {
  const accept = req.headers.accept ?? '';
  return accept.includes(type) || accept.includes('*/*');
};

/** Reads a request body up to `maxBytes`; a larger one is drained and reported, never buffered. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > maxBytes) {
      req.resume();
      resolve('too_large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > maxBytes) {
        over = true;
        resolve('too_large');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8, then JSON; the reason is written for the client. */
export function parseJsonBody(raw: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  let text: string;
  try {
    text = decoder.decode(raw);
  } catch {
    return { ok: false, reason: 'Parse error: the body is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'Parse error: the body is not valid JSON' };
  }
}
