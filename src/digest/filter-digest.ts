// Keeps the rows that meet every given criterion, in their order.
import { isDiskOfKind } from "./disks.js";
import { DELETED_PHASE } from "./gone-phase.js";
import { parseLabelSelector, matchesRequirements } from "./label-selector.js";
import { parseTime } from "./timestamps.js";
import type { DigestCriteria, DigestRow } from "./types.js";

type Test = (row: DigestRow) => boolean;

/** A row of a VM that exists only in backups (neither a VirtualMachine nor a VMI). */
const isDeleted: Test = (row) => row.phase === DELETED_PHASE;

/**
 * Throws when criteria.selector is not a valid label selector. Deleted VMs are kept only with
 * criteria.deleted, and then only they are.
 */
export function filterDigest(rows: readonly DigestRow[], criteria: DigestCriteria): DigestRow[] {
  const c = criteria;
  const tests: Test[] = [c.deleted ? isDeleted : (r) => !isDeleted(r)];
  if (c.namespace !== undefined) tests.push((r) => r.namespace === c.namespace);
  if (c.selector !== undefined) {
    const requirements = parseLabelSelector(c.selector);
    if (requirements.length) tests.push((r) => matchesRequirements(requirements, r.labels));
  }
  if (c.node !== undefined) tests.push((r) => r.node === c.node);
  if (c.phase !== undefined) {
    const phases = new Set(c.phase.split(",").map((p) => p.trim().toLowerCase()));
    tests.push((r) => phases.has(r.phase.toLowerCase()));
  }
  const backupMs = (r: DigestRow) => parseTime(r.lastBackup?.at);
  if (c.backedUpBefore !== undefined) {
    const before = c.backedUpBefore.getTime();
    tests.push((r) => (backupMs(r) ?? Infinity) < before);
  }
  if (c.backedUpSince !== undefined) {
    const since = c.backedUpSince.getTime();
    tests.push((r) => (backupMs(r) ?? -Infinity) >= since);
  }
  if (c.restoredSince !== undefined) {
    const since = c.restoredSince.getTime();
    tests.push((r) => (parseTime(r.lastRestore?.at) ?? -Infinity) >= since);
  }
  if (c.neverBackedUp) tests.push((r) => r.lastBackup === undefined);
  if (c.minNodeFailures !== undefined) {
    const min = c.minNodeFailures;
    tests.push((r) => r.nodeFailures >= min);
  }
  if (c.disks?.length) {
    const kinds = c.disks;
    tests.push((r) => r.disks.some((d) => kinds.some((k) => isDiskOfKind(d, k))));
  }
  return rows.filter((r) => tests.every((t) => t(r)));
}
