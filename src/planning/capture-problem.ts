// Why a VM that is active on a node still cannot be captured: a property of its disks, which no retry
// changes (or, for a claim not Bound yet, one the next backup may find changed). Discovery and the
// verification rounds ask the same question in the same order.
import type { MissingReason, ObservedWorkload } from "./types.js";

export interface CaptureProblem {
  reason: MissingReason;
  detail?: string;
}

/**
 * In order: a file that is not its own (SharedFile, UnsafeFile), a claim that cannot be captured
 * (InvalidVolume, ClaimNotFound, ClaimNotBound, ClaimInOtherNamespace), then nothing to capture at all
 * (NoSharedDisk: neither a file on the shared volume nor a claim). Undefined when it can be captured.
 */
export function captureProblem(workload: ObservedWorkload): CaptureProblem | undefined {
  if (workload.fileProblem) return workload.fileProblem;
  if (workload.claimProblem) return workload.claimProblem;
  if (workload.files.length === 0 && !workload.claims?.length) return { reason: "NoSharedDisk" };
  return undefined;
}
