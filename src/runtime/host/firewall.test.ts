import { describe, expect, it } from 'vitest';
import { createFirewall, ruleOwner, splitRule, workspaceFirewallRules } from './firewall.js';
import type { CommandRunner } from './exec.js';

const UID = '1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed';
const GW = '0123456789ab';

describe('workspace firewall rules', () => {
  it('accepts only the proxy from the bridge, before refusing everything else to the host and through the host', () => {
    const rules = workspaceFirewallRules({ uid: UID, gatewayId: GW, bridge: 'mcpx-1b9d6bcdbb', proxy: { address: '172.20.0.1', port: 3128 } });
    const tag = ['-m', 'comment', '--comment', `mcpx-ws=${UID}@${GW}`];
    expect(rules[0]).toEqual({ family: 4, chain: 'MCPX-INPUT', args: ['-i', 'mcpx-1b9d6bcdbb', '-d', '172.20.0.1/32', '-p', 'tcp', '--dport', '3128', ...tag, '-j', 'ACCEPT'] });
    expect(rules[1]).toEqual({ family: 4, chain: 'MCPX-INPUT', args: ['-i', 'mcpx-1b9d6bcdbb', ...tag, '-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'] });
    expect(rules.filter((r) => r.chain === 'MCPX-FORWARD' && r.family === 4).map((r) => r.args.slice(0, 2))).toEqual([
      ['-i', 'mcpx-1b9d6bcdbb'],
      ['-o', 'mcpx-1b9d6bcdbb'],
    ]);
    expect(rules.filter((r) => r.family === 6)).toHaveLength(3);
    expect(rules.filter((r) => r.args.includes('ACCEPT'))).toHaveLength(1);
  });

  it('accepts nothing when there is no proxy', () => {
    const rules = workspaceFirewallRules({ uid: UID, gatewayId: GW, bridge: 'mcpx-1b9d6bcdbb' });
    expect(rules.some((r) => r.args.includes('ACCEPT'))).toBe(false);
    expect(rules[0]!.args).toContain('REJECT');
  });

  it('reads back the owner of a listed rule and splits quoted comments', () => {
    const line = `-A MCPX-INPUT -i mcpx-1b9d6bcdbb -m comment --comment "mcpx-ws=${UID}@${GW}" -j REJECT --reject-with icmp-admin-prohibited`;
    expect(ruleOwner(line)).toEqual({ uid: UID, gatewayId: GW });
    expect(ruleOwner('-A MCPX-INPUT -i eth0 -j ACCEPT')).toBeUndefined();
    expect(splitRule(line)).toContain(`mcpx-ws=${UID}@${GW}`);
  });

  it('adds the new rules before removing the old ones, and does nothing when they are in place', async () => {
    const state: Record<string, string[]> = { 'MCPX-INPUT': [], 'MCPX-FORWARD': [], INPUT: ['-j MCPX-INPUT'], 'DOCKER-USER': ['-j MCPX-FORWARD'] };
    const calls: string[] = [];
    const norm = (a: readonly string[]) => a.join(' ');
    const run: CommandRunner = (cmd, argv) => {
      const args = argv.slice(2);
      if (cmd === 'ip6tables') return Promise.reject(new Error('no ipv6'));
      const [op, chain, ...rest] = args;
      const list = state[chain!];
      if (op === '-S') return list ? Promise.resolve({ stdout: list.map((l) => `-A ${chain} ${l}`).join('\n'), stderr: '' }) : Promise.reject(new Error('no chain'));
      calls.push(`${op} ${chain}`);
      if (op === '-C') return list?.includes(norm(rest)) ? Promise.resolve({ stdout: '', stderr: '' }) : Promise.reject(new Error('absent'));
      if (op === '-A') list!.push(norm(rest));
      if (op === '-D') list!.splice(list!.indexOf(norm(rest)), 1);
      return Promise.resolve({ stdout: '', stderr: '' });
    };
    const fw = createFirewall(run);
    await fw.apply({ uid: UID, gatewayId: GW, bridge: 'mcpx-a', proxy: { address: '172.20.0.1', port: 3128 } });
    expect(state['MCPX-INPUT']).toHaveLength(2);
    calls.length = 0;
    await fw.apply({ uid: UID, gatewayId: GW, bridge: 'mcpx-a', proxy: { address: '172.20.0.1', port: 3128 } });
    expect(calls.filter((c) => !c.startsWith('-C'))).toEqual([]);
    await fw.apply({ uid: UID, gatewayId: GW, bridge: 'mcpx-a', proxy: { address: '172.20.0.1', port: 4000 } });
    expect(state['MCPX-INPUT']!.join('\n')).toContain('--dport 4000');
    expect(state['MCPX-INPUT']!.join('\n')).not.toContain('--dport 3128');
    expect(state['MCPX-INPUT']![0]).toContain('ACCEPT');
    expect(await fw.reconcile(new Set([UID]), GW)).toBe(0);
    // Another gateway's rules are not this gateway's orphans.
    expect(await fw.reconcile(new Set(), 'ffffffffffff')).toBe(0);
    expect(await fw.reconcile(new Set(), GW)).toBe(4);
    expect(state['MCPX-INPUT']).toEqual([]);
  });
});
