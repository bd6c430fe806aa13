// Helpers for the isolation suites: calling the malicious server's tools, running the same attempt in a container
// mcpx did not harden, small servers on the host, and looking at loop devices and firewall rules.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { docker } from './docker.js';
import type { TestGateway } from './gateway.js';

export const TEST_LABELS = { 'mcpx.managed': 'true', 'mcpx.test': 'isolation' };

/** Calls a tool of a running server through the gateway's upstream connection; returns the parsed JSON result. */
export async function attempt<T = Record<string, unknown>>(gw: TestGateway, ws: string, server: string, tool: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
  const conn = gw.gateway.manager.connection(ws, server);
  if (!conn) throw new Error(`${ws}/${server} is not running`);
  const r = (await conn.request('tools/call', { name: tool, arguments: args }, timeoutMs)) as { content: { text: string }[] };
  const text = r.content[0]!.text;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as unknown as T;
  }
}

/** Runs one attempt of the malicious server in a container with Docker's defaults (root, capabilities, writable). */
export async function attemptUnhardened<T = Record<string, unknown>>(
  image: string,
  tool: string,
  args: Record<string, unknown> = {},
  host: Partial<Docker.HostConfig> = {},
): Promise<T> {
  const container = await docker.createContainer({
    Image: image,
    User: '0:0',
    Cmd: ['--attempt', tool, JSON.stringify(args)],
    Labels: TEST_LABELS,
    HostConfig: { NetworkMode: 'none', ...host },
  });
  try {
    await container.start();
    await container.wait();
    const logs = stdoutOf(await container.logs({ stdout: true, stderr: false }));
    const line = logs.trim().split('\n').at(-1);
    if (!line) throw new Error(`no result from the unhardened attempt: ${logs}`);
    return JSON.parse(line) as T;
  } finally {
    await container.remove({ force: true });
  }
}

/** The stdout payload of Docker's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, size). */
function stdoutOf(raw: Buffer): string {
  const parts: Buffer[] = [];
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    if (raw[i] === 1) parts.push(raw.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** An internal network like the one a careless operator would use: Docker's isolation only. */
export async function plainNetwork(name: string): Promise<{ id: string; gateway: string; remove(): Promise<void> }> {
  const n = await docker.createNetwork({ Name: name, Internal: true, Labels: TEST_LABELS });
  const info = (await n.inspect()) as { IPAM: { Config: { Gateway: string }[] } };
  return { id: n.id, gateway: info.IPAM.Config[0]!.Gateway, remove: () => n.remove() };
}

/** A small HTTP server on the host that says who it is. */
export async function hostServer(body: string, host: string): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => res.end(`${body} ${req.method} ${req.url}\n`));
  await new Promise<void>((ok) => server.listen(0, host, () => ok()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

export function iptablesRules(): string {
  return ['INPUT', 'FORWARD'].map((c) => execFileSync('iptables', ['-w', '5', '-S', `MCPX-${c}`], { encoding: 'utf8' })).join('');
}

export function loopDevicesFor(image: string): string[] {
  const out = execFileSync('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(image))
    .map((l) => l.split(' ')[0]!);
}
