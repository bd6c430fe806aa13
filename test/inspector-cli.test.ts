// A real command-line client against the gateway: @modelcontextprotocol/inspector-cli, as a child process, lists
// and calls server-everything's tools through /mcp/{workspace} over Streamable HTTP with a bearer token.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const WS = 'it-inspector-cli';

/** The CLI's own bin, found through its package.json. */
function inspectorBin(): string {
  const pkgJson = createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin['mcp-inspector-cli'];
  if (!bin) throw new Error('the inspector-cli package declares no "mcp-inspector-cli" bin');
  return join(dirname(pkgJson), bin);
}

/**
 * Runs `mcp-inspector-cli --cli <args>`. Its launcher starts `node` from PATH, so this Node comes first there. It
 * finds its own package.json by testing "../package.json" against the working directory, so it runs from its own
 * folder (from anywhere else, 1.0.3 fails with "Cannot find module .../@modelcontextprotocol/package.json").
 */
function inspector(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const bin = inspectorBin();
    const child = spawn(process.execPath, [bin, '--cli', ...args], {
      cwd: dirname(bin),
      env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let gw: TestGateway;
let owner: string;
let endpoint: string;

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('inspector-owner');
  const created = await gw.api('POST', '/api/v1/workspaces', owner, {
    name: WS,
    servers: [{ name: 'everything', package: '@modelcontextprotocol/server-everything', args: ['stdio'] }],
  });
  if (created.status !== 201) throw new Error(`create ${WS}: ${created.status} ${JSON.stringify(created.body)}`);
  await gw.waitStatus(WS, owner, ['ready']);
  endpoint = `${gw.url}/mcp/${WS}`;
});

afterAll(async () => {
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
});

describe('inspector-cli through the gateway', () => {
  // The URL does not end in /mcp, so the CLI would guess SSE: the transport is named explicitly.
  const common = () => [endpoint, '--transport', 'http', '--header', `Authorization: Bearer ${owner}`];

  it('lists the tools of server-everything, echo among them', async () => {
    const r = await inspector([...common(), '--method', 'tools/list']);
    expect(r.code, r.stderr).toBe(0);
    const { tools } = JSON.parse(r.stdout) as { tools: { name: string }[] };
    expect(tools.map((t) => t.name)).toContain('echo');
  });

  it('calls echo and prints the echoed message', async () => {
    const message = `through mcpx ${randomUUID()}`;
    const r = await inspector([...common(), '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', `message=${message}`]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { content: { type: string; text?: string }[]; isError?: boolean };
    expect(result.isError ?? false).toBe(false);
    expect(result.content.find((c) => c.type === 'text')?.text).toContain(message);
  });

  it('is refused without the bearer token', async () => {
    const r = await inspector([endpoint, '--transport', 'http', '--method', 'tools/list']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('"tools"');
    expect(r.stderr).toMatch(/401|Unauthorized/);
  });
});
