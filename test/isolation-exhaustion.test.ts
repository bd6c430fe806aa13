// Resource exhaustion stays inside: a server that eats memory is killed by its limit and restarted (with events), a
// fork bomb stops at the pid limit, a CPU spinner is held to its share. Throughout, a neighbour workspace and the
// gateway keep answering, measured by a bounded loop of calls during each attack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALICIOUS_PACKAGE, startTestGateway, waitFor } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';
import { attempt, attemptUnhardened } from './helpers/isolation.js';

const EVIL = 'it-iso-exh-evil';
const GOOD = 'it-iso-exh-good';

let gw: TestGateway;
let owner: string;
let image: string;

/** Calls the neighbour's echo tool and /healthz every 100 ms until stopped (at most 60 s); reports failures and the slowest. */
function watchNeighbour() {
  let stop = false;
  const failures: string[] = [];
  let calls = 0;
  let slowestMs = 0;
  const done = (async () => {
    const deadline = Date.now() + 60_000;
    while (!stop && Date.now() < deadline) {
      const t0 = performance.now();
      try {
        const echoed = await attempt<string>(gw, GOOD, 'svc', 'echo', { message: `ping ${calls}` }, 5_000);
        if (echoed !== `ping ${calls}`) failures.push(`echo answered ${JSON.stringify(echoed)}`);
        const health = await fetch(`${gw.url}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (health.status !== 200) failures.push(`healthz ${health.status}`);
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
      slowestMs = Math.max(slowestMs, performance.now() - t0);
      calls++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { calls, failures, slowestMs };
    },
  };
}

beforeAll(async () => {
  gw = await startTestGateway({ supervision: { backoffBaseMs: 200, backoffMaxMs: 1_000 } });
  owner = await gw.token('alice');
  const evil = await gw.api('POST', '/api/v1/workspaces', owner, {
    name: EVIL,
    servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }],
    resources: { memory: '96m', pids: 32, cpus: 0.5 },
  });
  expect(evil.status).toBe(201);
  const good = await gw.api('POST', '/api/v1/workspaces', owner, { name: GOOD, servers: [{ name: 'svc', package: MALICIOUS_PACKAGE }] });
  expect(good.status).toBe(201);
  await gw.waitStatus(EVIL, owner, ['ready']);
  await gw.waitStatus(GOOD, owner, ['ready']);
  image = (await gw.api<{ servers: { image: string }[] }>('GET', `/api/v1/workspaces/${EVIL}`, owner)).body.servers[0]!.image;
});

afterAll(async () => {
  for (const name of [EVIL, GOOD]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
});

const events = async () => (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${EVIL}/events`, owner)).body;

describe('resource exhaustion stays inside', () => {
  it('kills a server that eats memory at its limit and restarts it, with events', async () => {
    const watch = watchNeighbour();
    const before = (await events()).filter((e) => e.type === 'server_initialized').length;
    // The call never answers: the kernel kills the process first.
    await expect(attempt(gw, EVIL, 'evil', 'eat_memory', { mb: 2048 }, 30_000)).rejects.toThrow();
    const exited = await waitFor('an OOM exit event', async () => (await events()).find((e) => e.type === 'container_exited'), 30_000);
    expect(exited.detail).toMatchObject({ oomKilled: true, exitCode: 137 });
    await waitFor('the restart', async () => ((await events()).filter((e) => e.type === 'server_initialized').length > before ? true : undefined), 30_000);
    expect((await events()).some((e) => e.type === 'container_restarted')).toBe(true);
    expect(await attempt(gw, EVIL, 'evil', 'echo', { message: 'back' })).toBe('back');
    const seen = await watch.stop();
    expect(seen.failures).toEqual([]);
    expect(seen.calls).toBeGreaterThan(3);
    expect(seen.slowestMs).toBeLessThan(2_000);
  });

  it('stops a fork bomb at the pid limit (unhardened: it runs to its own bound)', async () => {
    const watch = watchNeighbour();
    const bomb = await attempt<{ started: number; error: string | null }>(gw, EVIL, 'evil', 'fork_bomb', { max: 500 });
    expect(bomb.error).toBe('EAGAIN');
    expect(bomb.started).toBeLessThan(32);
    expect(bomb.started).toBeGreaterThan(0);
    const seen = await watch.stop();
    expect(seen.failures).toEqual([]);
    expect(seen.slowestMs).toBeLessThan(2_000);
    const plain = await attemptUnhardened<{ started: number; error: string | null }>(image, 'fork_bomb', { max: 100 });
    expect(plain).toEqual({ started: 100, error: null });
    expect(await attempt(gw, EVIL, 'evil', 'echo', { message: 'alive' })).toBe('alive');
  });

  it('holds a CPU spinner to its share (unhardened: it takes more than a core)', async () => {
    const watch = watchNeighbour();
    const spin = await attempt<{ wallMs: number; cpuMs: number; cores: number }>(gw, EVIL, 'evil', 'spin_cpu', { seconds: 4, threads: 2 }, 30_000);
    const seen = await watch.stop();
    expect(spin.cpuMs).not.toBeNull();
    expect(spin.cores).toBeLessThan(0.65);
    expect(spin.cores).toBeGreaterThan(0.2);
    expect(seen.failures).toEqual([]);
    expect(seen.slowestMs).toBeLessThan(2_000);
    const plain = await attemptUnhardened<{ cores: number }>(image, 'spin_cpu', { seconds: 3, threads: 2 });
    // Well above the 0.5 limit even when other work shares the two cores (0.9+ on an idle machine).
    expect(plain.cores).toBeGreaterThan(0.75);
  });
});
