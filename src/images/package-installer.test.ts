// Which script starts a server, from what its package.json declares.
import { describe, expect, it } from 'vitest';
import { chooseEntry } from './package-installer.js';

describe('chooseEntry', () => {
  it('uses a string bin', () => {
    expect(chooseEntry({ bin: './dist/cli.js', main: 'index.js' }, 'p')).toBe('./dist/cli.js');
  });
  it('uses the only bin entry, else the one named like the unscoped package, else the first', () => {
    expect(chooseEntry({ bin: { anything: 'a.js' } }, '@s/p')).toBe('a.js');
    expect(chooseEntry({ bin: { tool: 't.js', p: 'p.js' } }, '@s/p')).toBe('p.js');
    expect(chooseEntry({ bin: { first: 'f.js', second: 's.js' } }, '@s/p')).toBe('f.js');
  });
  it('falls back to main, then index.js', () => {
    expect(chooseEntry({ main: 'lib/server.js' }, 'p')).toBe('lib/server.js');
    expect(chooseEntry({}, 'p')).toBe('index.js');
    expect(chooseEntry({ bin: {} }, 'p')).toBe('index.js');
  });
});
