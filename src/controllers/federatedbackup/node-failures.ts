// Recent failures per node for the FailureRate ordering policy, read from what the cluster keeps:
// failed node steps (NodeSnapshots) of every backup, so the count survives operator restarts.
import type { NodeSnapshot } from "../../api/v1alpha1/index.js";
import { countRecentFailures } from "../../planning/index.js";

export const FAILURE_WINDOW_MS = 7 * 24 * 3_600_000;

export function countStepFailures(
  steps: readonly NodeSnapshot[],
  now: number,
  windowMs = FAILURE_WINDOW_MS,
): Map<string, number> {
  const events = steps
    .filter((s) => s.spec.node && s.status?.phase === "Failed")
    .map((s) => ({
      node: s.spec.node!,
      at: Date.parse(s.status?.completionTime ?? s.metadata.creationTimestamp ?? "") || now,
    }));
  return countRecentFailures(events, now, windowMs);
}
