// Public face of the runtime domain.
export { createDockerRuntimeClient } from './docker/docker-runtime-client.js';
export type { DockerRuntimeClient, ManagedContainer, ExitInfo } from './docker/docker-runtime-client.js';
export { hardenedContainerConfig, containerName, containerEnv, configHash, CONTAINER_USER, CONTAINER_PATH, WORKSPACE_MOUNT } from './docker/hardening.js';
export type { ContainerPlan } from './docker/hardening.js';
export { AttachedStdio, MAX_LINE_BYTES } from './docker/attach.js';
export type { LineSink } from './docker/attach.js';
export { LABELS, workspaceLabels } from './labels.js';
