// One redactor per workspace, built from its secrets' values and its pattern policy, rebuilt when either changes.
import { createRedactor, noHits } from './redaction.js';
import type { PatternPolicy, RedactionHits, Redactor } from './redaction.js';

export interface RedactionRegistryDeps {
  values(uid: string): Map<string, string>;
  policy(uid: string): PatternPolicy;
}

export function createRedactionRegistry(deps: RedactionRegistryDeps) {
  const cache = new Map<string, Redactor>();
  const forWorkspace = (uid: string): Redactor => {
    let r = cache.get(uid);
    if (!r) {
      r = createRedactor(deps.values(uid), deps.policy(uid));
      cache.set(uid, r);
    }
    return r;
  };
  return {
    forWorkspace,
    invalidate(uid: string): void {
      cache.delete(uid);
    },
    /** For logs and the audit trail: redact, whatever the policy says about blocking. */
    text(uid: string, s: string): string {
      const r = forWorkspace(uid);
      return r.empty ? s : r.text(s, noHits());
    },
  };
}

export type RedactionRegistry = ReturnType<typeof createRedactionRegistry>;
export type { RedactionHits };
