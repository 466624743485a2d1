// Which expected VMs are not captured, and the best reason known for each.
import type {
  FederatedBackupStatusMissingEntry,
  FederatedBackupStatusMissingEntryReason,
  NodeSnapshot,
} from "../../api/v1alpha1/index.js";
import { MISSING_REASONS, workloadKey, type WorkloadRef } from "../../planning/index.js";
import type { DerivedStepPhase } from "./steps.js";

// The planner's reasons, plus Migrated: the agent's word for a VM that left its node before its turn.
const KNOWN_REASONS = new Set<string>([...MISSING_REASONS, "Migrated"]);

const asReason = (r: string): FederatedBackupStatusMissingEntryReason =>
  KNOWN_REASONS.has(r) ? (r as FederatedBackupStatusMissingEntryReason) : "CaptureFailed";

export interface StepWithPhase {
  step: NodeSnapshot;
  derived: DerivedStepPhase;
}

/** The expected list: every VM the first round planned, placed on a node or not. */
export function expectedWorkloads(steps: readonly StepWithPhase[]): WorkloadRef[] {
  const out = new Map<string, WorkloadRef>();
  for (const { step } of steps) {
    if (step.spec.round !== 1) continue;
    for (const w of [...(step.spec.workloads ?? []), ...(step.spec.unplaced ?? [])]) {
      out.set(workloadKey(w), { namespace: w.namespace, name: w.name });
    }
  }
  return [...out.values()].sort((a, b) => workloadKey(a).localeCompare(workloadKey(b)));
}

/** VMs captured by any step of any round (each once). */
export function capturedWorkloads(steps: readonly StepWithPhase[]): Map<string, { step: NodeSnapshot; round: number }> {
  const out = new Map<string, { step: NodeSnapshot; round: number }>();
  for (const { step } of steps) {
    for (const c of step.status?.captured ?? []) {
      const key = workloadKey(c);
      if (!out.has(key)) out.set(key, { step, round: step.spec.round });
    }
  }
  return out;
}

/**
 * Expected VMs that are not captured and not waiting in a step that has yet to run, with the reason
 * from the latest step that dealt with them.
 */
export function missingWorkloads(steps: readonly StepWithPhase[]): FederatedBackupStatusMissingEntry[] {
  const captured = capturedWorkloads(steps);
  const latest = new Map<string, FederatedBackupStatusMissingEntry | "pending">();
  const ordered = [...steps].sort(
    (a, b) => a.step.spec.round - b.step.spec.round || a.step.spec.order - b.step.spec.order,
  );
  for (const { step, derived } of ordered) {
    for (const u of step.spec.unplaced ?? []) {
      latest.set(workloadKey(u), {
        namespace: u.namespace,
        name: u.name,
        reason: asReason(u.reason),
        ...(u.message ? { message: u.message } : {}),
        ...(u.lastNode ? { lastNode: u.lastNode } : {}),
      });
    }
    for (const w of step.spec.workloads ?? []) {
      const key = workloadKey(w);
      if (derived.phase === "Pending" || derived.phase === "Running") {
        latest.set(key, "pending");
        continue;
      }
      const reported = step.status?.failed?.find((f) => f.namespace === w.namespace && f.name === w.name);
      const base = { namespace: w.namespace, name: w.name, lastNode: step.spec.node };
      if (reported)
        latest.set(key, { ...base, reason: asReason(reported.reason), message: reported.message ?? reported.reason });
      else if (derived.phase === "Failed")
        latest.set(key, {
          ...base,
          reason: "NodeFailed",
          message: `node ${step.spec.node}: ${derived.message ?? "failed"}`,
        });
      else
        latest.set(key, {
          ...base,
          reason: "CaptureFailed",
          message: `the Job on node ${step.spec.node} finished without reporting this VM`,
        });
    }
  }
  const out: FederatedBackupStatusMissingEntry[] = [];
  for (const [key, entry] of latest) if (entry !== "pending" && !captured.has(key)) out.push(entry);
  return out.sort((a, b) => workloadKey(a).localeCompare(workloadKey(b)));
}
