// A workspace's egress proxy: HTTP CONNECT and absolute-form HTTP, nothing else. Every connection is checked against
// the allowlist twice (the destination as asked, then the address actually connected) and recorded with its verdict.
import { promises as dns } from 'node:dns';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect as netConnect, isIP } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decideAddress, decideDestination, parseAllowlist, parseDestination } from '../policy/egress-allowlist.js';
import type { AllowEntry } from '../policy/egress-allowlist.js';

export interface EgressRecord {
  verdict: 'allowed' | 'denied';
  /** The destination as the client asked for it: host:port. */
  destination: string;
  /** The address the proxy connected to (allowed connections only). */
  address?: string;
  method: string;
  reason?: string;
  /** Bytes from the workspace to the destination, and back. */
  bytesOut: number;
  bytesIn: number;
  durationMs: number;
  /** The workspace address the connection came from. */
  client?: string;
  /** Records dropped by the rate limit since the last one that was kept. */
  suppressed?: number;
}

export interface EgressProxyOptions {
  allowlist: readonly string[];
  host: string;
  port: number;
  /** Ports the gateway serves on: refused on any local address even when allowlisted. */
  protectedPorts?: readonly number[];
  /** Resolves a name to its addresses; the default is the system resolver. */
  lookup?: (host: string) => Promise<string[]>;
  record(r: EgressRecord): void;
  maxConnections?: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Records kept per minute; a client hammering the proxy cannot flood the event log. */
  maxRecordsPerMinute?: number;
}

export interface EgressProxy {
  readonly address: AddressInfo;
  setAllowlist(entries: readonly string[]): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

async function systemLookup(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const r = await dns.lookup(host, { all: true, verbatim: true });
  return r.map((a) => a.address);
}

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  let allowlist: AllowEntry[] = parseAllowlist(opts.allowlist);
  const lookup = opts.lookup ?? systemLookup;
  const protectedPorts = opts.protectedPorts ?? [];
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 120_000;
  const maxRecords = opts.maxRecordsPerMinute ?? 240;
  const sockets = new Set<Duplex>();

  let windowStart = Date.now();
  let recordsInWindow = 0;
  let suppressed = 0;
  const record = (r: EgressRecord) => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      windowStart = now;
      recordsInWindow = 0;
    }
    if (++recordsInWindow > maxRecords) {
      suppressed++;
      return;
    }
    opts.record(suppressed > 0 ? { ...r, suppressed } : r);
    suppressed = 0;
  };

  /** Resolves and checks: the first address that passes both checks, or the reason none did. Never throws. */
  const resolve = async (host: string, port: number): Promise<{ ok: true; address: string } | { ok: false; reason: string; status: number }> => {
    const asked = decideDestination(allowlist, host, port);
    if (!asked.ok) return { ok: false, reason: asked.reason, status: 403 };
    let addresses: string[];
    try {
      addresses = await lookup(asked.entry.host);
    } catch (err) {
      return { ok: false, reason: `cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, status: 502 };
    }
    let reason = 'the destination did not resolve to an address';
    for (const a of addresses) {
      const d = decideAddress(asked.entry, a, protectedPorts);
      if (d.ok) return { ok: true, address: a };
      reason = d.reason;
    }
    return { ok: false, reason, status: 403 };
  };

  const track = (s: Duplex) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  const onConnect = (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const started = Date.now();
    const from = req.socket.remoteAddress;
    const target = req.url ?? '';
    track(client);
    client.on('error', () => client.destroy());
    const refuse = (status: number, reason: string) => {
      record({ verdict: 'denied', destination: target.slice(0, 300), method: 'CONNECT', reason, bytesOut: 0, bytesIn: 0, durationMs: Date.now() - started, ...(from ? { client: from } : {}) });
      const text = status === 403 ? 'Forbidden' : 'Bad Gateway';
      client.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nmcpx egress: ${reason}\n`);
    };
    const dest = parseDestination(target);
    if (!dest) {
      refuse(403, 'not a host:port destination');
      return;
    }
    void resolve(dest.host, dest.port).then((r) => {
      if (!r.ok) {
        refuse(r.status, r.reason);
        return;
      }
      const upstream = netConnect({ host: r.address, port: dest.port, timeout: connectTimeoutMs });
      track(upstream);
      let done = false;
      const finish = (reason?: string) => {
        if (done) return;
        done = true;
        client.destroy();
        upstream.destroy();
        record({
          verdict: 'allowed',
          destination: `${dest.host}:${dest.port}`,
          address: r.address,
          method: 'CONNECT',
          ...(reason ? { reason } : {}),
          bytesOut: upstream.bytesWritten,
          bytesIn: upstream.bytesRead,
          durationMs: Date.now() - started,
          ...(from ? { client: from } : {}),
        });
      };
      upstream.once('connect', () => {
        // Defence in depth: the socket must be connected to the address that was checked.
        if (upstream.remoteAddress !== r.address) {
          done = true;
          upstream.destroy();
          refuse(403, `connected to an unexpected address (${upstream.remoteAddress ?? 'none'})`);
          return;
        }
        upstream.setTimeout(idleTimeoutMs);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.once('timeout', () => finish('timed out'));
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (!upstream.remoteAddress || upstream.bytesRead + upstream.bytesWritten === 0) {
          if (!done) {
            done = true;
            refuse(502, `cannot connect (${err.code ?? 'error'})`);
          }
          return;
        }
        finish(err.code ?? 'error');
      });
      upstream.once('close', () => finish());
      client.once('close', () => finish());
    });
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const from = req.socket.remoteAddress;
    const client = from ? { client: from } : {};
    const method = req.method ?? 'GET';
    let url: URL | undefined;
    try {
      url = /^http:\/\//i.test(req.url ?? '') ? new URL(req.url!) : undefined;
    } catch {
      url = undefined;
    }
    const refuse = (status: number, reason: string, destination: string) => {
      record({ verdict: 'denied', destination, method, reason, bytesOut: 0, bytesIn: 0, durationMs: Date.now() - started, ...client });
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`mcpx egress: ${reason}\n`);
    };
    if (!url) {
      refuse(400, 'only absolute-form http:// requests and CONNECT are proxied', (req.url ?? '').slice(0, 300));
      return;
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port ? Number(url.port) : 80;
    const destination = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    void resolve(host, port).then((r) => {
      if (!r.ok) {
        refuse(r.status, r.reason, destination);
        return;
      }
      const headers: IncomingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
      let bytesOut = 0;
      let bytesIn = 0;
      let recorded = false;
      const finish = (reason?: string) => {
        if (recorded) return;
        recorded = true;
        record({ verdict: 'allowed', destination, address: r.address, method, ...(reason ? { reason } : {}), bytesOut, bytesIn, durationMs: Date.now() - started, ...client });
      };
      const upstream = httpRequest(
        { host: r.address, port, method, path: `${url.pathname}${url.search}`, headers, setHost: false, timeout: connectTimeoutMs, agent: false },
        (up) => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
          res.writeHead(up.statusCode ?? 502, out);
          up.on('data', (c: Buffer) => (bytesIn += c.length));
          up.pipe(res);
          up.once('end', () => finish());
          up.once('error', () => finish('upstream error'));
        },
      );
      upstream.setTimeout(idleTimeoutMs);
      upstream.once('timeout', () => upstream.destroy(new Error('timed out')));
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (!res.headersSent) {
          recorded = true;
          refuse(502, `cannot connect (${err.code ?? err.message})`, destination);
        } else {
          res.destroy();
          finish(err.code ?? 'error');
        }
      });
      req.on('data', (c: Buffer) => (bytesOut += c.length));
      req.pipe(upstream);
      res.once('close', () => {
        if (!recorded) {
          upstream.destroy();
          finish('client closed');
        }
      });
    });
  };

  const server: Server = createServer({ requestTimeout: 60_000, headersTimeout: 15_000, maxHeaderSize: 16_384 }, onRequest);
  server.maxConnections = opts.maxConnections ?? 64;
  server.on('connect', onConnect);
  server.on('connection', (s: Socket) => {
    track(s);
    s.setTimeout(idleTimeoutMs, () => s.destroy());
  });
  server.on('clientError', (_err, socket: Duplex) => socket.destroy());
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    address,
    setAllowlist(entries) {
      allowlist = parseAllowlist(entries);
    },
    close() {
      return new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
