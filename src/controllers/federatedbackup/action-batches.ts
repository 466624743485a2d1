// Which of a pass's actions may run side by side. The actions on one node step (create its object, start
// its Job, record its phase, ...) depend on each other but not on another step's: a pass that starts one
// step's Job and records two others' phases need not make those requests one after another, and at
// 1,000 nodes a round's step objects are hundreds of independent creates. The run's own actions (its
// Leases, the backup itself) and its Events keep the decision's order, each alone, with one exception: the
// hand-off of the cut (ClaimLease, first in a pass) runs beside the step actions that follow it unless one
// of them starts a Job that does not wait for its turn (a strict run's agent freezes as soon as it runs, so
// its Lease must be in place first). A pipelined agent waits until the Leases name its step.
import type { BackupAction } from "./decide.js";

/** Steps whose actions are carried out at once, at most. */
export const STEPS_IN_FLIGHT = 16;

/** The actions on one node step, in the decision's order. */
export type StepSequence = BackupAction[];

const stepOf = (action: BackupAction): string | undefined =>
  "step" in action && typeof action.step === "object" ? action.step.metadata.name : undefined;

/** An action that must not start before the Leases name its step: a Job whose agent cuts as soon as it runs. */
const needsTheLease = (action: BackupAction) => action.kind === "StartJob" && !action.waitsForTurn;

/**
 * The actions in order, as batches run one after another: each run of consecutive actions on node steps is
 * one batch of per-step sequences (which may run side by side), every other action a batch of its own but
 * for ClaimLease, which the step actions after it join unless one of them needs the Lease first.
 */
export function actionBatches(actions: readonly BackupAction[]): StepSequence[][] {
  const batches: StepSequence[][] = [];
  let bySteps: Map<string, StepSequence> | undefined;
  let holdsHandOff = false;
  for (const action of actions) {
    const step = stepOf(action);
    if (step === undefined) {
      batches.push([[action]]);
      holdsHandOff = action.kind === "ClaimLease";
      bySteps = holdsHandOff ? new Map() : undefined;
      continue;
    }
    if (!bySteps || (holdsHandOff && needsTheLease(action))) {
      bySteps = new Map();
      holdsHandOff = false;
      batches.push([]);
    }
    let sequence = bySteps.get(step);
    if (!sequence) {
      bySteps.set(step, (sequence = []));
      batches.at(-1)!.push(sequence);
    }
    sequence.push(action);
  }
  return batches;
}
