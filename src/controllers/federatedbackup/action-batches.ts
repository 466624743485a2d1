// Which of a pass's actions may run side by side. Creating the step objects of a planned round is
// hundreds of independent creates at 1,000 nodes (each names its own object); everything else is done
// one action after another, in the decision's order, as before.
import type { BackupAction } from "./decide.js";

/** Step objects created at once, at most. */
export const STEP_CREATES_IN_FLIGHT = 16;

/** The actions in order, each run of consecutive CreateStep actions as one batch, every other alone. */
export function actionBatches(actions: readonly BackupAction[]): BackupAction[][] {
  const batches: BackupAction[][] = [];
  for (const action of actions) {
    const last = batches.at(-1);
    if (action.kind === "CreateStep" && last?.[0]?.kind === "CreateStep") last.push(action);
    else batches.push([action]);
  }
  return batches;
}
