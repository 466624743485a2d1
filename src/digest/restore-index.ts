// The latest successful restore of every VM, indexed once by "namespace/name".
import { compareStrings } from "../planning/index.js";
import { firstTime } from "./timestamps.js";
import { vmKey, type DigestRestore, type LastRestore } from "./types.js";

export interface RestoreSummary {
  /** Shared by every VM of the same restore: copy it before handing it out. */
  last: LastRestore;
  lastMs: number;
}

/**
 * Indexes status.results[] entries in phase Restored. The time of a restore is its completionTime, else
 * its startTime, else its creationTimestamp, else `now`. Ties go to the greater restore name.
 */
export function indexRestores(restores: readonly DigestRestore[], now: number): Map<string, RestoreSummary> {
  const index = new Map<string, RestoreSummary>();
  for (const r of restores) {
    const results = r.status?.results;
    if (!results?.length) continue;
    const restore = vmKey(r.metadata.namespace ?? "", r.metadata.name ?? "");
    const { at, ms } = firstTime([r.status?.completionTime, r.status?.startTime, r.metadata.creationTimestamp]) ?? {
      at: new Date(now).toISOString(),
      ms: now,
    };
    for (const result of results) {
      if (result.phase !== "Restored") continue;
      const key = vmKey(result.namespace, result.name);
      const seen = index.get(key);
      if (seen && (seen.lastMs > ms || (seen.lastMs === ms && compareStrings(seen.last.restore, restore) >= 0)))
        continue;
      index.set(key, { last: { restore, at, node: result.node ?? "" }, lastMs: ms });
    }
  }
  return index;
}
