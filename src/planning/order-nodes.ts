import { compareStrings } from "./compare.js";
import { seededShuffle } from "./seeded-shuffle.js";
import type { OrderingPolicy } from "./types.js";

/** What the ordering policies know about a node that has work to do. */
export interface NodeCandidate {
  name: string;
  /** Selected VMs to capture on the node. */
  workloads: number;
  /** Of those, how many are labelled fedbackup.io/critical=true. */
  critical: number;
  /** Highest fedbackup.io/priority among them. */
  maxPriority: number;
  freeCpuMilli: number;
  freeMemoryBytes: number;
  recentFailures: number;
  controlPlane: boolean;
}

export interface NodeOrder {
  /** Node names in processing order. */
  order: string[];
  /** Control-plane nodes left out by controlPlaneNode: Skip, in the position the policy gave them. */
  skipped: string[];
}

type Comparator = (a: NodeCandidate, b: NodeCandidate) => number;

/** Larger values first. Written with comparisons rather than b - a so Infinity never yields NaN. */
const descending =
  (value: (c: NodeCandidate) => number): Comparator =>
  (a, b) => {
    const x = value(a);
    const y = value(b);
    return x > y ? -1 : x < y ? 1 : 0;
  };

const byName: Comparator = (a, b) => compareStrings(a.name, b.name);

/** The first comparator that tells two nodes apart decides; every chain ends with byName so none ties. */
const chain =
  (...comparators: Comparator[]): Comparator =>
  (a, b) => {
    for (const compare of comparators) {
      const result = compare(a, b);
      if (result !== 0) return result;
    }
    return 0;
  };

// Most VMs first: the bulk of the backup is done while the cluster is known to be in a good state.
const byWorkloadCount = chain(
  descending((c) => c.workloads),
  byName,
);
// Shakiest nodes first: capture their VMs while they are still up.
const byFailureRate = chain(
  descending((c) => c.recentFailures),
  byName,
);
const byCriticalWorkload = chain(
  descending((c) => c.critical),
  descending((c) => c.maxPriority),
  descending((c) => c.workloads),
  byName,
);
// Most headroom first: the snapshot Job's extra load hurts the VMs there the least.
const byFreeResources = chain(
  descending((c) => c.freeMemoryBytes),
  descending((c) => c.freeCpuMilli),
  byName,
);

/**
 * Orders the nodes that have work to do. All ties are broken by node name (ascending, by code unit), so the
 * same input always yields the same plan.
 *
 * - WorkloadCount: most workloads first.
 * - FailureRate: most recentFailures first.
 * - CriticalWorkload: most critical workloads first, then highest maxPriority, then most workloads.
 * - FreeResources: most free memory first, then most free CPU.
 * - Explicit: the order of `ordering.nodes`. Candidates that are not listed are NOT skipped: they come after
 *   the listed ones, in WorkloadCount order, so a stale list never silently drops VMs. Listed names that are
 *   not candidates have nothing to do and are ignored; a name listed twice counts at its first position.
 * - Random: a shuffle of the name-sorted candidates seeded with `ordering.seed` (default 0); the same seed
 *   and the same candidates give the same order whatever order the candidates came in.
 *
 * Then controlPlaneNode moves control-plane nodes to the front (First) or the end (Last), keeping their
 * relative order, or removes them into `skipped` (Skip). Absent: they are ordered like any other node.
 *
 * Candidate names are expected to be unique.
 */
export function orderNodes(candidates: readonly NodeCandidate[], ordering: OrderingPolicy): NodeOrder {
  const ordered = orderByPolicy(candidates, ordering);
  const controlPlane = ordered.filter((c) => c.controlPlane).map((c) => c.name);
  const workers = ordered.filter((c) => !c.controlPlane).map((c) => c.name);
  switch (ordering.controlPlaneNode) {
    case "First":
      return { order: [...controlPlane, ...workers], skipped: [] };
    case "Last":
      return { order: [...workers, ...controlPlane], skipped: [] };
    case "Skip":
      return { order: workers, skipped: controlPlane };
    case undefined:
      return { order: ordered.map((c) => c.name), skipped: [] };
    default:
      throw new Error(`unknown controlPlaneNode ${JSON.stringify(ordering.controlPlaneNode)}`);
  }
}

function orderByPolicy(candidates: readonly NodeCandidate[], ordering: OrderingPolicy): NodeCandidate[] {
  const sorted = (compare: Comparator) => [...candidates].sort(compare);
  switch (ordering.policy) {
    case "WorkloadCount":
      return sorted(byWorkloadCount);
    case "FailureRate":
      return sorted(byFailureRate);
    case "CriticalWorkload":
      return sorted(byCriticalWorkload);
    case "FreeResources":
      return sorted(byFreeResources);
    case "Explicit":
      return explicitOrder(candidates, ordering.nodes ?? []);
    case "Random":
      return seededShuffle(sorted(byName), ordering.seed ?? 0);
    default:
      // The spec arrives as untyped JSON; an unknown policy is a bug upstream, not something to guess at.
      throw new Error(`unknown ordering policy ${JSON.stringify((ordering as { policy: unknown }).policy)}`);
  }
}

function explicitOrder(candidates: readonly NodeCandidate[], listed: readonly string[]): NodeCandidate[] {
  const position = new Map<string, number>();
  listed.forEach((name, index) => {
    if (!position.has(name)) position.set(name, index);
  });
  const inList = candidates.filter((c) => position.has(c.name));
  const notInList = candidates.filter((c) => !position.has(c.name));
  inList.sort((a, b) => (position.get(a.name) ?? 0) - (position.get(b.name) ?? 0));
  return [...inList, ...notInList.sort(byWorkloadCount)];
}
