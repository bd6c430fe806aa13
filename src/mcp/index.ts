// Public face of the mcp domain.
export { UpstreamConnection, UpstreamClosedError, responseSize, GATEWAY_PROTOCOL_VERSION, GATEWAY_CLIENT_INFO, GATEWAY_CLIENT_CAPABILITIES } from './upstream-connection.js';
export type { ChannelTransport, InitializeResult, UpstreamOptions, UpstreamRequestHandler } from './upstream-connection.js';
export { classify, ProtocolError, RPC } from './json-rpc.js';
export { createWorkspaceRouter, CancelledError, SUPPORTED_PROTOCOL_VERSIONS, LATEST_PROTOCOL_VERSION, NAME_SEPARATOR, WORKSPACE_ROOT, templatePattern } from './workspace-router.js';
export type { WorkspaceRouter, Session, ClientSink, Directory, RouterOptions, Guardrails, RequestNote, ListenFilter, ListenSink, Listener, ChangeSupport } from './workspace-router.js';
export { RATE_LIMITED, WITHHELD } from './workspace-router.js';
export { createStreamableHttp, SESSION_HEADER, VERSION_HEADER } from './streamable-http.js';
export { SseStream } from './http-exchange.js';
export type { Caller, StreamableDeps, McpAuditRecord } from './streamable-http.js';
export { createStatelessHttp, routesToStateless } from './stateless-http.js';
export type { StatelessDeps } from './stateless-http.js';
export { MODERN_PROTOCOL_VERSION, MODERN_PROTOCOL_VERSIONS, MODERN_ERROR, admitPost } from './modern-era.js';
export type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcNotification, JsonRpcResponse, JsonRpcErrorObject } from './json-rpc.js';
