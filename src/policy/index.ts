// Public face of the policy domain: pure decisions, each failing closed.
export { globToRegExp, matchesAny } from './glob.js';
export { mayAccess, mayCall } from './access-policy.js';
export type { AccessPolicy, KindPolicy, Rules, Kind, Decision } from './access-policy.js';
export { checkLimits, findForbiddenName, DEFAULT_LIMITS, DEFAULT_FORBIDDEN_ARGS } from './sanitize.js';
export type { Limits, Check } from './sanitize.js';
export { createSchemaValidator } from './schema-validator.js';
export type { SchemaValidator, Validation } from './schema-validator.js';
export { createBuckets } from './rate-limit.js';
export type { BucketSpec, Take } from './rate-limit.js';
export { decideAddress, decideDestination, isLocalAddress, parseAllowlist, parseDestination } from './egress-allowlist.js';
export type { AllowEntry, EgressDecision } from './egress-allowlist.js';
