export interface FinalPhaseInput {
  /** VMs selected for backup. */
  expected: number;
  /** Expected VMs that were captured (unexpected extra captures must not be counted here). */
  captured: number;
  /** Expected VMs that were not captured. */
  missing: number;
  /** The spec could not be acted on (e.g. a referenced claim does not exist). */
  invalid: boolean;
}

export type FinalPhase = "Completed" | "PartiallyFailed" | "Failed";

/**
 * The phase a finished backup ends in.
 * - Failed: the spec is invalid, or VMs were expected and none was captured: nothing usable exists.
 * - Completed: every expected VM was captured (nothing missing, captured >= expected). A backup that
 *   selects no VM at all is Completed too: there was nothing to do and nothing went wrong, and an empty
 *   selection (e.g. all VMs of a namespace are stopped) should not page anyone. The empty result is visible
 *   in status.progress.workloadsExpected = 0.
 * - PartiallyFailed: everything else; status.missing says which VMs and why.
 */
export function finalPhase(input: FinalPhaseInput): FinalPhase {
  const { expected, captured, missing, invalid } = input;
  if (invalid) return "Failed";
  if (expected <= 0) return "Completed";
  if (captured <= 0) return "Failed";
  if (missing <= 0 && captured >= expected) return "Completed";
  return "PartiallyFailed";
}
