// What a VMI says about its VM right now.
import type { DigestNode, DigestVmi } from "./types.js";

export interface VmiState {
  phase: string;
  /** status.nodeName while Running. */
  node?: string;
  migrating: boolean;
}

export function vmiState(vmi: DigestVmi): VmiState {
  const phase = vmi.status?.phase || "Unknown";
  const node = phase === "Running" ? vmi.status?.nodeName || undefined : undefined;
  const m = vmi.status?.migrationState;
  // As the operator sees it: a migration with a target that has neither completed nor failed.
  const migrating = !!m && !m.completed && !m.failed && !!m.targetNode;
  return node ? { phase, node, migrating } : { phase, migrating };
}

/** The names of the nodes whose Ready condition is True. */
export function readyNodes(nodes: readonly DigestNode[]): Set<string> {
  const ready = new Set<string>();
  for (const n of nodes) {
    if (n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) ready.add(n.metadata.name ?? "");
  }
  return ready;
}
