// What a failed restore left of a VM's disks, and so whether the VM may be started again. Files are
// swapped in whole or not at all (a restore killed midway is put back by the next one), but a Block-mode
// claim is written in place: once the agent began writing a device, a failure leaves it partly written,
// with no previous version to go back to. Booting a guest on such a disk would damage it further, so the
// VM is then left stopped, and the message says why and what to do.
import type { NodeRestoreSpecWorkload } from "../../api/v1alpha1/index.js";

/** The agent's reason for a device it had begun to write when the restore failed (restore-claims.ts). */
export const CLAIM_PARTLY_WRITTEN = "ClaimPartlyWritten";
/** A VM the restore Job was sent and did not report on. */
export const JOB_FAILED = "JobFailed";

export type DisksAfterFailure =
  /** Nothing of the VM was written (verification failed, or a file swap was undone). */
  | "Untouched"
  /** The agent reports a device it wrote in part. */
  | "PartlyWritten"
  /** The restore Job ended without a result for the VM, which has Block-mode claims it may have been writing. */
  | "MaybePartlyWritten";

/**
 * From why the VM was not restored: the agent's reason, JobFailed when the Job ended without a result for
 * it (see decide.ts failureOf), or the reason of an outcome recorded earlier (a VM failed before the Job
 * ran, NodeFailed say, was never sent to it and was not written).
 */
export function disksAfterFailure(
  reason: string,
  workload: Pick<NodeRestoreSpecWorkload, "claims">,
): DisksAfterFailure {
  if (reason === CLAIM_PARTLY_WRITTEN) return "PartlyWritten";
  if (reason === JOB_FAILED && (workload.claims ?? []).some((c) => c.volumeMode === "Block"))
    return "MaybePartlyWritten";
  return "Untouched";
}

/** Whether the VM may be started again as it was: only when its disks are as they were. */
export const mayStartAgain = (state: DisksAfterFailure): boolean => state === "Untouched";

/** The end of the VM's outcome message: what became of its disks. */
export function describeDisksAfterFailure(state: DisksAfterFailure): string {
  switch (state) {
    case "Untouched":
      return "its disks were not touched";
    case "PartlyWritten":
      return (
        "a Block-mode claim of it was partly written and cannot be put back: the VM is left stopped " +
        "(runStrategy Halted) so that it does not boot on a half-written disk; restore it again"
      );
    case "MaybePartlyWritten":
      return (
        "the restore Job ended without reporting it, and it may have been writing its Block-mode claims: " +
        "the VM is left stopped (runStrategy Halted) so that it does not boot on a half-written disk; restore it again"
      );
  }
}
