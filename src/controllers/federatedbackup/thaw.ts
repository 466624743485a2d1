// VMs a lost node may have left frozen. The agent thaws in every outcome it lives through, but when its
// node dies mid-step no unfreeze may ever arrive, and a guest stays frozen until KubeVirt's unfreeze
// timeout (which may be long, or off). The same when its agent is killed (its Job out of retries). So a step
// failed with its node lost, or with its Job failed or gone, is marked thawPending, and the
// operator thaws each of its VMs that is still frozen as soon as it can be reached again: running on a
// Ready node (its own after the node came back, or another after it restarted there). Pure.
import type { NodeSnapshot, NodeSnapshotStatusThawedEntry } from "../../api/v1alpha1/index.js";
import type { ObservedNode, WorkloadRef } from "../../planning/index.js";
import { workloadKey } from "../../planning/index.js";

export interface FreezeView extends WorkloadRef {
  /** The VMI's status.fsFreezeStatus is "frozen". */
  frozen: boolean;
  phase: string;
  node?: string;
}

export interface ThawDecision {
  /** Still frozen and reachable: thaw them now. */
  thaw: Array<WorkloadRef & { node: string; step: string }>;
  /** Steps every VM of which is settled (thawed now, not frozen, or gone): their thawPending ends. */
  settled: string[];
  /** Some VM is frozen but not reachable yet: look again later. */
  waiting: boolean;
}

export function decideThaws(
  steps: readonly NodeSnapshot[],
  vmis: ReadonlyMap<string, FreezeView>,
  nodes: readonly ObservedNode[],
): ThawDecision {
  const ready = new Set(nodes.filter((n) => n.ready).map((n) => n.name));
  const decision: ThawDecision = { thaw: [], settled: [], waiting: false };
  for (const step of steps) {
    if (!step.status?.thawPending) continue;
    let unreachable = false;
    for (const w of step.spec.workloads ?? []) {
      const vmi = vmis.get(workloadKey(w));
      if (!vmi?.frozen) continue; // gone, or not frozen: nothing to undo
      if (vmi.phase === "Running" && vmi.node && ready.has(vmi.node)) {
        decision.thaw.push({ namespace: w.namespace, name: w.name, node: vmi.node, step: step.metadata.name! });
      } else {
        unreachable = true;
      }
    }
    if (unreachable) decision.waiting = true;
    else decision.settled.push(step.metadata.name!);
  }
  return decision;
}

/** The step's record of thawed VMs with these added (bounded like the CRD: the newest are kept). */
export function withThawed(
  previous: readonly NodeSnapshotStatusThawedEntry[] | undefined,
  thawed: ReadonlyArray<WorkloadRef & { node: string }>,
  time: string,
): NodeSnapshotStatusThawedEntry[] {
  return [
    ...(previous ?? []),
    ...thawed.map((t) => ({ namespace: t.namespace, name: t.name, node: t.node, time })),
  ].slice(-1000);
}
