import { activeNodeOf } from "./active-node.js";
import { captureProblem } from "./capture-problem.js";
import { compareWorkloads, lastNodeField, toRef, uniqueBy } from "./compare.js";
import { missingReasonMessage } from "./missing-reason.js";
import type { NodePlacement } from "./node-steps.js";
import { groupIntoSteps } from "./node-steps.js";
import type {
  NodeStep,
  ObservedNode,
  ObservedWorkload,
  OrderingPolicy,
  UnplacedWorkload,
  WorkloadRef,
} from "./types.js";
import { workloadKey } from "./types.js";

/** The first pass over the nodes: what should be captured, where, in which order, and what cannot be. */
export interface DiscoveryPlan {
  /** Every in-scope VM, sorted by key: the list verification later compares the captures with. */
  expected: WorkloadRef[];
  /** One step per node with at least one capturable VM, in processing order. */
  steps: NodeStep[];
  /** In-scope VMs no step captures, sorted by key. Every expected VM is in exactly one step or here. */
  unplaced: UnplacedWorkload[];
}

/**
 * Plans the first pass. `workloads` are the VMs the spec selects (selection happens while gathering);
 * each is either placed in the step of the node it is active on, or reported in `unplaced` with a reason,
 * checked in this order:
 *
 * 1. NotRunning: not active on any node (see activeNodeOf).
 * 2. SharedFile / UnsafeFile: it names a file that is not its own (see file-ownership.ts).
 * 3. InvalidVolume, ClaimNotFound, ClaimNotBound, ClaimInOtherNamespace: a claim it names cannot be
 *    captured (see capture-problem.ts).
 * 4. NoSharedDisk: active but with neither a file on the shared volume nor a claim. Reported rather than
 *    silently dropped, so the user learns that this VM is not in the backup. Checked before the node rules
 *    because it is a property of the VM that no retry will change.
 * 5. NodeNotReady: its node is not Ready (or unknown), so no Job can run there.
 * 6. NodeSkipped: its node is a control-plane node and spec.ordering.controlPlaneNode is Skip.
 *
 * A VM in the middle of a live migration is placed on its source node like any other: its node's turn may
 * come long after the migration has finished, when the node Job re-checks it, and if it has left by then
 * verification finds it missing and a reconcile round captures it on its new node.
 *
 * Nodes without an active in-scope VM get no step. VMs listed twice are planned once. VMs named explicitly
 * that do not exist (`absent`) are expected too, so that a typo or a deleted VM makes the backup
 * PartiallyFailed (NotFound) instead of a Completed backup that silently lacks it.
 */
export function planDiscovery(
  workloads: readonly ObservedWorkload[],
  nodes: readonly ObservedNode[],
  ordering: OrderingPolicy,
  /** VMs the spec names explicitly that do not exist at all: expected, and reported NotFound. */
  absent: readonly WorkloadRef[] = [],
): DiscoveryPlan {
  const inScope = uniqueBy(workloads, workloadKey);
  const unplaced: UnplacedWorkload[] = [];
  const seen = new Set(inScope.map(workloadKey));
  const notFound = uniqueBy(absent, workloadKey).filter((w) => !seen.has(workloadKey(w)));
  for (const w of notFound) {
    unplaced.push({
      workload: toRef(w),
      reason: "NotFound",
      message: missingReasonMessage("NotFound", {
        workload: w,
        detail: "spec.workloads.names asks for it, but there is no such VM",
      }),
    });
  }
  const placements: NodePlacement[] = [];

  for (const workload of inScope) {
    const node = activeNodeOf(workload);
    const problem = captureProblem(workload);
    if (node === undefined) {
      unplaced.push(unplace(workload, "NotRunning", workload.node, { phase: workload.phase }));
    } else if (problem) {
      unplaced.push(unplace(workload, problem.reason, node, problem.detail ? { detail: problem.detail } : {}));
    } else {
      placements.push({ workload, node });
    }
  }

  const { steps, rejected } = groupIntoSteps(placements, nodes, ordering);
  for (const { workload, node, reason, detail } of rejected) {
    unplaced.push(unplace(workload, reason, node, detail === undefined ? {} : { detail }));
  }

  return {
    expected: [...inScope, ...notFound].map(toRef).sort(compareWorkloads),
    steps,
    unplaced: unplaced.sort((a, b) => compareWorkloads(a.workload, b.workload)),
  };
}

function unplace(
  workload: ObservedWorkload,
  reason: UnplacedWorkload["reason"],
  node: string | undefined,
  extra: { phase?: string; detail?: string } = {},
): UnplacedWorkload {
  return {
    workload: toRef(workload),
    reason,
    message: missingReasonMessage(reason, { workload, ...(node ? { node } : {}), ...extra }),
    ...lastNodeField(node),
  };
}
