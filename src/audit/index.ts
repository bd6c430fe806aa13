// Public face of the audit domain.
export { createAuditLog, verifyAuditLog, argumentsHash, entryHash, GENESIS, AUDIT_HEAD_FILE } from './audit-log.js';
export type { AuditHead, AuditLog, AuditInput, AuditEntry, AuditKind, AuditQuery, VerifyResult } from './audit-log.js';
