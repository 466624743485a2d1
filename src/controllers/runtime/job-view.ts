// What a Job's status says, in the few fields the step controllers read.
import type { EventKeys } from "./controller.js";

export interface JobView {
  name: string;
  complete: boolean;
  failed: boolean;
  failureReason?: string;
  failureMessage?: string;
  completionTime?: string;
}

interface JobLike {
  metadata: { name?: string };
  status?: {
    completionTime?: string;
    conditions?: Array<{
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastTransitionTime?: string;
    }>;
  };
}

export function viewJob(job: JobLike): JobView {
  const cond = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === "True");
  const failed = cond("Failed");
  return {
    name: job.metadata.name ?? "",
    complete: !!cond("Complete"),
    failed: !!failed,
    failureReason: failed?.reason,
    failureMessage: failed?.message,
    completionTime: job.status?.completionTime ?? failed?.lastTransitionTime,
  };
}

/** How long a completed Job's report may lag behind it (two watches deliver them independently). */
export const REPORT_GRACE_MS = 30_000;

/**
 * As `keys`, but for a Job's update only when its view changed. The Job controller rewrites a Job's status
 * several times per pod (active, ready, uncounted and terminating counts), none of which a step reads: at
 * 1,000 nodes each of them woke the run for a whole pass. Its deletion starting still wakes it.
 */
export function onJobViewChange<T extends JobLike & { metadata: { deletionTimestamp?: string } }>(
  keys: EventKeys<T>,
): EventKeys<T> {
  return (event, obj, old, meta) =>
    event === "update" &&
    old &&
    !!old.metadata.deletionTimestamp === !!obj.metadata.deletionTimestamp &&
    sameView(viewJob(old), viewJob(obj))
      ? []
      : keys(event, obj, old, meta);
}

const sameView = (a: JobView, b: JobView): boolean =>
  a.complete === b.complete &&
  a.failed === b.failed &&
  a.failureReason === b.failureReason &&
  a.failureMessage === b.failureMessage &&
  a.completionTime === b.completionTime;
