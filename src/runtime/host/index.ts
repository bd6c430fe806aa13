// Host-level isolation the engine does not provide by itself: packet filtering and disk quotas.
export { runCommand, HostCommandError } from './exec.js';
export type { CommandRunner, CommandResult } from './exec.js';
export { createFirewall, workspaceFirewallRules, INPUT_CHAIN, FORWARD_CHAIN } from './firewall.js';
export type { Firewall, FirewallRule, WorkspaceFirewall } from './firewall.js';
export { createDiskQuotas, MIN_DISK_BYTES } from './disk-quota.js';
export type { DiskQuotas, DiskInfo } from './disk-quota.js';
export { checkEngine, checkHostTools, hostKernel } from './host-checks.js';
export type { CheckStatus, EngineFacts, HostCheck } from './host-checks.js';
