// Public face of the workspaces domain (lifecycle).
export { createWorkspaceManager, volumeName, DEFAULT_SUPERVISION } from './workspace-manager.js';
export { guardrailsOf, createGuardrailsCache } from './guardrails.js';
export type { WorkspaceManager, ManagerDeps, ServerView, ServerStatus, SupervisionOptions, HibernationOptions } from './workspace-manager.js';
export { unsupportedReasons } from './support.js';
export type { SupportFacts } from './support.js';
export { createVerifier, OFF_LIST_TARGET } from './verify.js';
export type { Verifier, VerifyResult, IsolationView } from './verify.js';
export { evaluateProbe, PROPERTIES } from './verify-report.js';
export type { PropertyResult, PropertyName } from './verify-report.js';
