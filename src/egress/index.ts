// Public face of the egress domain: the per-workspace proxy that is a workspace's only way out.
export { startEgressProxy } from './egress-proxy.js';
export type { EgressProxy, EgressProxyOptions, EgressRecord } from './egress-proxy.js';
