// Public face of the mcp domain.
export { UpstreamConnection, UpstreamClosedError, GATEWAY_PROTOCOL_VERSION, GATEWAY_CLIENT_INFO } from './upstream-connection.js';
export type { ChannelTransport, InitializeResult, UpstreamOptions } from './upstream-connection.js';
export { classify, ProtocolError, RPC } from './json-rpc.js';
export type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcNotification, JsonRpcResponse, JsonRpcErrorObject } from './json-rpc.js';
