// What goes into the base image: the loader's view of Node's libraries, and the layout the servers rely on.
import { describe, expect, it } from 'vitest';
import { parseLddOutput, planBaseImage } from './base-image.js';

describe('parseLddOutput', () => {
  it('keeps the names the loader asks for, including the loader itself, and skips the vDSO', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f25)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f25)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f25)',
    ].join('\n');
    expect(parseLddOutput(out)).toEqual(['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });
  it('fails on a missing library', () => {
    expect(() => parseLddOutput('\tlibfoo.so.1 => not found\n')).toThrow(/libfoo/);
  });
});

describe('planBaseImage', () => {
  it('holds node, its libraries and the fixed layout, with a stable content tag', async () => {
    const plan = await planBaseImage(process.execPath);
    expect(plan.ref).toMatch(/^mcpx-base:[0-9a-f]{16}$/);
    const byPath = new Map(plan.entries.map((e) => [e.path, e]));
    expect(byPath.get('usr/local/bin/node')).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byPath.get('workspace')).toMatchObject({ type: 'directory', mode: 0o750, uid: 10001, gid: 10001 });
    expect(byPath.get('tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(byPath.get('run/secrets')).toMatchObject({ type: 'directory', mode: 0o755 });
    expect([...byPath.keys()].some((p) => /(^|\/)(sh|bash|busybox)$/.test(p))).toBe(false);
    expect(plan.changes).toContain('USER 10001:10001');
    expect((await planBaseImage(process.execPath)).ref).toBe(plan.ref);
  });
});
