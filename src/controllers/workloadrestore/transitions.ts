// What a WorkloadRestore's status write adds to the metrics: a pure function of the status before and
// after the write (and the run's NodeRestores), called only after the write succeeded (see
// federatedbackup/transitions.ts for why that records each finished run once). Dry runs restore nothing
// and add nothing.
import { isFinished } from "../../api/phases.js";
import type { NodeRestore, WorkloadRestore, WorkloadRestoreStatus } from "../../api/v1alpha1/index.js";
import type { RestoreRecord } from "../../telemetry/metrics.js";
import { secondsBetween } from "../../api/timestamps.js";

export function restoreTransition(
  restore: Pick<WorkloadRestore, "spec">,
  old: WorkloadRestoreStatus | undefined,
  next: WorkloadRestoreStatus,
  steps: readonly NodeRestore[],
): RestoreRecord | undefined {
  if (restore.spec.dryRun || isFinished(old?.phase) || !isFinished(next.phase)) return undefined;
  const nodeStepSeconds: number[] = [];
  for (const step of steps) {
    const seconds = secondsBetween(step.status?.startTime, step.status?.completionTime);
    if (seconds !== undefined) nodeStepSeconds.push(seconds);
  }
  const durationSeconds = secondsBetween(next.startTime, next.completionTime);
  return {
    finished: { result: next.phase!, ...(durationSeconds !== undefined ? { durationSeconds } : {}) },
    nodeStepSeconds,
  };
}
