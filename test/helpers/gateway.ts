// Test helpers: a gateway in this process or as a child process, tokens, API calls and bounded waiting.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { loadOrCreateSigningKey, signToken } from '../../src/auth/index.js';
import { loadGatewayConfig } from '../../src/config/index.js';
import { startGateway } from '../../src/main.js';
import type { Gateway } from '../../src/main.js';
import type { HibernationOptions, SupervisionOptions } from '../../src/workspaces/index.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const PROBE_PACKAGE = `file:${join(REPO, 'test/fixtures/probe-server')}`;
export const MALICIOUS_PACKAGE = `file:${join(REPO, 'test/fixtures/malicious-server')}`;

export function tempDir(prefix: string): string {
  // `mcpx-test-`: the suites' clean-up detaches loop devices of quota images under such folders only.
  return mkdtempSync(join(tmpdir(), `mcpx-test-${prefix}-`));
}

export async function tokenFor(dataDir: string, sub: string, admin = false): Promise<string> {
  return signToken(await loadOrCreateSigningKey(dataDir), { sub, admin, ttlSeconds: 3600 });
}

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export function apiClient(url: string) {
  return async function api<T = unknown>(method: string, path: string, token?: string, body?: unknown): Promise<ApiResult<T>> {
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}

/** Polls `check` until it returns a value other than undefined; bounded in time. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  dataDir: string;
  api: ReturnType<typeof apiClient>;
  token(sub: string, admin?: boolean): Promise<string>;
  /** Waits for a workspace to reach one of the statuses; returns its detail. */
  waitStatus(name: string, token: string, statuses: string[], timeoutMs?: number): Promise<WorkspaceDetail>;
  /** Deletes a workspace (if it exists) and waits until it is gone. */
  remove(name: string, token: string): Promise<void>;
  close(): Promise<void>;
}

export interface WorkspaceDetail {
  name: string;
  status: string;
  servers: { name: string; status: string; phase: string; container?: { id: string; name: string } }[];
}

export interface EventView {
  id: number;
  type: string;
  at: string;
  server?: string;
  detail?: Record<string, unknown>;
}

export async function startTestGateway(
  opts: { supervision?: Partial<SupervisionOptions>; hibernation?: Partial<HibernationOptions>; dataDir?: string; host?: string; port?: number; imageCacheTtlMs?: number } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? tempDir('gw');
  const loaded = loadGatewayConfig(
    { port: opts.port ?? 0, dataDir, ...(opts.host ? { host: opts.host } : {}), ...(opts.imageCacheTtlMs !== undefined ? { imageCacheTtlMs: opts.imageCacheTtlMs } : {}) },
    {},
  );
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const logger = pino({ level: process.env.MCPX_TEST_LOG ?? 'silent' }, pino.destination(2));
  const gateway = await startGateway(loaded.config, { logger, ...(opts.supervision ? { supervision: opts.supervision } : {}), ...(opts.hibernation ? { hibernation: opts.hibernation } : {}) });
  const api = apiClient(gateway.url);
  const t: TestGateway = {
    gateway,
    url: gateway.url,
    dataDir: gateway.dataDir,
    api,
    token: (sub, admin = false) => tokenFor(gateway.dataDir, sub, admin),
    waitStatus: (name, token, statuses, timeoutMs = 240_000) =>
      waitFor(`workspace ${name} to be ${statuses.join('|')}`, async () => {
        const r = await api<WorkspaceDetail>('GET', `/api/v1/workspaces/${name}`, token);
        if (r.status !== 200) throw new Error(`GET ${name}: ${r.status} ${JSON.stringify(r.body)}`);
        if (r.body.status === 'failed' && !statuses.includes('failed')) throw new Error(`workspace ${name} failed: ${JSON.stringify(r.body.servers)}`);
        return statuses.includes(r.body.status) ? r.body : undefined;
      }, timeoutMs),
    async remove(name, token) {
      const r = await api('DELETE', `/api/v1/workspaces/${name}`, token);
      if (r.status === 404) return;
      await waitFor(`workspace ${name} to be deleted`, async () => ((await api('GET', `/api/v1/workspaces/${name}`, token)).status === 404 ? true : undefined), 60_000);
    },
    async close() {
      await gateway.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export interface GatewayProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stderr(): string;
}

/** Runs `mcpx serve` as a child process (the built CLI) and waits for its listening line. */
export async function spawnGateway(dataDir: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [join(REPO, 'bin/mcpx.js'), 'serve', '--port', '0', '--data', dataDir], {
    env: { ...process.env, MCPX_LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`gateway did not start: ${err.slice(-2000)}`)), 120_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /mcpx listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`gateway exited with ${code}: ${err.slice(-2000)}`));
    });
  });
  return { child, url, stderr: () => err };
}

/** Runs the built CLI and collects its output. */
export function runCli(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [join(REPO, 'bin/mcpx.js'), ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
