import { describe, expect, it } from 'vitest';
import { parseBytes, parseSpecText, validateSpec } from './spec.js';

const base = { name: 'demo', servers: [{ name: 'everything', package: '@modelcontextprotocol/server-everything' }] };

describe('validateSpec', () => {
  it('fills the contract defaults', () => {
    const r = validateSpec(base);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.resources).toEqual({ cpus: 0.5, memory: 512 * 1024 ** 2, pids: 64, nofile: 1024, disk: 1024 ** 3, tmp: 100 * 1024 ** 2 });
    expect(r.spec.network).toBe('none');
    expect(r.spec.isolation).toBe('standard');
  });

  const bad: [string, unknown, string][] = [
    ['an unknown top-level key', { ...base, volumes: ['/:/host'] }, 'volumes: unknown key "volumes"'],
    ['a bind mount on a server', { ...base, servers: [{ ...base.servers[0], binds: ['/etc:/etc'] }] }, 'servers[0].binds: unknown key "binds"'],
    ['a bad workspace name', { ...base, name: 'Bad_Name' }, 'name:'],
    ['a too long name', { ...base, name: 'a'.repeat(41) }, 'name:'],
    ['negative memory', { ...base, resources: { memory: '-512m' } }, 'resources.memory:'],
    ['zero cpus', { ...base, resources: { cpus: 0 } }, 'resources.cpus:'],
    ['both package and image', { ...base, servers: [{ name: 'a', package: 'x', image: 'y' }] }, 'servers[0].package:'],
    ['a reserved env name', { ...base, servers: [{ name: 'a', package: 'x', env: { PATH: '/evil' } }] }, 'servers[0].env.PATH:'],
    ['duplicate servers', { ...base, servers: [{ name: 'a', package: 'x' }, { name: 'a', package: 'y' }] }, 'servers[1].name:'],
    ['gvisor with egress', { ...base, isolation: 'gvisor', network: { egress: ['example.com:443'] } }, 'isolation:'],
    ['a bad role', { ...base, members: { bob: 'admin' } }, 'members.bob:'],
  ];
  it.each(bad)('refuses %s, naming the field', (_what, spec, field) => {
    const r = validateSpec(spec);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toContain(field);
  });

  it('parses YAML and reports a syntax error', () => {
    expect(parseSpecText('name: demo\nservers:\n  - name: a\n    package: x\n').ok).toBe(true);
    const r = parseSpecText('name: [unclosed');
    expect(r.ok).toBe(false);
  });

  it('parses byte sizes', () => {
    expect(parseBytes('512m')).toBe(512 * 1024 ** 2);
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(parseBytes('100k')).toBe(102_400);
    expect(parseBytes('-5m')).toBeUndefined();
    expect(parseBytes('lots')).toBeUndefined();
    expect(parseBytes(0)).toBeUndefined();
  });
});
