import { describe, expect, it } from 'vitest';
import { decideAddress, decideDestination, isLocalAddress, parseAllowlist, parseDestination } from './egress-allowlist.js';

describe('egress allowlist', () => {
  it('parses host:port and [v6]:port, rejecting anything else', () => {
    expect(parseDestination('API.Example.com:443')).toEqual({ host: 'api.example.com', port: 443 });
    expect(parseDestination('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseDestination('example.com')).toBeUndefined();
    expect(parseDestination('example.com:0')).toBeUndefined();
    expect(parseDestination('example.com:70000')).toBeUndefined();
    expect(parseDestination('http://example.com:80')).toBeUndefined();
    expect(parseAllowlist(['a.test:1', '10.0.0.1:2'])).toEqual([
      { host: 'a.test', port: 1, literal: false },
      { host: '10.0.0.1', port: 2, literal: true },
    ]);
  });

  it('allows only an exact host and port', () => {
    const list = parseAllowlist(['api.example.com:443']);
    expect(decideDestination(list, 'API.example.com', 443).ok).toBe(true);
    expect(decideDestination(list, 'api.example.com', 80)).toEqual({ ok: false, reason: 'not on the allowlist' });
    expect(decideDestination(list, 'evil.example.com', 443).ok).toBe(false);
    expect(decideDestination([], 'api.example.com', 443).ok).toBe(false);
  });

  it('classifies local and private addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.17.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1']) {
      expect(isLocalAddress(a), a).toBe(true);
    }
    for (const a of ['93.184.216.34', '2606:4700::1111', '172.32.0.1']) expect(isLocalAddress(a), a).toBe(false);
  });

  it('refuses a name that resolves to a local address (DNS rebinding) but honours a literal entry', () => {
    const [name] = parseAllowlist(['api.example.com:443']);
    expect(decideAddress(name!, '93.184.216.34').ok).toBe(true);
    expect(decideAddress(name!, '127.0.0.1')).toMatchObject({ ok: false, reason: expect.stringContaining('local or private') as unknown });
    expect(decideAddress(name!, '169.254.169.254').ok).toBe(false);
    const [literal] = parseAllowlist(['172.18.0.5:8080']);
    expect(decideAddress(literal!, '172.18.0.5').ok).toBe(true);
    expect(decideAddress(literal!, '172.18.0.6').ok).toBe(false);
  });

  it("refuses the gateway's own ports on local addresses even when allowlisted literally", () => {
    const [entry] = parseAllowlist(['127.0.0.1:7470']);
    expect(decideAddress(entry!, '127.0.0.1', [7470])).toEqual({ ok: false, reason: "the gateway's own port" });
    expect(decideAddress(entry!, '127.0.0.1', [3128]).ok).toBe(true);
  });
});
