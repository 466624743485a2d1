// Failed steps per node, across every backup.

/** A step as far as failures go: its node and its phase. */
export interface StepOutcome {
  spec?: { node?: string };
  status?: { phase?: string };
}

/** How many steps failed on each node (steps without a node are not counted). */
export function countFailedSteps(steps: readonly StepOutcome[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of steps) {
    const node = s.spec?.node;
    if (node && s.status?.phase === "Failed") counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  return counts;
}
