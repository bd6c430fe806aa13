// A workspace spec's request guardrails in the shape the MCP endpoint uses, computed once per spec.
import type { WorkspaceSpec } from '../config/index.js';
import type { Guardrails } from '../mcp/index.js';

export function guardrailsOf(spec: WorkspaceSpec): Guardrails {
  const { forbiddenArgs, maxResponseBytes, ...limits } = spec.limits;
  return {
    policy: { tools: spec.tools, prompts: spec.prompts, resources: spec.resourceUris },
    limits,
    forbiddenArgs,
    maxResponseBytes,
    concurrentPerServer: spec.rateLimits.concurrentPerServer,
  };
}

/** Memoised by spec object: a replaced spec is a new object, so the cache never serves stale rules. */
export function createGuardrailsCache(): (spec: WorkspaceSpec) => Guardrails {
  const cache = new WeakMap<WorkspaceSpec, Guardrails>();
  return (spec) => {
    let g = cache.get(spec);
    if (!g) {
      g = guardrailsOf(spec);
      cache.set(spec, g);
    }
    return g;
  };
}
