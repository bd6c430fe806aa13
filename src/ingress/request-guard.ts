// Rate limits on the MCP endpoint: a token bucket per token and one per workspace, sized by the workspace's spec
// (rebuilt when the spec is replaced).
import { createHash } from 'node:crypto';
import type { WorkspaceSpec } from '../config/index.js';
import { createBuckets } from '../policy/index.js';
import type { Take } from '../policy/index.js';

type Buckets = ReturnType<typeof createBuckets>;

export function createRequestGuard(specFor: (workspace: string) => WorkspaceSpec | undefined) {
  const perWorkspace = new Map<string, { limits: WorkspaceSpec['rateLimits']; workspace: Buckets; token: Buckets }>();
  return {
    /** Takes one request from the caller's and the workspace's buckets. */
    admit(workspace: string, token: string, nowMs: number): Take {
      const spec = specFor(workspace);
      if (!spec) return { ok: true };
      let b = perWorkspace.get(workspace);
      if (!b || b.limits !== spec.rateLimits) {
        b = { limits: spec.rateLimits, workspace: createBuckets(spec.rateLimits.perWorkspace), token: createBuckets(spec.rateLimits.perToken) };
        perWorkspace.set(workspace, b);
      }
      const mine = b.token.take(tokenKey(token), nowMs);
      if (!mine.ok) return mine;
      return b.workspace.take('all', nowMs);
    },
    forget(workspace: string): void {
      perWorkspace.delete(workspace);
    },
  };
}

/** Buckets are keyed by a digest of the token, never the token itself. */
const tokenKey = (token: string) => createHash('sha256').update(token).digest('base64url').slice(0, 22);

export type RequestGuard = ReturnType<typeof createRequestGuard>;
