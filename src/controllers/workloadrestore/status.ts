// The WorkloadRestore's status, rebuilt from its steps on every pass. The plan and the per-VM results
// hold at most LIST_LIMIT entries each; the NodeRestores hold every VM.
import { isFinished } from "../../api/phases.js";
import type {
  Condition,
  NodeRestore,
  WorkloadRestore,
  WorkloadRestoreStatus,
  WorkloadRestoreStatusPhase,
  WorkloadRestoreStatusPlanEntry,
  WorkloadRestoreStatusResult,
} from "../../api/v1alpha1/index.js";
import type { RestorePlanEntry, WorkloadRef } from "../../planning/index.js";
import { mergeConditions, type DesiredCondition } from "../runtime/conditions.js";
import { MAX_LISTED_STORAGE_BACKENDS } from "../runtime/storage-keys.js";

export const LIST_LIMIT = 500;
/**
 * How many problems the PlanProblems condition spells out, and in how many characters at most (a condition's
 * message may hold 32768); it counts the rest.
 */
export const PROBLEMS_LISTED = 20;
const PROBLEMS_MESSAGE_CHARS = 24_000;
/** How many reasons for skipping a summary names; it counts the VMs skipped for the others. */
const SKIP_REASONS_NAMED = 5;

/** A problem the plan found with one VM: a machine-readable reason (status.plan[].problem) and a sentence. */
export interface PlanProblem extends WorkloadRef {
  reason: string;
  message: string;
}

export interface RestoreFacts {
  phase: WorkloadRestoreStatusPhase;
  /** The whole plan while it is made; afterwards the (possibly truncated) status.plan. */
  plan: ReadonlyArray<PlanEntry | WorkloadRestoreStatusPlanEntry>;
  planTruncated: number;
  startTime?: string;
  completionTime?: string;
  coordinatingNode?: string;
  /** The storage keys whose Leases the run takes (runtime/storage-keys.ts). */
  storageBackends?: readonly string[];
  dryRun?: boolean;
  progressing: { reason: string; message: string };
  invalid?: { reason: string; message: string };
  /**
   * Every problem of the plan, in the pass that makes it. Afterwards the PlanProblems condition, made from the
   * whole list then, is kept as it is (status.plan may hold only part of it).
   */
  problems?: readonly PlanProblem[];
}

const ACTIVE = new Set(["Preparing", "Restoring", "Starting"]);

export function buildRestoreStatus(
  restore: WorkloadRestore,
  steps: ReadonlyArray<{ step: NodeRestore }>,
  facts: RestoreFacts,
  nowIso: string,
): WorkloadRestoreStatus {
  const results: WorkloadRestoreStatusResult[] = [];
  for (const { step } of steps) {
    const outcomes = new Map((step.status?.outcomes ?? []).map((o) => [`${o.namespace}/${o.name}`, o]));
    const active = ACTIVE.has(step.status?.phase ?? "");
    for (const w of step.spec.workloads) {
      const o = outcomes.get(`${w.namespace}/${w.name}`);
      results.push(
        o
          ? {
              namespace: o.namespace,
              name: o.name,
              phase: o.phase,
              ...(o.node ? { node: o.node } : {}),
              ...(o.bytes !== undefined ? { bytes: o.bytes } : {}),
              ...(o.verified !== undefined ? { verified: o.verified } : {}),
              ...(o.definition ? { definition: o.definition } : {}),
              ...(o.reason ? { reason: o.reason } : {}),
              ...(o.message ? { message: o.message } : {}),
            }
          : { namespace: w.namespace, name: w.name, phase: active ? "Running" : "Pending", node: step.spec.node },
      );
    }
  }
  const plan = facts.plan.map(toPlanEntry);
  for (const e of plan) {
    if (e.action === "Skip") {
      results.push({
        namespace: e.namespace,
        name: e.name,
        phase: "Skipped",
        ...(e.problem ? { reason: e.problem } : {}),
        message: e.reason ?? "",
      });
    }
  }
  const total = plan.length + facts.planTruncated;
  const restored = results.filter((r) => r.phase === "Restored").length;
  const failed = results.filter((r) => r.phase === "Failed" || r.phase === "Skipped").length;

  const finished = isFinished(facts.phase);
  // Before the plan (waiting for a backup, say) Ready tells why, as Progressing does.
  const unplanned = facts.phase === "New" && !facts.invalid;
  const conditions: DesiredCondition[] = [
    {
      type: "Ready",
      status: facts.phase === "Completed" ? "True" : "False",
      reason:
        facts.invalid?.reason ??
        (facts.dryRun
          ? facts.phase === "Completed"
            ? "DryRun"
            : "DryRunWithSkips"
          : unplanned
            ? facts.progressing.reason
            : facts.phase),
      message:
        facts.invalid?.message ??
        (unplanned ? facts.progressing.message : readyMessage(facts, plan, restored, failed, total)),
    },
    {
      type: "Progressing",
      status: finished ? "False" : "True",
      reason: finished ? "Finished" : facts.progressing.reason,
      message: finished ? `the restore finished: ${facts.phase}` : facts.progressing.message,
    },
    {
      type: "Failed",
      status: facts.phase === "Failed" ? "True" : "False",
      reason: facts.phase === "Failed" ? (facts.invalid?.reason ?? "NothingRestored") : "NotFailed",
      message: facts.phase === "Failed" ? (facts.invalid?.message ?? "no VM was restored (see status.results)") : "",
    },
  ];
  const problems = facts.problems
    ? problemsCondition(facts.problems)
    : restore.status?.conditions?.find((c) => c.type === "PlanProblems");
  if (problems) conditions.push(asDesired(problems));

  return {
    phase: facts.phase,
    observedGeneration: restore.metadata.generation,
    conditions: mergeConditions(restore.status?.conditions, conditions, restore.metadata.generation, nowIso),
    ...(facts.startTime ? { startTime: facts.startTime } : {}),
    ...(facts.completionTime ? { completionTime: facts.completionTime } : {}),
    ...(facts.coordinatingNode ? { coordinatingNode: facts.coordinatingNode } : {}),
    ...(facts.storageBackends?.length
      ? { storageBackends: facts.storageBackends.slice(0, MAX_LISTED_STORAGE_BACKENDS) }
      : {}),
    progress: {
      restored: `${restored}/${total}`,
      workloadsTotal: total,
      workloadsRestored: restored,
      workloadsFailed: failed,
    },
    plan: plan.slice(0, LIST_LIMIT),
    ...(total > LIST_LIMIT ? { planTruncated: total - LIST_LIMIT } : {}),
    results: results.slice(0, LIST_LIMIT),
    ...(results.length > LIST_LIMIT ? { resultsTruncated: results.length - LIST_LIMIT } : {}),
  };
}

/** A plan entry as the status keeps it: the planner's, with what the restore does with the VM object. */
export type PlanEntry = RestorePlanEntry & Pick<WorkloadRestoreStatusPlanEntry, "source" | "definition">;

function toPlanEntry(e: PlanEntry | WorkloadRestoreStatusPlanEntry): WorkloadRestoreStatusPlanEntry {
  return {
    namespace: e.namespace,
    name: e.name,
    ...(e.source ? { source: { namespace: e.source.namespace, name: e.source.name } } : {}),
    ...(e.definition ? { definition: e.definition } : {}),
    ...(e.activeNode ? { activeNode: e.activeNode } : {}),
    ...(e.restoreNode ? { restoreNode: e.restoreNode } : {}),
    action: e.action,
    ...(e.reason ? { reason: e.reason.slice(0, 1024) } : {}),
    ...(e.backup ? { backup: e.backup } : {}),
    ...(e.group ? { group: e.group } : {}),
    ...(e.problem ? { problem: e.problem } : {}),
  };
}

/**
 * PlanProblems: True when the plan found problems with the request, its reason the first one's (by VM), its
 * message the count and each problem, up to PROBLEMS_LISTED; False (NoProblems) for a clean plan. Set once the
 * plan is made, and kept as it is from then on.
 */
function problemsCondition(problems: readonly PlanProblem[]): DesiredCondition {
  const [first] = problems;
  if (first === undefined) {
    return { type: "PlanProblems", status: "False", reason: "NoProblems", message: "the plan found no problem" };
  }
  const listed: string[] = [];
  let chars = 0;
  for (const p of problems.slice(0, PROBLEMS_LISTED)) {
    const text = `${p.namespace}/${p.name} ${p.reason}: ${p.message.slice(0, 1024)}`;
    if (listed.length > 0 && chars + text.length > PROBLEMS_MESSAGE_CHARS) break;
    listed.push(text);
    chars += text.length + 1;
  }
  const more = problems.length - listed.length;
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return {
    type: "PlanProblems",
    status: "True",
    reason: first.reason,
    message: `${count}: ${listed.join(" ")}${more > 0 ? ` And ${more} more (see status.plan).` : ""}`,
  };
}

const asDesired = (c: DesiredCondition | Condition): DesiredCondition => ({
  type: c.type,
  status: c.status,
  reason: c.reason,
  message: c.message,
});

/** "2 TargetNodeNotFound, 1 NotCaptured": why the VMs of a plan are skipped, most frequent first. */
export function skipReasons(plan: ReadonlyArray<{ action: string; problem?: string }>): string {
  const counts = new Map<string, number>();
  for (const e of plan) {
    if (e.action === "Skip") counts.set(e.problem ?? "Skipped", (counts.get(e.problem ?? "Skipped") ?? 0) + 1);
  }
  const sorted = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const named = sorted.slice(0, SKIP_REASONS_NAMED).map(([reason, n]) => `${n} ${reason}`);
  const others = sorted.slice(SKIP_REASONS_NAMED).reduce((sum, [, n]) => sum + n, 0);
  return [...named, ...(others > 0 ? [`${others} for other reasons`] : [])].join(", ");
}

function readyMessage(
  facts: RestoreFacts,
  plan: readonly WorkloadRestoreStatusPlanEntry[],
  restored: number,
  failed: number,
  total: number,
): string {
  if (facts.dryRun && facts.phase !== "Completed") {
    const skipped = plan.filter((e) => e.action === "Skip").length;
    return (
      `dry run: ${total - skipped} of ${total} VMs planned, ${skipped} would be skipped (${skipReasons(plan)}; ` +
      "see the PlanProblems condition and status.plan); nothing was touched"
    );
  }
  if (facts.dryRun) return `dry run: the plan for ${total} VMs is in status.plan; nothing was touched`;
  switch (facts.phase) {
    case "Completed":
      return `all ${total} VMs restored`;
    case "PartiallyFailed":
      return `${restored} of ${total} VMs restored, ${failed} not (see status.results)`;
    case "Failed":
      return `no VM restored out of ${total} (see status.results)`;
    default:
      return `${restored} of ${total} VMs restored so far`;
  }
}
