import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEgressProxy } from './egress-proxy.js';
import type { EgressProxy, EgressProxyOptions, EgressRecord } from './egress-proxy.js';

let target: Server;
let targetPort: number;
let other: Server;
let otherPort: number;
const proxies: EgressProxy[] = [];

function listen(body: string): Promise<Server> {
  const s = createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`${body} ${req.method} ${req.url} ${req.headers.host} ${n}`));
  });
  return new Promise((ok) => s.listen(0, '127.0.0.1', () => ok(s)));
}

async function proxy(allowlist: string[], extra: Partial<EgressProxyOptions> = {}): Promise<{ port: number; records: EgressRecord[] }> {
  const records: EgressRecord[] = [];
  const p = await startEgressProxy({ allowlist, host: '127.0.0.1', port: 0, record: (r) => records.push(r), ...extra });
  proxies.push(p);
  return { port: p.address.port, records };
}

/** Sends raw bytes to the proxy and returns everything it answers until it closes (bounded). */
function raw(port: number, text: string, closeAfterMs = 1500): Promise<string> {
  return new Promise((ok, fail) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString()));
    s.on('error', fail);
    s.on('close', () => ok(out));
    s.write(text);
    setTimeout(() => s.destroy(), closeAfterMs);
  });
}

const waitRecords = async (records: EgressRecord[], n: number) => {
  for (let i = 0; i < 100 && records.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  return records;
};

beforeAll(async () => {
  target = await listen('target');
  targetPort = (target.address() as AddressInfo).port;
  other = await listen('other');
  otherPort = (other.address() as AddressInfo).port;
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(() => {
  target.close();
  other.close();
});

describe('egress proxy', () => {
  it('tunnels CONNECT to an allowlisted destination and records it with its bytes', async () => {
    const { port, records } = await proxy([`127.0.0.1:${targetPort}`]);
    const out = await raw(port, `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nhost: x\r\n\r\nGET /t HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    expect(out).toContain('target GET /t t 0');
    const [r] = await waitRecords(records, 1);
    expect(r).toMatchObject({ verdict: 'allowed', destination: `127.0.0.1:${targetPort}`, address: '127.0.0.1', method: 'CONNECT' });
    expect(r!.bytesOut).toBeGreaterThan(20);
    expect(r!.bytesIn).toBeGreaterThan(50);
  });

  it('refuses CONNECT to a destination off the allowlist, which is reachable without the proxy', async () => {
    const { port, records } = await proxy([`127.0.0.1:${targetPort}`]);
    const out = await raw(port, `CONNECT 127.0.0.1:${otherPort} HTTP/1.1\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toContain('not on the allowlist');
    expect(records).toEqual([expect.objectContaining({ verdict: 'denied', destination: `127.0.0.1:${otherPort}`, reason: 'not on the allowlist', bytesIn: 0 })]);
    // Unprotected: the very same destination answers a direct request.
    expect(await (await fetch(`http://127.0.0.1:${otherPort}/direct`)).text()).toContain('other GET /direct');
  });

  it('forwards absolute-form HTTP to an allowlisted destination and refuses others', async () => {
    const { port, records } = await proxy([`127.0.0.1:${targetPort}`]);
    const ok = await raw(port, `POST http://127.0.0.1:${targetPort}/p?q=1 HTTP/1.1\r\nhost: 127.0.0.1:${targetPort}\r\nproxy-authorization: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello`);
    expect(ok).toMatch(/^HTTP\/1\.1 200/);
    expect(ok).toContain(`target POST /p?q=1 127.0.0.1:${targetPort} 5`);
    const denied = await raw(port, `GET http://127.0.0.1:${otherPort}/ HTTP/1.1\r\nhost: x\r\n\r\n`);
    expect(denied).toMatch(/^HTTP\/1\.1 403/);
    const origin = await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(origin).toMatch(/^HTTP\/1\.1 400/);
    await waitRecords(records, 3);
    expect(records.map((r) => r.verdict)).toEqual(['allowed', 'denied', 'denied']);
    expect(records[0]).toMatchObject({ method: 'POST', bytesOut: 5 });
  });

  it('refuses an allowlisted name that resolves to loopback (DNS rebinding), and one that does not resolve', async () => {
    const lookup = (host: string) =>
      host === 'rebind.test' ? Promise.resolve(['127.0.0.1']) : Promise.reject(Object.assign(new Error('no'), { code: 'ENOTFOUND' }));
    const { port, records } = await proxy([`rebind.test:${targetPort}`, `nowhere.test:443`], { lookup });
    expect(await raw(port, `CONNECT rebind.test:${targetPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*local or private address/);
    expect(await raw(port, 'CONNECT nowhere.test:443 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 502[^]*cannot resolve/);
    expect(records.map((r) => r.verdict)).toEqual(['denied', 'denied']);
  });

  it("refuses the gateway's own ports", async () => {
    const { port } = await proxy([`127.0.0.1:${targetPort}`], { protectedPorts: [targetPort] });
    expect(await raw(port, `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*own port/);
  });

  it('bounds its connections and its records', async () => {
    const { port, records } = await proxy([], { maxConnections: 2, maxRecordsPerMinute: 2 });
    const held = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    await new Promise((r) => setTimeout(r, 100));
    const third = await raw(port, `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\n\r\n`, 1000);
    expect(third).toBe('');
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 4; i++) expect(await raw(port, `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\n\r\n`)).toMatch(/403/);
    expect(records).toHaveLength(2);
  });
});
