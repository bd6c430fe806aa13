import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AttachedStdio } from './attach.js';

function frame(kind: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function setup() {
  const stream = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  let closed = 0;
  const stdio = new AttachedStdio(stream, { onStdoutLine: (l) => out.push(l), onStderrLine: (l) => err.push(l), onClose: () => closed++ });
  return { stream, stdio, out, err, closed: () => closed };
}

describe('AttachedStdio', () => {
  it('demultiplexes stdout and stderr into lines', () => {
    const t = setup();
    t.stream.write(Buffer.concat([frame(1, '{"a":1}\n{"b"'), frame(2, 'log one\nlog'), frame(1, ':2}\n'), frame(2, ' two\n')]));
    expect(t.out).toEqual(['{"a":1}', '{"b":2}']);
    expect(t.err).toEqual(['log one', 'log two']);
  });

  it('reassembles frames split at any byte', () => {
    const t = setup();
    const all = Buffer.concat([frame(1, '{"x":"é"}\n'), frame(2, 'warn\n'), frame(1, '{"y":2}\n')]);
    for (let i = 0; i < all.length; i++) t.stream.write(all.subarray(i, i + 1));
    expect(t.out).toEqual(['{"x":"é"}', '{"y":2}']);
    expect(t.err).toEqual(['warn']);
  });

  it('writes lines to stdin and reports close once', async () => {
    const t = setup();
    const received: Buffer[] = [];
    t.stream.on('data', (c: Buffer) => received.push(c));
    expect(t.stdio.writeLine('{"jsonrpc":"2.0"}')).toBe(true);
    await new Promise((r) => setImmediate(r));
    t.stream.end();
    t.stdio.close();
    expect(t.closed()).toBe(1);
    expect(t.stdio.writeLine('late')).toBe(false);
  });
});
