// The location a backup run writes to, as its steps record it: set when the steps are created (from the
// FederatedBackup's inline location or its BackupLocation) and used by every later action of the run, its
// cleanup, its restores and the location's sync, whatever the BackupLocation says since.
import type { NodeSnapshot } from "../../api/v1alpha1/index.js";
import { locationSourceOf, type LocationSource } from "../../storage/location.js";

/** A location as a run uses it: where (no secrets, a Secret's name at most) and this backup's directory in it. */
export interface ResolvedLocation {
  source: LocationSource;
  /** Directory of this backup, relative to the location's root (the claim's root, or the bucket's prefix). */
  path: string;
}

/** The location the run's steps recorded when they were created: the one every later action uses. */
export function recordedLocation(steps: readonly NodeSnapshot[]): ResolvedLocation | undefined {
  const recorded = steps.find((s) => !!s.spec.location)?.spec.location;
  return recorded ? { source: locationSourceOf(recorded), path: recorded.path } : undefined;
}
