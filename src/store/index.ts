// Public face of the store domain.
export { openDatabase, migrate } from './database.js';
export type { Db } from './database.js';
export { createWorkspaceStore, WORKSPACE_STATUSES } from './workspace-store.js';
export { createSecretStore } from './secret-store.js';
export type { SecretStore, WrappedKey } from './secret-store.js';
export type { WorkspaceStore, WorkspaceRecord, WorkspaceStatus, EventRecord } from './workspace-store.js';
export { loadOrCreateGatewayId } from './gateway-identity.js';
