// Docker labels the gateway puts on everything it creates (contract: "Docker resources").
export const LABELS = {
  managed: 'mcpx.managed',
  workspace: 'mcpx.workspace',
  workspaceUid: 'mcpx.workspace-uid',
  /** The gateway (data directory) that created it: reconciliation removes only its own orphans. */
  gateway: 'mcpx.gateway',
  server: 'mcpx.server',
  configHash: 'mcpx.config-hash',
  /** On a workspace volume: the ext4 image file behind its loop device. */
  diskImage: 'mcpx.disk-image',
  /** On a container the gateway runs for a moment (the `verify` probe when a server image has no Node). */
  role: 'mcpx.role',
} as const;

/** The workspace network's name. */
export function networkName(workspace: string, workspaceUid: string): string {
  return `mcpx-${workspace}-${workspaceUid.slice(0, 8)}`;
}

/** The Linux bridge of a workspace network: fixed, so firewall rules can name it; at most 15 characters. */
export function bridgeName(workspaceUid: string): string {
  return `mcpx-${workspaceUid.replace(/-/g, '').slice(0, 10)}`;
}

export function workspaceLabels(workspace: string, workspaceUid: string, gatewayId?: string): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.workspace]: workspace,
    [LABELS.workspaceUid]: workspaceUid,
    ...(gatewayId ? { [LABELS.gateway]: gatewayId } : {}),
  };
}

/** Is a labelled resource this gateway's to reconcile? Resources from before gateway ids (unlabelled) are. */
export function ownedBy(labels: Record<string, string>, gatewayId: string): boolean {
  const g = labels[LABELS.gateway];
  return g === undefined || g === gatewayId;
}
