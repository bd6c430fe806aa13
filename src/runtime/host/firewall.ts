// Packet filtering that makes a workspace network a dead end: from its bridge, only the workspace's egress proxy on
// the host answers; the host's other ports, other bridges and the outside are refused. Rules carry a comment with
// the workspace uid so that they are replaced idempotently, removed on delete and reconciled at start-up.
import type { CommandRunner } from './exec.js';

export const INPUT_CHAIN = 'MCPX-INPUT';
export const FORWARD_CHAIN = 'MCPX-FORWARD';
const COMMENT_PREFIX = 'mcpx-ws=';

export interface FirewallRule {
  family: 4 | 6;
  chain: typeof INPUT_CHAIN | typeof FORWARD_CHAIN;
  /** The rule's match and target, as given to iptables after the chain name. */
  args: string[];
}

export interface WorkspaceFirewall {
  uid: string;
  /** The gateway that owns the rules: reconciliation removes only its own. */
  gatewayId: string;
  /** The Linux bridge of the workspace network. */
  bridge: string;
  /** The egress proxy, listening on the bridge's gateway address; absent means nothing on the host answers. */
  proxy?: { address: string; port: number };
}

/** The rules for one workspace, in order. Pure: unit-tested as an object. */
export function workspaceFirewallRules(w: WorkspaceFirewall): FirewallRule[] {
  const tag = ['-m', 'comment', '--comment', `${COMMENT_PREFIX}${w.uid}@${w.gatewayId}`];
  const reject4 = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
  const reject6 = ['-j', 'REJECT', '--reject-with', 'icmp6-adm-prohibited'];
  const rules: FirewallRule[] = [];
  if (w.proxy) {
    rules.push({ family: 4, chain: INPUT_CHAIN, args: ['-i', w.bridge, '-d', `${w.proxy.address}/32`, '-p', 'tcp', '--dport', String(w.proxy.port), ...tag, '-j', 'ACCEPT'] });
  }
  rules.push(
    { family: 4, chain: INPUT_CHAIN, args: ['-i', w.bridge, ...tag, ...reject4] },
    { family: 4, chain: FORWARD_CHAIN, args: ['-i', w.bridge, ...tag, ...reject4] },
    { family: 4, chain: FORWARD_CHAIN, args: ['-o', w.bridge, ...tag, ...reject4] },
    { family: 6, chain: INPUT_CHAIN, args: ['-i', w.bridge, ...tag, ...reject6] },
    { family: 6, chain: FORWARD_CHAIN, args: ['-i', w.bridge, ...tag, ...reject6] },
    { family: 6, chain: FORWARD_CHAIN, args: ['-o', w.bridge, ...tag, ...reject6] },
  );
  return rules;
}

/** The workspace uid and gateway a listed rule (`iptables -S` format) belongs to, if it is an mcpx rule. */
export function ruleOwner(line: string): { uid: string; gatewayId?: string } | undefined {
  const m = new RegExp(`--comment "?${COMMENT_PREFIX}([0-9a-f-]+)(?:@([0-9a-f]+))?"?`).exec(line);
  return m ? { uid: m[1]!, ...(m[2] ? { gatewayId: m[2] } : {}) } : undefined;
}

/** Splits an `iptables -S` line into arguments (comments may be quoted). */
export function splitRule(line: string): string[] {
  return (line.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"(.*)"$/, '$1'));
}

export function createFirewall(run: CommandRunner) {
  const bin = (family: 4 | 6) => (family === 4 ? 'iptables' : 'ip6tables');
  const ipt = (family: 4 | 6, args: string[]) => run(bin(family), ['-w', '10', ...args]);
  const succeeds = (family: 4 | 6, args: string[]) => ipt(family, args).then(() => true, () => false);
  let ready: Promise<{ v6: boolean }> | undefined;

  /** Creates our chains and hooks them in front of Docker's rules; safe to repeat. */
  const ensureChains = (): Promise<{ v6: boolean }> =>
    (ready ??= (async () => {
      const v6 = await succeeds(6, ['-S', 'INPUT']);
      for (const family of v6 ? ([4, 6] as const) : ([4] as const)) {
        for (const chain of [INPUT_CHAIN, FORWARD_CHAIN]) {
          if (!(await succeeds(family, ['-S', chain]))) await ipt(family, ['-N', chain]).catch(() => undefined);
        }
        if (!(await succeeds(family, ['-C', 'INPUT', '-j', INPUT_CHAIN]))) await ipt(family, ['-I', 'INPUT', '1', '-j', INPUT_CHAIN]);
        // DOCKER-USER is Docker's place for user rules, evaluated before its own ACCEPTs; FORWARD when it is absent.
        const forwardHook = (await succeeds(family, ['-S', 'DOCKER-USER'])) ? 'DOCKER-USER' : 'FORWARD';
        if (!(await succeeds(family, ['-C', forwardHook, '-j', FORWARD_CHAIN]))) await ipt(family, ['-I', forwardHook, '1', '-j', FORWARD_CHAIN]);
      }
      return { v6 };
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));

  const listed = async (family: 4 | 6): Promise<{ chain: string; line: string; uid: string; gatewayId?: string }[]> => {
    const out: { chain: string; line: string; uid: string; gatewayId?: string }[] = [];
    for (const chain of [INPUT_CHAIN, FORWARD_CHAIN]) {
      const r = await ipt(family, ['-S', chain]).catch(() => ({ stdout: '' }));
      for (const line of r.stdout.split('\n')) {
        const owner = line.startsWith('-A ') ? ruleOwner(line) : undefined;
        if (owner) out.push({ chain, line, ...owner });
      }
    }
    return out;
  };

  const deleteListed = async (family: 4 | 6, line: string) => {
    const args = splitRule(line);
    args[0] = '-D';
    await ipt(family, args).catch(() => undefined);
  };

  return {
    ensureChains,

    /** Makes the workspace's rules exactly these: new rules go in before old ones come out, so there is no gap. */
    async apply(w: WorkspaceFirewall): Promise<void> {
      const { v6 } = await ensureChains();
      const rules = workspaceFirewallRules(w).filter((r) => r.family === 4 || v6);
      const families = v6 ? ([4, 6] as const) : ([4] as const);
      const before = new Map<4 | 6, { line: string }[]>();
      for (const f of families) before.set(f, (await listed(f)).filter((r) => r.uid === w.uid));
      let present = true;
      for (const r of rules) if (!(await succeeds(r.family, ['-C', r.chain, ...r.args]))) present = false;
      const count = [...before.values()].reduce((n, l) => n + l.length, 0);
      if (present && count === rules.length) return;
      for (const r of rules) await ipt(r.family, ['-A', r.chain, ...r.args]);
      for (const f of families) for (const old of before.get(f) ?? []) await deleteListed(f, old.line);
    },

    async remove(uid: string): Promise<number> {
      const { v6 } = await ensureChains();
      let n = 0;
      for (const f of v6 ? ([4, 6] as const) : ([4] as const)) {
        for (const r of (await listed(f)).filter((x) => x.uid === uid)) {
          await deleteListed(f, r.line);
          n++;
        }
      }
      return n;
    },

    /** Removes this gateway's rules of every workspace not in `live`; returns how many rules went. */
    async reconcile(live: ReadonlySet<string>, gatewayId: string): Promise<number> {
      const { v6 } = await ensureChains();
      let n = 0;
      for (const f of v6 ? ([4, 6] as const) : ([4] as const)) {
        for (const r of await listed(f)) {
          if (live.has(r.uid) || (r.gatewayId !== undefined && r.gatewayId !== gatewayId)) continue;
          await deleteListed(f, r.line);
          n++;
        }
      }
      return n;
    },

    /** The uids that have rules (for tests and `verify`). */
    async owners(): Promise<Set<string>> {
      return new Set((await listed(4)).map((r) => r.uid));
    },
  };
}

export type Firewall = ReturnType<typeof createFirewall>;
