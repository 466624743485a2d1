export interface NextRoundInput {
  /** The round that just finished; 1 is the first pass over the nodes. */
  round: number;
  /** spec.verification.maxRounds: most rounds, the first pass included. */
  maxRounds: number;
  /** spec.verification.reconcileMissing. */
  reconcileMissing: boolean;
  /** VMs still missing after `round`. */
  missingCount: number;
  /** Of those, how many the next round would place in a step (planReconcileRound's steps). */
  resolvableCount: number;
}

export type NextRoundDecision = "NextRound" | "Finish";

/**
 * Whether to run another round after `round`. Every condition is a reason to stop:
 * - reconcileMissing is off: the user asked for a single pass;
 * - nothing is missing: the backup is complete;
 * - `round` reached maxRounds: the budget is spent (maxRounds counts the first pass);
 * - no missing VM is resolvable: a round without steps would capture nothing and only use up the budget.
 *   (VMs that are merely Migrating are not resolvable yet; a caller that prefers to wait for them can
 *   requeue before asking again, since the planner has no clock.)
 */
export function nextRoundDecision(input: NextRoundInput): NextRoundDecision {
  const { round, maxRounds, reconcileMissing, missingCount, resolvableCount } = input;
  if (!reconcileMissing) return "Finish";
  if (missingCount <= 0) return "Finish";
  if (round >= maxRounds) return "Finish";
  if (resolvableCount <= 0) return "Finish";
  return "NextRound";
}
