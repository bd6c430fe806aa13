// Public face of the policy domain: pure decisions, no I/O.
export { decideAddress, decideDestination, isLocalAddress, parseAllowlist, parseDestination } from './egress-allowlist.js';
export type { AllowEntry, EgressDecision } from './egress-allowlist.js';
