// Who may do what in a workspace: pure decisions over the stored role and the token's admin scope.
import type { Role } from '../config/spec.js';
import type { Identity } from './verifier.js';

export type Action = 'read' | 'use' | 'logs' | 'manage';

const ALLOWED: Record<Role, readonly Action[]> = {
  owner: ['read', 'use', 'logs', 'manage'],
  member: ['read', 'use', 'logs'],
  viewer: ['read'],
};

/** An administrator acts as an owner everywhere. */
export function effectiveRole(identity: Identity, stored: Role | undefined): Role | undefined {
  return identity.admin ? 'owner' : stored;
}

export function may(role: Role | undefined, action: Action): boolean {
  return role !== undefined && ALLOWED[role].includes(action);
}
