import { describe, expect, it } from 'vitest';
import { ipv4Gateway } from './docker-runtime-client.js';

describe('ipv4Gateway', () => {
  it('takes the gateway the engine recorded, IPv4 only', () => {
    expect(ipv4Gateway([{ Subnet: 'fd00::/64', Gateway: 'fd00::1' }, { Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }])).toBe('10.9.0.254');
  });
  it("derives the subnet's first host address when none is recorded (a fresh dockerd's default bridge)", () => {
    expect(ipv4Gateway([{ Subnet: '172.17.0.0/16' }])).toBe('172.17.0.1');
    expect(ipv4Gateway([{ Subnet: '192.168.5.64/26' }])).toBe('192.168.5.65');
    expect(ipv4Gateway([{ Subnet: '10.1.2.3/8' }])).toBe('10.0.0.1');
  });
  it('gives nothing for what it cannot read', () => {
    expect(ipv4Gateway([])).toBeUndefined();
    expect(ipv4Gateway([{ Subnet: 'fd00::/64' }])).toBeUndefined();
    expect(ipv4Gateway([{ Subnet: '10.0.0.1/32' }])).toBeUndefined();
  });
});
