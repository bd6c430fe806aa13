// The HTTP floor: the least a Streamable HTTP hop can cost with this client. A node:http endpoint in this process
// that answers initialize, tools/list and the echo tool itself, with no auth, no session checks and no upstream; it
// keeps the client's GET event stream open, as the real endpoints do.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

function reply(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const streams = new Set<ServerResponse>();

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    streams.add(res);
    res.on('close', () => streams.delete(res));
    return;
  }
  if (req.method === 'DELETE') return reply(res, 200);
  const body = await new Promise<string>((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
  const msg = JSON.parse(body) as { id?: string | number; method?: string; params?: Record<string, unknown> };
  if (msg.id === undefined) return reply(res, 202);
  const params = msg.params ?? {};
  switch (msg.method) {
    case 'initialize':
      return reply(
        res,
        200,
        { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'http-floor', version: '0' } } },
        { 'mcp-session-id': 'floor' },
      );
    case 'tools/list':
      return reply(res, 200, {
        jsonrpc: '2.0',
        id: msg.id,
        result: { tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }] },
      });
    case 'tools/call': {
      const args = (params.arguments ?? {}) as { message?: unknown };
      return reply(res, 200, { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: `Echo: ${String(args.message)}` }] } });
    }
    default:
      return reply(res, 200, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } });
  }
}

export async function startHttpFloor(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    handle(req, res).catch(() => reply(res, 500));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise<void>((ok) => {
        for (const r of streams) r.end();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
