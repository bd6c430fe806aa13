// The tar writer checked against GNU tar: names of every length, link targets, ownership and modes.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tarStream, type TarEntry } from './tar-writer.js';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function archive(entries: TarEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of tarStream(entries)) parts.push(b);
  return Buffer.concat(parts);
}

describe('tarStream', () => {
  it('writes an archive GNU tar lists and extracts with the given owners, modes, long names and link targets', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tar-writer-'));
    const hostFile = join(dir, 'host.bin');
    await writeFile(hostFile, Buffer.alloc(1500, 7));
    const mid = `${'m'.repeat(90)}/${'n'.repeat(90)}`; // > 100 bytes: needs the USTAR prefix
    const deep = Array.from({ length: 4 }, (_, i) => `${String(i)}${'d'.repeat(80)}`).join('/'); // > 255: needs PAX
    const longTarget = `../${'t'.repeat(120)}`;
    const buf = await archive([
      { type: 'directory', path: 'ws', mode: 0o750, uid: 10001, gid: 10001 },
      { type: 'directory', path: 'tmp', mode: 0o1777 },
      { type: 'file', path: 'ws/hello.txt', mode: 0o644, uid: 10001, gid: 10001, source: Buffer.from('hello\n') },
      { type: 'file', path: 'bin.dat', mode: 0o755, source: { hostPath: hostFile, size: 1500 } },
      { type: 'directory', path: mid, mode: 0o755 },
      { type: 'file', path: `${mid}/x.js`, mode: 0o644, source: Buffer.from('mid') },
      { type: 'directory', path: deep, mode: 0o755 },
      { type: 'file', path: `${deep}/${'f'.repeat(99)}.js`, mode: 0o644, source: Buffer.from('deep') },
      { type: 'symlink', path: 'link', target: longTarget },
    ]);
    expect(buf.length % 512).toBe(0);
    const tarFile = join(dir, 'a.tar');
    await writeFile(tarFile, buf);
    const listing = execFileSync('tar', ['-tvf', tarFile, '--numeric-owner'], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwxr-x--- 10001\/10001 .* ws\/$/m);
    expect(listing).toMatch(/^drwxrwxrwt 0\/0 .* tmp\/$/m);

    const out = join(dir, 'out');
    execFileSync('mkdir', [out]);
    execFileSync('tar', ['-xf', tarFile, '-C', out, '--same-owner', '--same-permissions']);
    expect(await readFile(join(out, 'ws/hello.txt'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(out, 'bin.dat'))).toEqual(Buffer.alloc(1500, 7));
    expect(await readFile(join(out, mid, 'x.js'), 'utf8')).toBe('mid');
    expect(await readFile(join(out, deep, `${'f'.repeat(99)}.js`), 'utf8')).toBe('deep');
    expect(await readlink(join(out, 'link'))).toBe(longTarget);
    expect((await stat(join(out, 'bin.dat'))).mode & 0o7777).toBe(0o755);
    if (process.getuid?.() === 0) expect((await stat(join(out, 'ws'))).uid).toBe(10001);
  });

  it('refuses absolute and parent-relative paths', async () => {
    await expect(archive([{ type: 'directory', path: '/etc', mode: 0o755 }])).rejects.toThrow(/invalid archive path/);
    await expect(archive([{ type: 'directory', path: 'a/../../etc', mode: 0o755 }])).rejects.toThrow(/invalid archive path/);
  });

  it('fails when a host file does not have the announced size', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tar-writer-'));
    const f = join(dir, 'f');
    await writeFile(f, 'abc');
    await expect(archive([{ type: 'file', path: 'f', mode: 0o644, source: { hostPath: f, size: 10 } }])).rejects.toThrow(/shrank/);
  });
});
