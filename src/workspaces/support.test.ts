import { describe, expect, it } from 'vitest';
import { validateSpec } from '../config/index.js';
import type { WorkspaceSpec } from '../config/index.js';
import { unsupportedReasons } from './support.js';

const spec = (extra: Record<string, unknown>): WorkspaceSpec => {
  const r = validateSpec({ name: 'w', servers: [{ name: 's', package: 'x' }], ...extra });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.spec;
};

describe('unsupportedReasons', () => {
  it('accepts everything on a complete host', () => {
    expect(unsupportedReasons(spec({ isolation: 'gvisor' }), { runtimes: ['runc', 'runsc'], missing: [] })).toEqual([]);
    expect(unsupportedReasons(spec({ network: { egress: ['a.test:443'] } }), { runtimes: ['runc'], missing: [] })).toEqual([]);
  });

  it('refuses gvisor without runsc, saying how to get it', () => {
    const [reason] = unsupportedReasons(spec({ isolation: 'gvisor' }), { runtimes: ['runc'], missing: [] });
    expect(reason).toMatch(/^isolation: gvisor needs the runsc runtime/);
    expect(reason).toContain('/etc/docker/daemon.json');
    expect(reason).toContain('mcpx doctor');
  });

  it('refuses egress without iptables and any spec without the disk tools', () => {
    expect(unsupportedReasons(spec({ network: { egress: ['a.test:443'] } }), { runtimes: ['runc'], missing: ['iptables'] })).toEqual([
      expect.stringMatching(/^network: an egress allowlist needs iptables/),
    ]);
    expect(unsupportedReasons(spec({}), { runtimes: ['runc'], missing: ['iptables'] })).toEqual([]);
    expect(unsupportedReasons(spec({}), { runtimes: ['runc'], missing: ['loop devices'] })).toEqual([expect.stringMatching(/^resources.disk: .*loop devices/)]);
  });

  it('leaves gvisor with egress to the schema, which says why', () => {
    const r = validateSpec({ name: 'w', servers: [{ name: 's', package: 'x' }], isolation: 'gvisor', network: { egress: ['a.test:443'] } });
    expect(r).toEqual({ ok: false, errors: ['isolation: gvisor isolation requires network "none": on this engine runsc runs with its network disabled'] });
  });
});
