// Public face of the workspaces domain (lifecycle).
export { createWorkspaceManager, volumeName, DEFAULT_SUPERVISION } from './workspace-manager.js';
export { guardrailsOf, createGuardrailsCache } from './guardrails.js';
export type { WorkspaceManager, ManagerDeps, ServerView, ServerStatus, SupervisionOptions, HibernationOptions } from './workspace-manager.js';
