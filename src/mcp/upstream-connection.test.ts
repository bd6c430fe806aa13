import { describe, expect, it } from 'vitest';
import type { JsonRpcMessage } from './json-rpc.js';
import { classify } from './json-rpc.js';
import { UpstreamConnection, UpstreamClosedError } from './upstream-connection.js';

/** A fake server process: answers initialize and echoes tools/call arguments, with a delay per request. */
function fakeServer() {
  const garbage: string[] = [];
  const seen: Record<string, unknown>[] = [];
  const conn: UpstreamConnection = new UpstreamConnection({
    write(line) {
      const msg = JSON.parse(line) as Record<string, unknown>;
      seen.push(msg);
      if (msg.id === undefined) return true;
      const result =
        msg.method === 'initialize'
          ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'fake', version: '1' } }
          : { echoed: msg.params };
      setTimeout(() => conn.handleLine(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })), Math.random() * 5);
      return true;
    },
    onGarbage: (line) => garbage.push(line),
  });
  return { conn, garbage, seen };
}

describe('UpstreamConnection', () => {
  it('performs the handshake once and caches it', async () => {
    const { conn, seen } = fakeServer();
    const init = await conn.initialize(1000);
    expect(init.serverInfo.name).toBe('fake');
    expect(seen.map((m) => m.method)).toEqual(['initialize', 'notifications/initialized']);
  });

  it('gives each channel its own id space and routes every answer back to its asker', async () => {
    const { conn, seen } = fakeServer();
    await conn.initialize(1000);
    const channels = [0, 1, 2].map(() => conn.openChannel());
    const answers = channels.map(() => new Map<unknown, unknown>());
    channels.forEach((ch, i) => {
      ch.onmessage = (m: JsonRpcMessage) => {
        const c = classify(m);
        if (c.kind === 'response') answers[i]!.set(c.msg.id, c.msg.result);
      };
    });
    await Promise.all(channels.map((c) => c.start()));
    // Every channel uses the same client ids 1..20: the upstream must never see a collision.
    for (let id = 1; id <= 20; id++) {
      channels.forEach((ch, i) => void ch.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { ch: i, id } }));
    }
    await new Promise((r) => setTimeout(r, 50));
    answers.forEach((a, i) => {
      expect(a.size).toBe(20);
      for (const [id, result] of a) expect(result).toEqual({ echoed: { ch: i, id } });
    });
    const upstreamIds = seen.filter((m) => m.method === 'tools/call').map((m) => m.id);
    expect(new Set(upstreamIds).size).toBe(60);
  });

  it('answers a channel initialize from the cache without asking the server', async () => {
    const { conn, seen } = fakeServer();
    await conn.initialize(1000);
    const ch = conn.openChannel();
    const got: JsonRpcMessage[] = [];
    ch.onmessage = (m) => got.push(m);
    await ch.start();
    await ch.send({ jsonrpc: '2.0', id: 'a', method: 'initialize', params: {} });
    await ch.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(got).toEqual([{ jsonrpc: '2.0', id: 'a', result: conn.initializeResult }]);
    expect(seen.filter((m) => m.method === 'initialize')).toHaveLength(1);
  });

  it('reports garbage and unknown ids without throwing, and fails pending calls on close', async () => {
    const { conn, garbage } = fakeServer();
    conn.handleLine('not json at all');
    conn.handleLine('{"jsonrpc":"2.0","id":999,"result":{}}');
    conn.handleLine('[1,2]');
    expect(garbage).toHaveLength(3);
    const silent = new UpstreamConnection({ write: () => true });
    const p = silent.request('tools/list');
    silent.close();
    await expect(p).rejects.toBeInstanceOf(UpstreamClosedError);
    await expect(silent.request('tools/list')).rejects.toBeInstanceOf(UpstreamClosedError);
  });

  it('times out a request the server never answers', async () => {
    const silent = new UpstreamConnection({ write: () => true });
    await expect(silent.request('tools/list', undefined, 20)).rejects.toThrow(/did not answer/);
  });
});
