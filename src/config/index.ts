// Public face of the config domain.
export { workspaceSpecSchema, validateSpec, parseSpecText, parseBytes, durationMs, RESERVED_ENV } from './spec.js';
export type { WorkspaceSpec, ServerSpec, ResourceSpec, Role, SpecResult } from './spec.js';
export { gatewayConfigSchema, loadGatewayConfig } from './gateway-config.js';
export type { GatewayConfig, ConfigResult } from './gateway-config.js';
