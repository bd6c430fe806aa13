// Docker labels the gateway puts on everything it creates (contract: "Docker resources").
export const LABELS = {
  managed: 'mcpx.managed',
  workspace: 'mcpx.workspace',
  workspaceUid: 'mcpx.workspace-uid',
  server: 'mcpx.server',
  configHash: 'mcpx.config-hash',
} as const;

export function workspaceLabels(workspace: string, workspaceUid: string): Record<string, string> {
  return { [LABELS.managed]: 'true', [LABELS.workspace]: workspace, [LABELS.workspaceUid]: workspaceUid };
}
