// How often a run's status is written. A node step changes the status two or three times (started,
// running, done), so at 1,000 nodes an unpaced run would write it thousands of times, each a new revision
// in etcd and an update event to every watcher. What readers act on (the phase, the round, the conditions'
// states, the times) is written at once; a change of progress alone (counts, the node list, the missing
// list, the coordinating node, messages) waits until STATUS_WRITE_INTERVAL_MS after the previous write,
// and the changes meanwhile go out together.
import type { FederatedBackupStatus } from "../../api/v1alpha1/index.js";
import { jsonEqual } from "../runtime/conditions.js";

export const STATUS_WRITE_INTERVAL_MS = 1_000;

/** The part of a status whose change is written at once: everything but progress and messages. */
export function statusOutline(status: FederatedBackupStatus | undefined): unknown {
  if (!status) return undefined;
  const {
    progress,
    nodes: _nodes,
    nodesTruncated: _nodesTruncated,
    missing: _missing,
    missingTruncated: _missingTruncated,
    coordinatingNode: _coordinatingNode,
    conditions,
    ...rest
  } = status;
  return {
    ...rest,
    round: progress?.round,
    // The planned run's size: a reader of the cache checks it has seen this many steps (reconciler.ts).
    nodesTotal: progress?.nodesTotal,
    conditions: (conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason })),
  };
}

/**
 * When to write `next` over `written`: 0 now, a positive number of milliseconds from `now` when only
 * progress changed and the previous write (at `lastWriteAt`, undefined when unknown, as after a restart)
 * was less than STATUS_WRITE_INTERVAL_MS ago, and undefined when there is nothing to write.
 */
export function statusWriteDelay(
  written: FederatedBackupStatus | undefined,
  next: FederatedBackupStatus,
  lastWriteAt: number | undefined,
  now: number,
): number | undefined {
  if (jsonEqual(written, next)) return undefined;
  if (!jsonEqual(statusOutline(written), statusOutline(next))) return 0;
  if (lastWriteAt === undefined) return 0;
  return Math.max(0, lastWriteAt + STATUS_WRITE_INTERVAL_MS - now);
}

/**
 * The delay before writing when a pass comes within STATUS_WRITE_INTERVAL_MS of the previous write and the
 * outline is unchanged: whatever its progress, nothing is written now, so the progress need not even be
 * built (at 1,000 nodes that is a walk over 10,000 VMs, and passes come several times per node step). The
 * pass after the delay builds it and writes what changed meanwhile. Undefined when that does not apply.
 */
export function deferredProgressWrite(
  written: FederatedBackupStatus | undefined,
  nextOutline: () => unknown,
  lastWriteAt: number | undefined,
  now: number,
): number | undefined {
  if (lastWriteAt === undefined || now >= lastWriteAt + STATUS_WRITE_INTERVAL_MS) return undefined;
  return jsonEqual(statusOutline(written), nextOutline()) ? lastWriteAt + STATUS_WRITE_INTERVAL_MS - now : undefined;
}
