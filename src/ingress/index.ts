// Public face of the ingress domain.
export { createApp } from './app.js';
export type { AppDeps } from './app.js';
export { createMcpRoutes } from './mcp-routes.js';
export { createRequestGuard } from './request-guard.js';
export type { RequestGuard } from './request-guard.js';
export type { McpRouteDeps } from './mcp-routes.js';
