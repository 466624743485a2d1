// The WorkloadRestore's status, rebuilt from its steps on every pass. The plan and the per-VM results
// hold at most LIST_LIMIT entries each; the NodeRestores hold every VM.
import type {
  NodeRestore,
  WorkloadRestore,
  WorkloadRestoreStatus,
  WorkloadRestoreStatusPhase,
  WorkloadRestoreStatusPlanEntry,
  WorkloadRestoreStatusResult,
} from "../../api/v1alpha1/index.js";
import type { RestorePlanEntry } from "../../planning/index.js";
import { mergeConditions, type DesiredCondition } from "../runtime/conditions.js";

export const LIST_LIMIT = 500;

export interface RestoreFacts {
  phase: WorkloadRestoreStatusPhase;
  /** The whole plan while it is made; afterwards the (possibly truncated) status.plan. */
  plan: ReadonlyArray<RestorePlanEntry | WorkloadRestoreStatusPlanEntry>;
  planTruncated: number;
  startTime?: string;
  completionTime?: string;
  coordinatingNode?: string;
  dryRun?: boolean;
  progressing: { reason: string; message: string };
  invalid?: { reason: string; message: string };
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
              ...(o.message ? { message: o.message } : {}),
            }
          : { namespace: w.namespace, name: w.name, phase: active ? "Running" : "Pending", node: step.spec.node },
      );
    }
  }
  const plan = facts.plan.map(toPlanEntry);
  for (const e of plan) {
    if (e.action === "Skip")
      results.push({ namespace: e.namespace, name: e.name, phase: "Skipped", message: e.reason ?? "" });
  }
  const total = plan.length + facts.planTruncated;
  const restored = results.filter((r) => r.phase === "Restored").length;
  const failed = results.filter((r) => r.phase === "Failed" || r.phase === "Skipped").length;

  const finished = ["Completed", "PartiallyFailed", "Failed"].includes(facts.phase);
  const conditions: DesiredCondition[] = [
    {
      type: "Ready",
      status: facts.phase === "Completed" ? "True" : "False",
      reason: facts.invalid?.reason ?? (facts.dryRun ? "DryRun" : facts.phase),
      message: facts.invalid?.message ?? readyMessage(facts, restored, failed, total),
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

  return {
    phase: facts.phase,
    observedGeneration: restore.metadata.generation,
    conditions: mergeConditions(restore.status?.conditions, conditions, restore.metadata.generation, nowIso),
    ...(facts.startTime ? { startTime: facts.startTime } : {}),
    ...(facts.completionTime ? { completionTime: facts.completionTime } : {}),
    ...(facts.coordinatingNode ? { coordinatingNode: facts.coordinatingNode } : {}),
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

function toPlanEntry(e: RestorePlanEntry | WorkloadRestoreStatusPlanEntry): WorkloadRestoreStatusPlanEntry {
  return {
    namespace: e.namespace,
    name: e.name,
    ...(e.activeNode ? { activeNode: e.activeNode } : {}),
    ...(e.restoreNode ? { restoreNode: e.restoreNode } : {}),
    action: e.action,
    ...(e.reason ? { reason: e.reason.slice(0, 1024) } : {}),
    ...(e.backup ? { backup: e.backup } : {}),
    ...(e.group ? { group: e.group } : {}),
  };
}

function readyMessage(facts: RestoreFacts, restored: number, failed: number, total: number): string {
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
