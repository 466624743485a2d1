import { captureProblem } from "./capture-problem.js";
import { activeNodeOf } from "./active-node.js";
import { compareWorkloads, lastNodeField, toRef, uniqueBy } from "./compare.js";
import type { MissingReasonContext } from "./missing-reason.js";
import { missingReasonMessage } from "./missing-reason.js";
import type { NodePlacement } from "./node-steps.js";
import { groupIntoSteps } from "./node-steps.js";
import type {
  MissingReason,
  NodeStep,
  ObservedNode,
  ObservedWorkload,
  OrderingPolicy,
  UnplacedWorkload,
  WorkloadRef,
} from "./types.js";
import { workloadKey } from "./types.js";

/** A VM verification found missing, with what is known from earlier rounds. */
export interface MissingWorkload {
  workload: WorkloadRef;
  /** Where it was last seen; kept in the result when the VM is no longer running anywhere. */
  lastNode?: string;
  /** Why it was missing after the previous round; mentioned in the message when the reason changes. */
  previousReason?: MissingReason;
}

export interface ReconcileRoundPlan {
  /** One step per node now running at least one missing VM, in processing order. */
  steps: NodeStep[];
  /** Missing VMs this round cannot capture, sorted by key. */
  unresolved: UnplacedWorkload[];
}

/**
 * Plans one extra round for the VMs still missing: each is looked up again in `observed` and placed on the
 * node it is active on now; VMs missing on the same node share one step, and the steps are ordered by the
 * backup's ordering policy over these VMs only. `round` is the round being planned (2 is the first extra
 * round) and appears in the messages. VMs that cannot be placed are unresolved, checked in this order:
 *
 * 1. NotFound: no longer in `observed` (deleted).
 * 2. NotRunning: not active on any node.
 * 3. SharedFile / UnsafeFile, the claim problems, then NoSharedDisk (capture-problem.ts): properties of
 *    the VM's disks.
 * 4. Migrating: a live migration is in progress, see below.
 * 5. NodeNotReady / NodeSkipped: as in planDiscovery.
 *
 * Migrating VMs are not placed on their source node although they are still active there. A reconcile step
 * starts right away, and a freeze and snapshot that race the hand-over either capture a VM whose disks the
 * target node is taking over, or disturb (and may abort) the migration itself. Leaving them unresolved for
 * this round lets a later round capture them on the node they land on; if no round is left, they are
 * reported as Migrating.
 */
export function planReconcileRound(
  missing: readonly MissingWorkload[],
  observed: readonly ObservedWorkload[],
  nodes: readonly ObservedNode[],
  ordering: OrderingPolicy,
  round: number,
): ReconcileRoundPlan {
  const observedByKey = new Map(observed.map((w) => [workloadKey(w), w]));
  const missingByKey = new Map<string, MissingWorkload>();
  const unresolved: UnplacedWorkload[] = [];
  const placements: NodePlacement[] = [];

  for (const item of uniqueBy(missing, (m) => workloadKey(m.workload))) {
    missingByKey.set(workloadKey(item.workload), item);
    const leave = (reason: MissingReason, node: string | undefined, phase?: string, detail?: string) =>
      unresolved.push(unresolve(item, reason, round, node, { phase, detail }));

    const workload = observedByKey.get(workloadKey(item.workload));
    const node = workload && activeNodeOf(workload);
    const problem = workload && captureProblem(workload);
    if (workload === undefined) leave("NotFound", item.lastNode);
    else if (node === undefined) leave("NotRunning", workload.node ?? item.lastNode, workload.phase);
    else if (problem) leave(problem.reason, node, undefined, problem.detail);
    else if (workload.migrating) leave("Migrating", node);
    else placements.push({ workload, node });
  }

  const { steps, rejected } = groupIntoSteps(placements, nodes, ordering);
  for (const { workload, node, reason, detail } of rejected) {
    const item = missingByKey.get(workloadKey(workload));
    if (item) unresolved.push(unresolve(item, reason, round, node, { detail }));
  }
  return { steps, unresolved: unresolved.sort((a, b) => compareWorkloads(a.workload, b.workload)) };
}

function unresolve(
  item: MissingWorkload,
  reason: MissingReason,
  round: number,
  node: string | undefined,
  extra: { phase?: string | undefined; detail?: string | undefined } = {},
): UnplacedWorkload {
  const ctx: MissingReasonContext = { workload: item.workload, round };
  if (node) ctx.node = node;
  if (extra.phase !== undefined) ctx.phase = extra.phase;
  if (extra.detail !== undefined) ctx.detail = extra.detail;
  if (item.previousReason !== undefined) ctx.previousReason = item.previousReason;
  return {
    workload: toRef(item.workload),
    reason,
    message: missingReasonMessage(reason, ctx),
    ...lastNodeField(node),
  };
}
