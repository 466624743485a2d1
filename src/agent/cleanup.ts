// Removes what a deleted backup left outside the cluster's objects: its directory at the location and
// its kept snapshots on the shared volume. Paths are relative to their mounts and may not escape them.
import { rm } from "node:fs/promises";
import path from "node:path";
import { checkRelativePath } from "./manifest.js";

export interface CleanupPlan {
  locationRoot: string;
  sharedRoot: string;
  /** The backup's directory, relative to the location root. */
  backupPath: string;
  /** The backup's snapshot directory, relative to the shared volume root. */
  snapshotsPath: string;
}

export async function cleanupBackup(plan: CleanupPlan): Promise<string[]> {
  const removed: string[] = [];
  for (const [root, rel] of [
    [plan.locationRoot, plan.backupPath],
    [plan.sharedRoot, plan.snapshotsPath],
  ] as const) {
    const target = path.join(root, checkRelativePath(rel));
    await rm(target, { recursive: true, force: true });
    removed.push(target);
  }
  return removed;
}
