// Public face of the runtime domain.
export { createDockerRuntimeClient } from './docker/docker-runtime-client.js';
export type { DockerRuntimeClient, ManagedContainer, ExitInfo } from './docker/docker-runtime-client.js';
export { hardenedContainerConfig, containerName, containerEnv, configHash, proxyEnv, CONTAINER_USER, CONTAINER_PATH, WORKSPACE_MOUNT } from './docker/hardening.js';
export type { ContainerPlan } from './docker/hardening.js';
export { AttachedStdio, MAX_LINE_BYTES } from './docker/attach.js';
export type { LineSink } from './docker/attach.js';
export { LABELS, workspaceLabels, ownedBy, bridgeName, networkName } from './labels.js';
export { createDiskQuotas, createFirewall, runCommand, workspaceFirewallRules, HostCommandError, MIN_DISK_BYTES } from './host/index.js';
export type { CommandRunner, DiskInfo, DiskQuotas, Firewall, FirewallRule, WorkspaceFirewall } from './host/index.js';
export { checkEngine, checkHostTools, hostKernel } from './host/index.js';
export type { CheckStatus, EngineFacts, HostCheck } from './host/index.js';
