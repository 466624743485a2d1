// What a step (NodeSnapshot) and its Job say about the step's progress. Pure: the phase is derived
// from what exists on every pass, so a restarted operator reaches the same conclusion.
import type { NodeSnapshot, NodeSnapshotStatusPhase } from "../../api/v1alpha1/index.js";
import { REPORT_GRACE_MS, type JobView } from "../runtime/job-view.js";

export interface ObservedStep {
  step: NodeSnapshot;
  job?: JobView;
  /** CSI method: the Job that extracts from the claim restored from the step's VolumeSnapshot. */
  extract?: JobView;
}

export interface DerivedStepPhase {
  phase: NodeSnapshotStatusPhase;
  message?: string;
  /** CSI method: the VolumeSnapshot is taken; restore it and start the extract Job. */
  startExtract?: boolean;
  /**
   * The step no longer needs the cut: its agent reported the cut made (status.cutCompletionTime), or its (cut)
   * Job ended, or the step did. A pipelined backup hands the cut on then (pipeline.ts).
   */
  cutDone?: boolean;
}

/**
 * The step's agent wrote its final report (`capturedCount`): its extraction is over, though its pod may
 * not have exited yet.
 */
export const agentReported = (step: NodeSnapshot): boolean => step.status?.capturedCount !== undefined;

/** The phase a step is in, from its recorded status and its Job; with whether its cut is done. */
export function deriveStepPhase(observed: ObservedStep, now: number): DerivedStepPhase {
  const derived = derivePhase(observed, now);
  const { step, job } = observed;
  const cutDone =
    derived.phase !== "Pending" &&
    (derived.phase !== "Running" || !!step.status?.cutCompletionTime || !!job?.complete || !!job?.failed);
  return cutDone ? { ...derived, cutDone } : derived;
}

function derivePhase({ step, job, extract }: ObservedStep, now: number): DerivedStepPhase {
  const recorded = step.status?.phase;
  if (!step.spec.node) return { phase: "Unplaced", message: step.status?.message };
  if (recorded === "Succeeded" || recorded === "Failed") return { phase: recorded, message: step.status?.message };
  const claimSnapshots = step.status?.claimSnapshots?.length ?? 0;
  const snapshot =
    (step.status?.volumeSnapshot?.name ? `VolumeSnapshot ${step.status.volumeSnapshot.name}` : undefined) ??
    (claimSnapshots > 0 ? `${claimSnapshots} VolumeSnapshots of claims` : undefined);
  if (job?.complete && snapshot) {
    // CSI method: the snapshot Job is done; the step goes on with the extract Job (see src/agent/csi.ts),
    // and ends with it (not with the extract agent's report, which comes before its pod exits).
    if (!extract) return { phase: "Running", message: `extracting from ${snapshot}`, startExtract: true };
    if (extract.failed) {
      return {
        phase: "Failed",
        message: `the extract Job failed (${extract.failureReason ?? "Failed"}): ${extract.failureMessage ?? "no message"}`,
      };
    }
    if (!extract.complete) return { phase: "Running", message: `extracting from ${snapshot}` };
    const reported = agentReported(step);
    const completedAt = Date.parse(extract.completionTime ?? "") || now;
    if (!reported && now - completedAt < REPORT_GRACE_MS)
      return { phase: "Running", message: "waiting for the node agent's report" };
    return { phase: "Succeeded", message: agentSummary(step) };
  }
  if (job?.complete) {
    // The agent reports into the step before its pod exits, but the Job's completion can reach this
    // operator first: wait for the report rather than conclude that nothing was captured.
    const reported = agentReported(step);
    const completedAt = Date.parse(job.completionTime ?? "") || now;
    if (!reported && now - completedAt < REPORT_GRACE_MS)
      return { phase: "Running", message: "waiting for the node agent's report" };
    return { phase: "Succeeded", message: agentSummary(step) };
  }
  if (job?.failed) {
    return {
      phase: "Failed",
      message: `the node Job failed (${job.failureReason ?? "Failed"}): ${job.failureMessage ?? "no message"}`,
    };
  }
  if (job) return { phase: "Running", message: step.status?.message };
  // Started before (the operator recorded Running) but its Job is gone: it will not finish. Its VMs
  // are chased in the next round rather than run twice by a second Job.
  if (recorded === "Running") return { phase: "Failed", message: "the node Job disappeared before it finished" };
  return { phase: "Pending" };
}

function agentSummary(step: NodeSnapshot): string {
  const captured = step.status?.captured?.length ?? 0;
  const failed = step.status?.failed?.length ?? 0;
  return `captured ${captured} of ${step.spec.workloads?.length ?? 0} VMs${failed ? `, ${failed} not captured` : ""}`;
}

export const isTerminalStepPhase = (p: NodeSnapshotStatusPhase): boolean =>
  p === "Succeeded" || p === "Failed" || p === "Unplaced";

export function byRoundAndOrder(a: NodeSnapshot, b: NodeSnapshot): number {
  return (
    a.spec.round - b.spec.round || a.spec.order - b.spec.order || (a.spec.node ?? "").localeCompare(b.spec.node ?? "")
  );
}
