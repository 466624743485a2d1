import { compareWorkloads } from "./compare.js";
import type { NodeCandidate } from "./order-nodes.js";
import { orderNodes } from "./order-nodes.js";
import type { NodeStep, ObservedNode, ObservedWorkload, OrderingPolicy } from "./types.js";

/** A VM the caller found capturable on `node` (running, with files on the shared volume). */
export interface NodePlacement {
  workload: ObservedWorkload;
  node: string;
}

/** A placement that cannot become part of a step, and which node-level reason stops it. */
export interface NodeRejection extends NodePlacement {
  reason: "NodeNotReady" | "NodeSkipped";
  /** Set when the node has no ObservedNode at all, which a bare "not Ready" would hide. */
  detail?: string;
}

export interface NodeSteps {
  steps: NodeStep[];
  rejected: NodeRejection[];
}

/**
 * Groups capturable VMs into one step per node and orders the steps with orderNodes. Shared by the first
 * pass and the reconcile rounds so both apply exactly the same node rules.
 *
 * Readiness is checked before the ordering: only nodes a Job can run on become candidates, so the state of
 * one broken node never changes the order of the others (that matters for the Random policy, whose shuffle
 * depends on the whole candidate list). A node without an ObservedNode (deleted, or not yet in the cache)
 * counts as not Ready. Cordoned nodes are still processed: cordoning usually announces a drain, and that is
 * the moment to capture the VMs still there (the Job must tolerate node.kubernetes.io/unschedulable).
 */
export function groupIntoSteps(
  placements: readonly NodePlacement[],
  nodes: readonly ObservedNode[],
  ordering: OrderingPolicy,
): NodeSteps {
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const rejected: NodeRejection[] = [];
  const byNode = new Map<string, ObservedWorkload[]>();
  for (const { workload, node } of placements) {
    const observed = nodeByName.get(node);
    if (observed === undefined) {
      rejected.push({ workload, node, reason: "NodeNotReady", detail: "the Node object was not found" });
      continue;
    }
    if (!observed.ready) {
      rejected.push({ workload, node, reason: "NodeNotReady" });
      continue;
    }
    const onNode = byNode.get(node) ?? [];
    onNode.push(workload);
    byNode.set(node, onNode);
  }

  const candidates = [...byNode].map(([name, workloads]) => toCandidate(name, workloads, nodeByName.get(name)));
  const { order, skipped } = orderNodes(candidates, ordering);
  for (const node of skipped) {
    for (const workload of byNode.get(node) ?? []) rejected.push({ workload, node, reason: "NodeSkipped" });
  }
  const steps = order.map((node, index) => ({
    node,
    order: index + 1,
    workloads: [...(byNode.get(node) ?? [])].sort(compareWorkloads),
  }));
  return { steps, rejected };
}

/**
 * Builds what the ordering policies look at from the VMs to capture on one node and the node's state.
 * Without an ObservedNode the node's figures count as 0 and it is treated as a worker.
 */
export function toCandidate(
  name: string,
  workloads: readonly ObservedWorkload[],
  node: ObservedNode | undefined,
): NodeCandidate {
  return {
    name,
    workloads: workloads.length,
    critical: workloads.filter((w) => w.critical).length,
    // 0 for an empty node, the same as an unlabelled VM, rather than -Infinity (which JSON cannot carry).
    maxPriority: workloads.length === 0 ? 0 : Math.max(...workloads.map((w) => w.priority)),
    freeCpuMilli: node?.freeCpuMilli ?? 0,
    freeMemoryBytes: node?.freeMemoryBytes ?? 0,
    recentFailures: node?.recentFailures ?? 0,
    controlPlane: node?.controlPlane ?? false,
  };
}
