import { activeNodeOf } from "./active-node.js";
import { compareStrings, compareWorkloads } from "./compare.js";
import type { NodeCandidate } from "./order-nodes.js";
import { orderNodes } from "./order-nodes.js";
import type { ObservedNode, ObservedWorkload, OrderingPolicy, WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

// The restore planner: which node each VM's disks are restored on, and what happens to the running VM
// first. Plain data mirroring spec/status of a WorkloadRestore; the API types stay out of src/planning.

/** One VM to restore, already resolved by the caller (an empty spec.workloads is expanded to every VM). */
export interface RestoreWorkload extends WorkloadRef {
  /** spec.workloads[].targetNode: overrides spec.placement for this VM. */
  targetNode?: string;
  /** The FederatedBackup the disks come from. */
  backup: string;
  /** The node the VM was captured on, as recorded in the backup. */
  originalNode?: string;
}

export type InactiveTargetPolicy = "MostFreeResources" | "FewestWorkloads" | "OriginalNode";

/** spec.placement. */
export interface RestorePlacement {
  /** Default ActiveNode. */
  policy?: "ActiveNode" | "Specified";
  /** Only with Specified. */
  targetNode?: string;
  /** Default { policy: OriginalNode }. When both are set (the CRD forbids it) node wins. */
  inactiveTarget?: { node?: string; policy?: InactiveTargetPolicy };
}

/** spec.groups[]: VMs restored on one node as a unit. */
export interface RestoreGroup {
  name: string;
  workloads: WorkloadRef[];
}

export interface RestorePlanInput {
  workloads: readonly RestoreWorkload[];
  /** The VMIs now. */
  observed: readonly ObservedWorkload[];
  nodes: readonly ObservedNode[];
  /** Default { policy: ActiveNode, inactiveTarget: { policy: OriginalNode } }. */
  placement?: RestorePlacement;
  /** spec.conflictPolicy as the API server defaulted it (the CRD holds the default). */
  conflictPolicy: "Migrate" | "Stop";
  groups?: readonly RestoreGroup[];
  ordering: OrderingPolicy;
}

export type RestoreAction = "RestoreInPlace" | "MigrateThenRestore" | "StopThenRestore" | "RestoreThenStart" | "Skip";

/** One status.plan entry. */
export interface RestorePlanEntry extends WorkloadRef {
  backup: string;
  /** The node the VM runs on now; absent when it is not running. */
  activeNode?: string;
  /** Absent for Skip. */
  restoreNode?: string;
  action: RestoreAction;
  /** One human sentence: why this node and this action. */
  reason: string;
  group?: string;
  /**
   * What keeps the VM from being restored as asked, in CamelCase: why it is skipped (always set for Skip), or a
   * mistake in the request the plan worked around (ListedTwice). A RestoreProblem's reason, or, for VMs the
   * caller left out before planning, the caller's own.
   */
  problem?: string;
}

/**
 * Why a VM is skipped, or a mistake in the spec that the plan worked around: one per VM and cause.
 *
 * - ListedTwice: it is listed more than once in spec.workloads; planned once, from its first entry.
 * - InGroupsTwice: it is in more than one group (skipped).
 * - GroupTargetsDiffer: the members of its group name different targetNodes (skipped).
 * - TargetNodeRequired: placement Specified, and neither the VM nor the spec names a node (skipped).
 * - TargetNodeNotFound: the node the spec names for it (its targetNode, placement.targetNode or
 *   placement.inactiveTarget.node) does not exist (skipped).
 * - NodeNotFound: the restore node chosen for it (where it runs, or was captured) does not exist (skipped).
 * - NodeNotReady: its restore node is not Ready (skipped).
 * - NoEligibleNode: it is not running and no Ready, schedulable node is there to pick (skipped).
 * - OriginalNodeUnknown: it is not running and the backup does not record where it was captured (skipped).
 * - ControlPlaneSkipped: its restore node is a control-plane node and ordering.controlPlaneNode is Skip (skipped).
 */
export interface RestoreProblem extends WorkloadRef {
  reason:
    | "ListedTwice"
    | "InGroupsTwice"
    | "GroupTargetsDiffer"
    | "TargetNodeRequired"
    | "TargetNodeNotFound"
    | "NodeNotFound"
    | "NodeNotReady"
    | "NoEligibleNode"
    | "OriginalNodeUnknown"
    | "ControlPlaneSkipped";
  /** One human sentence. */
  message: string;
}

type ProblemReason = RestoreProblem["reason"];

export interface RestorePlan {
  /** Non-Skip entries by (position of restoreNode in nodeOrder, namespace, name), then Skip entries by name. */
  entries: RestorePlanEntry[];
  /** The restore nodes in processing order. */
  nodeOrder: string[];
  /** Every problem, by VM (namespace, name), then in the order found. */
  problems: RestoreProblem[];
}

/** The VMs that share one restore node: a spec group, or a single ungrouped VM. */
interface Unit {
  group?: string;
  members: RestoreWorkload[];
}

/**
 * Where a unit goes, and why, as a noun phrase ("the node it runs on"), and whether the spec named that node; or
 * why it cannot go anywhere.
 */
type NodeChoice = { node: string; why: string; named: boolean } | Skipping;

/** Why a VM is skipped: the plan entry's sentence and its machine-readable reason. */
interface Skipping {
  skip: string;
  problem: ProblemReason;
}

interface Context {
  placement: RestorePlacement;
  nodeByName: Map<string, ObservedNode>;
  activeNode: Map<string, string>;
  /** Ready, schedulable nodes an automatic inactiveTarget policy may pick, sorted by name. */
  eligible: ObservedNode[];
  runningCount: Map<string, number>;
}

/**
 * Plans a WorkloadRestore.
 *
 * Restore node, per unit (a group, or one ungrouped VM):
 * 1. a targetNode of the VM (of any member; members naming different nodes → every member Skip);
 * 2. placement Specified → placement.targetNode;
 * 3. the node the VM runs on now (for a group: where most members run, ties by name);
 * 4. nothing runs → placement.inactiveTarget: its node, or MostFreeResources (most free memory, then CPU,
 *    then name), FewestWorkloads (fewest running VMs, then name), OriginalNode (the node it was captured
 *    on; for a group the node most members were captured on, ties by name). The automatic policies pick
 *    among Ready, schedulable nodes (not control-plane ones when ordering.controlPlaneNode is Skip), and
 *    look at the cluster as observed now rather than at earlier choices of this plan, so the plan does not
 *    depend on the order the VMs are listed in.
 * A restore node that does not exist or is not Ready, or a control-plane node left out by
 * ordering.controlPlaneNode Skip, makes the unit Skip.
 *
 * A VM listed twice is planned once, from its first entry; a VM in two groups is skipped. Every Skip entry,
 * and every VM listed twice, is also reported in problems, with a machine-readable reason (see RestoreProblem).
 */
export function planRestore(input: RestorePlanInput): RestorePlan {
  const placement = input.placement ?? {};
  const problems: RestoreProblem[] = [];
  const skipped: RestorePlanEntry[] = [];
  const skipUnit = (w: WorkloadRef & { backup: string }, why: Skipping, group?: string) => {
    problems.push({ ...ref(w), reason: why.problem, message: why.skip });
    skipped.push(skip(w, ctx, why, group));
  };

  const workloads = dedupeWorkloads(input.workloads, problems);
  const ctx = buildContext(input, placement);

  // Group membership of the VMs being restored; members of several groups are skipped.
  const groupsOf = new Map<string, string[]>();
  for (const group of input.groups ?? []) {
    for (const key of new Set(group.workloads.map(workloadKey))) {
      groupsOf.set(key, [...(groupsOf.get(key) ?? []), group.name]);
    }
  }
  const units: Unit[] = [];
  const unitOfGroup = new Map<string, Unit>();
  for (const w of workloads) {
    const groups = groupsOf.get(workloadKey(w)) ?? [];
    const [group] = groups;
    if (groups.length > 1) {
      const names = groups.join(", ");
      skipUnit(w, {
        skip: `Skipped: it is listed in more than one group (${names}); a VM can be in one only.`,
        problem: "InGroupsTwice",
      });
    } else if (group === undefined) {
      units.push({ members: [w] });
    } else {
      let unit = unitOfGroup.get(group);
      if (unit === undefined) {
        unit = { group, members: [] };
        unitOfGroup.set(group, unit);
        units.push(unit);
      }
      unit.members.push(w);
    }
  }

  const planned: RestorePlanEntry[] = [];
  for (const unit of units) {
    const choice = chooseNode(unit, ctx);
    const rejection = "skip" in choice ? choice : nodeRejection(choice, ctx);
    for (const w of unit.members) {
      if (rejection !== undefined) skipUnit(w, rejection, unit.group);
      else if (!("skip" in choice)) planned.push(entryFor(w, unit.group, choice, input.conflictPolicy, ctx));
    }
  }

  const { order, skipped: leftOut } = orderNodes(candidatesFor(planned, input), input.ordering);
  const leftOutSet = new Set(leftOut);
  const position = new Map(order.map((node, index) => [node, index]));
  const kept: RestorePlanEntry[] = [];
  for (const entry of planned) {
    const node = entry.restoreNode ?? "";
    if (!leftOutSet.has(node)) kept.push(entry);
    else {
      const reason = `Skipped: restore node ${node} is a control-plane node and ordering.controlPlaneNode is Skip.`;
      skipUnit(entry, { skip: reason, problem: "ControlPlaneSkipped" }, entry.group);
    }
  }

  // A VM listed twice is planned from its first entry: its entry says so unless it is skipped for a reason of its own.
  const problemOf = new Map<string, ProblemReason>();
  for (const p of problems) if (p.reason !== "ListedTwice") problemOf.set(workloadKey(p), p.reason);
  for (const p of problems) if (!problemOf.has(workloadKey(p))) problemOf.set(workloadKey(p), p.reason);
  const withProblem = (e: RestorePlanEntry): RestorePlanEntry => {
    const problem = problemOf.get(workloadKey(e));
    return problem === undefined ? e : { ...e, problem };
  };

  kept.sort(
    (a, b) =>
      (position.get(a.restoreNode ?? "") ?? 0) - (position.get(b.restoreNode ?? "") ?? 0) || compareWorkloads(a, b),
  );
  skipped.sort(compareWorkloads);
  // Stable: problems of one VM stay in the order they were found.
  problems.sort(compareWorkloads);
  return { entries: [...kept, ...skipped].map(withProblem), nodeOrder: order, problems };
}

function dedupeWorkloads(workloads: readonly RestoreWorkload[], problems: RestoreProblem[]): RestoreWorkload[] {
  const count = new Map<string, number>();
  const unique: RestoreWorkload[] = [];
  for (const w of workloads) {
    const key = workloadKey(w);
    const seen = count.get(key) ?? 0;
    if (seen === 0) unique.push(w);
    count.set(key, seen + 1);
  }
  for (const w of unique) {
    const times = count.get(workloadKey(w)) ?? 1;
    if (times > 1) {
      problems.push({
        ...ref(w),
        reason: "ListedTwice",
        message: `It is listed ${times} times in spec.workloads; it is planned once, from its first entry.`,
      });
    }
  }
  return unique;
}

function buildContext(input: RestorePlanInput, placement: RestorePlacement): Context {
  const activeNode = new Map<string, string>();
  for (const w of input.observed) {
    const node = activeNodeOf(w);
    if (node !== undefined && !activeNode.has(workloadKey(w))) activeNode.set(workloadKey(w), node);
  }
  const runningCount = new Map<string, number>();
  for (const node of activeNode.values()) runningCount.set(node, (runningCount.get(node) ?? 0) + 1);
  const excludeControlPlane = input.ordering.controlPlaneNode === "Skip";
  const eligible = input.nodes
    .filter((n) => n.ready && n.schedulable && !(excludeControlPlane && n.controlPlane))
    .sort((a, b) => compareStrings(a.name, b.name));
  return { placement, nodeByName: new Map(input.nodes.map((n) => [n.name, n])), activeNode, eligible, runningCount };
}

function chooseNode(unit: Unit, ctx: Context): NodeChoice {
  const { group, members } = unit;
  const inGroup = group === undefined ? "" : ` of group ${group}`;

  const targets = [...new Set(members.flatMap((w) => (w.targetNode === undefined ? [] : [w.targetNode])))].sort(
    compareStrings,
  );
  const [target] = targets;
  if (targets.length > 1) {
    return {
      skip: `Skipped: the members of group ${group ?? ""} name different targetNodes (${targets.join(", ")}), so the group has no single restore node.`,
      problem: "GroupTargetsDiffer",
    };
  }
  if (target !== undefined) {
    if (group === undefined) return { node: target, why: "the targetNode of this VM", named: true };
    const setBy = members.filter((w) => w.targetNode === target).map(workloadKey);
    return { node: target, why: `the targetNode of ${setBy.join(", ")}${inGroup}`, named: true };
  }

  if (ctx.placement.policy === "Specified") {
    if (ctx.placement.targetNode !== undefined)
      return { node: ctx.placement.targetNode, why: "spec.placement.targetNode", named: true };
    return {
      skip: "Skipped: placement policy Specified needs a targetNode, and neither the VM nor the spec sets one.",
      problem: "TargetNodeRequired",
    };
  }

  const running = majority(members.map((w) => ctx.activeNode.get(workloadKey(w))));
  if (running !== undefined) {
    if (group === undefined) return { node: running.node, why: "the node it runs on", named: false };
    return {
      node: running.node,
      why: `where ${running.count} of ${members.length} members${inGroup} run`,
      named: false,
    };
  }

  const notRunning = group === undefined ? "it is not running" : `no member${inGroup} is running`;
  const inactive = ctx.placement.inactiveTarget ?? {};
  if (inactive.node !== undefined)
    return { node: inactive.node, why: `${notRunning}; spec.placement.inactiveTarget.node`, named: true };
  const noneEligible: Skipping = {
    skip: `Skipped: ${notRunning} and no Ready, schedulable node is available.`,
    problem: "NoEligibleNode",
  };
  const policy = inactive.policy ?? "OriginalNode";
  switch (policy) {
    case "MostFreeResources": {
      const [best] = [...ctx.eligible].sort(
        (a, b) => b.freeMemoryBytes - a.freeMemoryBytes || b.freeCpuMilli - a.freeCpuMilli,
      );
      if (best === undefined) return noneEligible;
      return { node: best.name, why: `${notRunning}; the node with the most free memory and CPU`, named: false };
    }
    case "FewestWorkloads": {
      const running = (n: ObservedNode) => ctx.runningCount.get(n.name) ?? 0;
      const [best] = [...ctx.eligible].sort((a, b) => running(a) - running(b));
      if (best === undefined) return noneEligible;
      return {
        node: best.name,
        why: `${notRunning}; the node running the fewest VMs (${running(best)})`,
        named: false,
      };
    }
    case "OriginalNode": {
      const original = majority(members.map((w) => w.originalNode));
      if (original === undefined) {
        return {
          skip: `Skipped: ${notRunning} and the backup does not record the node it was captured on.`,
          problem: "OriginalNodeUnknown",
        };
      }
      const where = group === undefined ? "the node it was captured on" : "the node most members were captured on";
      return { node: original.node, why: `${notRunning}; ${where}`, named: false };
    }
    default:
      throw new Error(`unknown inactiveTarget policy ${JSON.stringify(policy)}`);
  }
}

/** The most frequent defined value, ties by name; undefined when there is none. */
function majority(values: readonly (string | undefined)[]): { node: string; count: number } | undefined {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== undefined && v !== "") counts.set(v, (counts.get(v) ?? 0) + 1);
  const [best] = [...counts].sort(([a, x], [b, y]) => y - x || compareStrings(a, b));
  return best === undefined ? undefined : { node: best[0], count: best[1] };
}

/** Why the chosen node cannot be used, or undefined when it can. */
function nodeRejection(choice: { node: string; why: string; named: boolean }, ctx: Context): Skipping | undefined {
  const { node, why, named } = choice;
  const observed = ctx.nodeByName.get(node);
  if (observed === undefined) {
    return {
      skip: `Skipped: restore node ${node} (${why}) does not exist.`,
      problem: named ? "TargetNodeNotFound" : "NodeNotFound",
    };
  }
  if (!observed.ready) return { skip: `Skipped: restore node ${node} (${why}) is not Ready.`, problem: "NodeNotReady" };
  return undefined;
}

function entryFor(
  w: RestoreWorkload,
  group: string | undefined,
  choice: { node: string; why: string; named: boolean },
  conflictPolicy: "Migrate" | "Stop",
  ctx: Context,
): RestorePlanEntry {
  const active = ctx.activeNode.get(workloadKey(w));
  const restoreNode = choice.node;
  const on = `Restore on ${restoreNode} (${choice.why})`;
  let action: RestoreAction;
  let what: string;
  if (active === restoreNode) {
    // The one running instance is stopped before its disks are written and started again only afterwards, on
    // the same node: at no moment is there a second instance, nor one running on half-restored disks.
    action = "RestoreInPlace";
    what = `it runs there, so the controller stops it, restores its disks and starts it again on ${restoreNode}`;
  } else if (active !== undefined && conflictPolicy === "Migrate") {
    // A live migration moves the one instance (KubeVirt hands over to the target and tears down the source);
    // once it runs on the restore node it is handled exactly like RestoreInPlace.
    action = "MigrateThenRestore";
    what = `it is live-migrated from ${active} first, then stopped, restored and started again there`;
  } else if (active !== undefined) {
    // The instance on the other node is stopped, and confirmed gone, before anything is restored or started on
    // the restore node, so the old and the new instance never run at the same time.
    action = "StopThenRestore";
    what = `it is stopped on ${active} first (conflictPolicy Stop), then restored and started on ${restoreNode}`;
  } else {
    // Nothing runs, so the start after the restore creates the only instance. The controller checks again
    // that the VM is still not running before it starts it, as someone may have started it meanwhile.
    action = "RestoreThenStart";
    what = "it is not running, so its disks are restored and then it is started there";
  }
  return {
    ...ref(w),
    backup: w.backup,
    ...(active === undefined ? {} : { activeNode: active }),
    restoreNode,
    action,
    reason: `${on}: ${what}.`,
    ...(group === undefined ? {} : { group }),
  };
}

function skip(w: WorkloadRef & { backup: string }, ctx: Context, why: Skipping, group?: string): RestorePlanEntry {
  const active = ctx.activeNode.get(workloadKey(w));
  return {
    ...ref(w),
    backup: w.backup,
    ...(active === undefined ? {} : { activeNode: active }),
    action: "Skip",
    reason: why.skip,
    ...(group === undefined ? {} : { group }),
    problem: why.problem,
  };
}

function ref(w: WorkloadRef): WorkloadRef {
  return { namespace: w.namespace, name: w.name };
}

/** What orderNodes needs to know about each restore node: the VMs restored there and the node's figures. */
function candidatesFor(planned: readonly RestorePlanEntry[], input: RestorePlanInput): NodeCandidate[] {
  const observedByKey = new Map<string, ObservedWorkload>();
  for (const w of input.observed) if (!observedByKey.has(workloadKey(w))) observedByKey.set(workloadKey(w), w);
  const nodeByName = new Map(input.nodes.map((n) => [n.name, n]));
  const byNode = new Map<string, NodeCandidate>();
  for (const entry of planned) {
    const name = entry.restoreNode ?? "";
    const node = nodeByName.get(name);
    const candidate = byNode.get(name) ?? {
      name,
      workloads: 0,
      critical: 0,
      maxPriority: Number.NEGATIVE_INFINITY,
      freeCpuMilli: node?.freeCpuMilli ?? 0,
      freeMemoryBytes: node?.freeMemoryBytes ?? 0,
      recentFailures: node?.recentFailures ?? 0,
      controlPlane: node?.controlPlane ?? false,
    };
    const observed = observedByKey.get(workloadKey(entry));
    candidate.workloads += 1;
    if (observed?.critical === true) candidate.critical += 1;
    candidate.maxPriority = Math.max(candidate.maxPriority, observed?.priority ?? 0);
    byNode.set(name, candidate);
  }
  return [...byNode.values()];
}
