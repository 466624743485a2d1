// Removes what a deleted backup left outside the cluster's objects: its directory at the location (on an
// object store, and its index there) and its kept snapshots on the shared volume. Paths are relative to their mounts and may not escape them.
//
// Both trees are writable by tenants, so the removal goes through safe-fs.ts: it never follows a
// symlink (one planted inside either tree is removed as a name, what it points to stays), and a path whose
// directories on the way are not plain directories is refused rather than followed. The snapshots path is
// keyed by the backup's namespace, name and uid (src/planning/shared-volume-layout.ts), so removing it
// never touches another backup's snapshots.
import path from "node:path";
import { backupIndexKey } from "../storage/backup-index.js";
import { objectStoreDir, type ObjectStore } from "./backup-dir.js";
import { checkRelativePath } from "./manifest.js";
import { withRoot } from "./safe-fs.js";

export interface CleanupPlan {
  locationRoot: string;
  /** The location is this object store (its objects, and its incomplete uploads, are removed there). */
  objectStore?: ObjectStore;
  sharedRoot: string;
  /** The backup's directory, relative to the location root. */
  backupPath: string;
  /** The backup's snapshot directory, relative to the shared volume root; none for a backup without one. */
  snapshotsPath?: string;
}

export async function cleanupBackup(plan: CleanupPlan): Promise<string[]> {
  const removed: string[] = [];
  if (plan.objectStore) {
    checkRelativePath(plan.backupPath);
    const location = objectStoreDir(plan.objectStore, "");
    await location.removeTree(plan.backupPath);
    removed.push(location.relative(plan.backupPath));
    // Its index last: other clusters syncing the location then delete their copies of the backup.
    await location.remove(backupIndexKey(plan.backupPath));
    removed.push(location.relative(backupIndexKey(plan.backupPath)));
  }
  const trees: Array<readonly [string, string]> = plan.objectStore ? [] : [[plan.locationRoot, plan.backupPath]];
  if (plan.snapshotsPath !== undefined) trees.push([plan.sharedRoot, plan.snapshotsPath]);
  for (const [root, rel] of trees) {
    checkRelativePath(rel);
    await withRoot(root, (dir) => dir.removeTree(rel));
    removed.push(path.join(root, rel));
  }
  return removed;
}
