// Public face of the secrets domain.
export { createSecretService, SECRET_NAME, MAX_SECRET_BYTES } from './secret-service.js';
export type { SecretService, SecretServiceDeps } from './secret-service.js';
export { createRedactor, CREDENTIAL_PATTERNS, MIN_SECRET_LENGTH, noHits } from './redaction.js';
export type { Redactor, RedactionHits, PatternPolicy, CredentialPattern } from './redaction.js';
export { loadMasterKey, keyId } from './envelope.js';
export { createRedactionRegistry } from './redaction-registry.js';
export type { RedactionRegistry } from './redaction-registry.js';
