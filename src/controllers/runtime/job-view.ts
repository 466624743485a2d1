// What a Job's status says, in the few fields the step controllers read.

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
