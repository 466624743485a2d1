// What a FederatedBackup's status write adds to the metrics: a pure function of the status before and
// after the write (and the run's steps). Called only after the write succeeded, and the write is
// conditional on the resourceVersion the old status was read at: a run enters a finished phase in exactly
// one successful write, so what is recorded then is recorded once, across conflicts and restarts (a
// restarted operator reads the finished status and records nothing).
import { secondsBetween } from "../../api/timestamps.js";
import { isFinished } from "../../api/phases.js";
import type { FederatedBackup, FederatedBackupStatus, NodeSnapshot } from "../../api/v1alpha1/index.js";
import type { BackupRecord } from "../../telemetry/metrics.js";

/**
 * The record for a status transition, or undefined when it adds nothing. A run that finishes with this
 * write counts its result, duration and captured VMs, and the durations and freeze windows of its node
 * steps (each step belongs to one run, so each is counted once). The gauges are not set here but from the
 * status itself (backupState), on every replica.
 */
export function backupTransition(
  backup: Pick<FederatedBackup, "metadata">,
  old: FederatedBackupStatus | undefined,
  next: FederatedBackupStatus,
  steps: readonly NodeSnapshot[],
): BackupRecord | undefined {
  if (isFinished(old?.phase) || !isFinished(next.phase)) return undefined;
  const nodeStepSeconds: number[] = [];
  const freezeSeconds: number[] = [];
  for (const step of steps) {
    if (!step.spec.node) continue;
    const seconds = secondsBetween(step.status?.startTime, step.status?.completionTime);
    if (seconds !== undefined) nodeStepSeconds.push(seconds);
    for (const c of step.status?.captured ?? []) {
      if (typeof c.freezeWindowMs === "number" && c.freezeWindowMs >= 0) freezeSeconds.push(c.freezeWindowMs / 1000);
    }
  }
  const durationSeconds = secondsBetween(next.startTime, next.completionTime);
  return {
    namespace: backup.metadata.namespace ?? "",
    name: backup.metadata.name ?? "",
    finished: {
      result: next.phase!,
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      workloadsCaptured: next.progress?.workloadsCaptured ?? 0,
    },
    nodeStepSeconds,
    freezeSeconds,
  };
}

/**
 * The gauge values a FederatedBackup's status gives: when it succeeded (Completed, its completionTime in
 * seconds since the epoch) and, once finished, its missing VMs by reason (the status lists 100 with their
 * reason; the rest count as Unlisted).
 */
export function backupState(status: FederatedBackupStatus | undefined): {
  successAt?: number;
  missing?: Record<string, number>;
} {
  if (!status || !isFinished(status.phase)) return {};
  const missing: Record<string, number> = {};
  for (const m of status.missing ?? []) missing[m.reason] = (missing[m.reason] ?? 0) + 1;
  if (status.missingTruncated) missing.Unlisted = status.missingTruncated;
  const at = Date.parse(status.completionTime ?? "");
  return { ...(status.phase === "Completed" && !Number.isNaN(at) ? { successAt: at / 1000 } : {}), missing };
}
