// What a chaos run's backups ask for. With the world's volumes on XFS: pipelined node steps (look-ahead 2,
// at most 2 extracting), cut with Reflink clones, so that each step hands its turn on at its cut and the
// next node cuts while it extracts. A scenario that needs the copy to run under the freeze keeps the Copy
// method, pipelined too: its pods still start ahead and wait, but a step keeps its turn until its Job ends.
// Without XFS, nothing is asked: the default method (Auto: Copy unless the filesystem can clone), one step
// after the other.
import type { FederatedBackupSpec } from "../../src/api/v1alpha1/index.js";

export type ChaosBackupSpec = Pick<FederatedBackupSpec, "pipeline" | "snapshot">;

export const CHAOS_PIPELINE = { lookAhead: 2, maxExtractions: 2 } as const;

export function chaosBackupSpec(onXfs: boolean, needsCopy: boolean): ChaosBackupSpec {
  if (!onXfs) return {};
  return { pipeline: { ...CHAOS_PIPELINE }, snapshot: { method: needsCopy ? "Copy" : "Reflink" } };
}
