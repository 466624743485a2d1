// Recent failures per node for the FailureRate ordering policy, from what the cluster keeps, so the
// count survives operator restarts: failed node steps (NodeSnapshots) of every backup, and the NotReady
// transitions the operator recorded (src/k8s/node-health.ts).
import type { NodeSnapshot } from "../../api/v1alpha1/index.js";
import { countRecentFailures } from "../../planning/index.js";

export const FAILURE_WINDOW_MS = 7 * 24 * 3_600_000;

export function countNodeFailures(
  steps: readonly NodeSnapshot[],
  notReady: ReadonlyArray<{ node: string; at: number }>,
  now: number,
  windowMs = FAILURE_WINDOW_MS,
): Map<string, number> {
  const failedSteps = steps
    .filter((s) => s.spec.node && s.status?.phase === "Failed")
    .map((s) => ({
      node: s.spec.node!,
      at: Date.parse(s.status?.completionTime ?? s.metadata.creationTimestamp ?? "") || now,
    }));
  return countRecentFailures([...failedSteps, ...notReady], now, windowMs);
}
