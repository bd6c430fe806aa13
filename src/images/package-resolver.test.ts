// Pure parts of package resolution: npm's answers, version order, error summaries, local paths and content hashes.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareVersions, hashDirectory, localPath, parseViewOutput, summarizeNpmStderr } from './package-resolver.js';

describe('parseViewOutput', () => {
  it('takes the highest version when a range matches several (npm lists them unsorted)', () => {
    const out = JSON.stringify(['2025.11.25', '2025.4.25', '2026.1.26', '2025.9.25'].map((version) => ({ name: 'p', version })));
    expect(parseViewOutput(out)).toEqual({ name: 'p', version: '2026.1.26' });
  });
  it('reads a single answer and an error answer', () => {
    expect(parseViewOutput('{"name":"@s/p","version":"1.0.0"}')).toEqual({ name: '@s/p', version: '1.0.0' });
    expect(parseViewOutput('{"error":{"code":"E404","summary":"Not Found - GET x"}}')).toEqual({ error: 'E404 Not Found - GET x' });
    expect(parseViewOutput('')).toEqual({ error: 'no matching version' });
  });
});

describe('compareVersions', () => {
  it('orders numerically, with prereleases below their release', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0-alpha', '0.9.9'].sort(compareVersions);
    expect(sorted).toEqual(['0.9.9', '1.2.0-alpha', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0', '1.10.0']);
  });
});

describe('summarizeNpmStderr', () => {
  it('picks the line that says what went wrong, not the debug-log pointer', () => {
    const e404 = [
      'npm error code E404',
      'npm error 404 Not Found - GET https://registry.npmjs.org/@x%2fy - Not found',
      'npm error 404',
      'npm error 404 Note that you can also install from a',
      'npm error A complete log of this run can be found in: /root/.npm/_logs/x.log',
    ].join('\n');
    expect(summarizeNpmStderr(e404)).toBe('E404: 404 Not Found - GET https://registry.npmjs.org/@x%2fy - Not found');
    const enoent = [
      'npm error code ENOENT',
      'npm error syscall open',
      'npm error path /x/package.json',
      'npm error errno -2',
      "npm error enoent Could not read package.json: Error: ENOENT: no such file or directory, open '/x/package.json'",
      'npm error A complete log of this run can be found in: /root/.npm/_logs/y.log',
    ].join('\n');
    expect(summarizeNpmStderr(enoent)).toMatch(/^enoent Could not read package\.json: Error: ENOENT/);
    expect(summarizeNpmStderr('something broke\n')).toBe('something broke');
    expect(summarizeNpmStderr('')).toBeUndefined();
  });
});

describe('localPath', () => {
  it('recognises file: and absolute specs and rejects relative ones', () => {
    expect(localPath('file:/srv/pkg/')).toBe('/srv/pkg/');
    expect(localPath('/srv/pkg')).toBe('/srv/pkg');
    expect(localPath('@scope/name@^1')).toBeUndefined();
    expect(() => localPath('file:../pkg')).toThrow(/must be absolute/);
    expect(() => localPath('./pkg')).toThrow(/must be absolute/);
  });
});

describe('hashDirectory', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  it('changes with content, names and the executable bit, but not with node_modules or .git', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hash-dir-'));
    await mkdir(join(dir, 'lib'));
    await writeFile(join(dir, 'lib/a.js'), 'a');
    const h0 = await hashDirectory(dir);
    await mkdir(join(dir, 'node_modules/x'), { recursive: true });
    await writeFile(join(dir, 'node_modules/x/i.js'), 'x');
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, '.git/HEAD'), 'ref');
    expect(await hashDirectory(dir)).toBe(h0);
    await chmod(join(dir, 'lib/a.js'), 0o755);
    const h1 = await hashDirectory(dir);
    expect(h1).not.toBe(h0);
    await writeFile(join(dir, 'lib/a.js'), 'b');
    expect(await hashDirectory(dir)).not.toBe(h1);
  });
});
