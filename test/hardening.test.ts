// Each hardening property shown by behaviour inside a container the gateway started, next to the same probe
// in a container from the same image with Docker's defaults, so that the difference is the proof.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { PROBE_PACKAGE, startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';

const WS = 'it-hardening';
const CANARY = 'gateway-canary-7f3a';

interface Attempt {
  ok: boolean;
  error?: string;
  value?: unknown;
}
interface Report {
  uid: number;
  gid: number;
  capEff: string;
  capPrm: string;
  capBnd: string;
  noNewPrivs: string;
  seccomp: string;
  writeRoot: Attempt;
  writeUsr: Attempt;
  writeWorkspace: Attempt;
  workspaceStat: Attempt;
  writeTmp: Attempt;
  execTmp: Attempt;
  interfaces: string[];
  env: Record<string, string>;
  nofile: Attempt;
  fork?: { started: number; error: string | null };
}

let gw: TestGateway;
let owner: string;
let hardened: Report;
let unhardened: Report;
let forkHardened: { started: number; error: string | null };

async function callTool(name: string, args: Record<string, unknown> = {}): Promise<string> {
  const conn = gw.gateway.manager.connection(WS, 'probe');
  if (!conn) throw new Error('probe is not running');
  const r = (await conn.request('tools/call', { name, arguments: args }, 60_000)) as { content: { text: string }[] };
  return r.content[0]!.text;
}

/** Runs the same image with Docker's defaults (root, writable, default capabilities, a network). */
async function runUnhardened(image: string): Promise<Report> {
  const network = await docker.createNetwork({ Name: 'mcpx-it-hardening-plain', Internal: true, Labels: { 'mcpx.managed': 'true', 'mcpx.test': 'hardening' } });
  const container = await docker.createContainer({
    Image: image,
    User: '0:0',
    Cmd: ['--report'],
    Env: ['PROBE_FORK_MAX=100'],
    Labels: { 'mcpx.managed': 'true', 'mcpx.test': 'hardening' },
    HostConfig: { NetworkMode: network.id, Tmpfs: {} },
  });
  try {
    await container.start();
    await container.wait();
    const logs = (await container.logs({ stdout: true, stderr: false })).toString('utf8');
    const line = logs.split('\n').find((l) => l.includes('"uid"'));
    if (!line) throw new Error(`no report from the unhardened probe: ${logs}`);
    return JSON.parse(line.slice(line.indexOf('{'))) as Report;
  } finally {
    await container.remove({ force: true });
    await network.remove();
  }
}

beforeAll(async () => {
  process.env.MCPX_TEST_CANARY = CANARY;
  gw = await startTestGateway();
  owner = await gw.token('alice');
  const created = await gw.api('POST', '/api/v1/workspaces', owner, {
    name: WS,
    servers: [{ name: 'probe', package: PROBE_PACKAGE, env: { PROBE_MODE: 'mcp' } }],
  });
  expect(created.status).toBe(201);
  const ws = await gw.waitStatus(WS, owner, ['ready']);
  hardened = JSON.parse(await callTool('report')) as Report;
  forkHardened = JSON.parse(await callTool('fork_loop', { max: 200 })) as { started: number; error: string | null };
  const detail = await gw.api<{ servers: { image: string }[] }>('GET', `/api/v1/workspaces/${WS}`, owner);
  unhardened = await runUnhardened(detail.body.servers[0]!.image);
  expect(ws.status).toBe('ready');
});

afterAll(async () => {
  delete process.env.MCPX_TEST_CANARY;
  await gw?.remove(WS, owner).catch(() => undefined);
  await gw?.close();
});

describe('hardening, shown by behaviour', () => {
  it('runs as a non-root user', () => {
    expect(hardened.uid).toBe(10001);
    expect(hardened.gid).toBe(10001);
    expect(unhardened.uid).toBe(0);
  });

  it('has an empty capability set and no privilege escalation, under the default seccomp profile', () => {
    expect(hardened.capEff).toBe('0000000000000000');
    expect(hardened.capPrm).toBe('0000000000000000');
    expect(hardened.capBnd).toBe('0000000000000000');
    expect(hardened.noNewPrivs).toBe('1');
    expect(hardened.seccomp).toBe('2');
    expect(unhardened.capEff).not.toBe('0000000000000000');
    expect(unhardened.noNewPrivs).toBe('0');
  });

  it('has a read-only root filesystem and a writable /workspace owned by the server user', () => {
    expect(hardened.writeRoot).toMatchObject({ ok: false, error: 'EROFS' });
    expect(hardened.writeUsr).toMatchObject({ ok: false, error: 'EROFS' });
    expect(unhardened.writeRoot.ok).toBe(true);
    expect(hardened.writeWorkspace.ok).toBe(true);
    expect(hardened.workspaceStat.value).toEqual({ uid: 10001, mode: '750' });
  });

  it('cannot execute a file from /tmp', () => {
    expect(hardened.writeTmp.ok).toBe(true);
    expect(hardened.execTmp).toMatchObject({ ok: false, error: 'EACCES' });
    expect(unhardened.execTmp).toMatchObject({ ok: true, value: 'ran' });
  });

  it('stops a process loop at the pid limit', () => {
    expect(forkHardened.error).toBe('EAGAIN');
    expect(forkHardened.started).toBeLessThan(64);
    expect(forkHardened.started).toBeGreaterThan(0);
    expect(unhardened.fork).toEqual({ started: 100, error: null });
  });

  it('has no network interface but lo', () => {
    expect(hardened.interfaces).toEqual(['lo']);
    expect(unhardened.interfaces).toContain('eth0');
  });

  it('holds the nofile limit', () => {
    expect(String(hardened.nofile.value)).toMatch(/Max open files\s+1024\s+1024/);
  });

  it("sees exactly its own environment and nothing of the gateway's", () => {
    expect(process.env.MCPX_TEST_CANARY).toBe(CANARY);
    // HOSTNAME and HOME are set by the engine itself for every container; everything else is ours.
    expect(Object.keys(hardened.env).sort()).toEqual(['CONTAINER_ID', 'HOME', 'HOSTNAME', 'MCPX_API_ENDPOINT', 'PATH', 'PROBE_MODE', 'WORKSPACE_ID']);
    expect(JSON.stringify(hardened.env)).not.toContain(CANARY);
    expect(hardened.env).toMatchObject({ WORKSPACE_ID: WS, CONTAINER_ID: `mcpx-${WS}-probe`, PROBE_MODE: 'mcp', PATH: '/usr/local/bin:/usr/bin:/bin' });
  });
});
