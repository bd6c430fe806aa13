// Which tools, prompts and resources a caller may see and use: allow/deny globs with per-role overrides.
// Deny always wins; with no allow list everything not denied is allowed. Pure; fails closed.
import { matchesAny } from './glob.js';

export type Role = 'owner' | 'member' | 'viewer';
export type Kind = 'tools' | 'prompts' | 'resources';

export interface Rules {
  allow?: readonly string[];
  deny?: readonly string[];
}

export interface KindPolicy extends Rules {
  roles?: Partial<Record<Role, Rules>>;
}

export type AccessPolicy = Partial<Record<Kind, KindPolicy>>;

export type Decision = { allow: true } | { allow: false; reason: string };

const ALLOW: Decision = { allow: true };

/** May `role` see (list, read) the item called `name`? */
export function mayAccess(policy: AccessPolicy, kind: Kind, role: Role, name: string): Decision {
  try {
    const p = policy[kind];
    if (!p) return ALLOW;
    const r = p.roles?.[role];
    const deny = [...(p.deny ?? []), ...(r?.deny ?? [])];
    if (matchesAny(deny, name)) return { allow: false, reason: `${kind} policy denies "${name}"` };
    const allow = r?.allow ?? p.allow;
    if (allow && !matchesAny(allow, name)) return { allow: false, reason: `"${name}" is not in the ${kind} allow list${r?.allow ? ` for role ${role}` : ''}` };
    return ALLOW;
  } catch {
    return { allow: false, reason: 'the policy could not be evaluated' };
  }
}

/** May `role` call the tool `name`? Viewers may list tools but never call them. */
export function mayCall(policy: AccessPolicy, role: Role, name: string): Decision {
  if (role === 'viewer') return { allow: false, reason: 'the viewer role may not call tools' };
  return mayAccess(policy, 'tools', role, name);
}
