// The malicious server's attempts to gain privilege or run a payload: each fails in the container mcpx made, and the
// same attempt succeeds from the same image run with Docker's defaults, so that the difference is the proof.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALICIOUS_PACKAGE, startTestGateway } from './helpers/gateway.js';
import type { TestGateway } from './helpers/gateway.js';
import { attempt, attemptUnhardened } from './helpers/isolation.js';

const WS = 'it-iso-privilege';
const NEIGHBOUR = 'it-iso-privilege-neighbour';

interface Tried {
  ok: boolean;
  error?: string;
  value?: unknown;
}
interface Root {
  uid: number;
  setuid0: Tried;
  setgid0: Tried;
  chownToRoot: Tried;
  raisePriority: Tried;
  capEff: string;
}

let gw: TestGateway;
let owner: string;
let image: string;

beforeAll(async () => {
  gw = await startTestGateway();
  owner = await gw.token('alice');
  for (const name of [WS, NEIGHBOUR]) {
    expect((await gw.api('POST', '/api/v1/workspaces', owner, { name, servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }] })).status).toBe(201);
  }
  for (const name of [WS, NEIGHBOUR]) await gw.waitStatus(name, owner, ['ready']);
  image = (await gw.api<{ servers: { image: string }[] }>('GET', `/api/v1/workspaces/${WS}`, owner)).body.servers[0]!.image;
});

afterAll(async () => {
  for (const name of [WS, NEIGHBOUR]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
});

describe('privilege and payloads', () => {
  it('cannot become root or use a capability (unhardened: every attempt succeeds)', async () => {
    const hardened = await attempt<Root>(gw, WS, 'evil', 'gain_root');
    expect(hardened.uid).toBe(10001);
    expect(hardened.setuid0).toMatchObject({ ok: false, error: 'EPERM' });
    expect(hardened.setgid0).toMatchObject({ ok: false, error: 'EPERM' });
    expect(hardened.chownToRoot).toMatchObject({ ok: false, error: 'EPERM' });
    // CAP_SYS_NICE: not in Docker's default set either, so here the point is only that it is refused.
    expect(hardened.raisePriority.ok).toBe(false);
    expect(hardened.capEff).toBe('0000000000000000');
    const plain = await attemptUnhardened<Root>(image, 'gain_root', {}, { Tmpfs: { '/workspace': '' } });
    expect(plain.uid).toBe(0);
    expect(plain.setuid0.ok).toBe(true);
    expect(plain.chownToRoot.ok).toBe(true);
    expect(plain.capEff).not.toBe('0000000000000000');
  });

  it('cannot execute a payload it wrote to /tmp (unhardened: the payload runs)', async () => {
    expect(await attempt(gw, WS, 'evil', 'exec_tmp')).toMatchObject({ ok: false, error: 'EACCES' });
    expect(await attemptUnhardened(image, 'exec_tmp')).toEqual({ ok: true, value: 'payload ran' });
  });

  it('leaves the neighbour serving', async () => {
    expect(await attempt(gw, NEIGHBOUR, 'evil', 'echo', { message: 'fine' })).toBe('fine');
  });
});
