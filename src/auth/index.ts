// Public face of the auth domain.
export { loadOrCreateSigningKey, signToken, parseDuration, EMBEDDED_ISSUER, EMBEDDED_AUDIENCE, ADMIN_SCOPE } from './issuer.js';
export type { SigningKey } from './issuer.js';
export { createTokenVerifier, bearerToken, EXTERNAL_ALGS } from './verifier.js';
export type { Identity, VerifyResult, TokenVerifier, VerifierOptions } from './verifier.js';
export { effectiveRole, may } from './roles.js';
export type { Action } from './roles.js';
