// Which expected VMs are not captured, and the best reason known for each.
import type {
  FederatedBackupStatusMissingEntry,
  FederatedBackupStatusMissingEntryReason,
  NodeSnapshot,
} from "../../api/v1alpha1/index.js";
import { compareStrings, MISSING_REASONS, workloadKey, type WorkloadRef } from "../../planning/index.js";
import type { DerivedStepPhase } from "./steps.js";

// The planner's reasons, plus Migrated: the agent's word for a VM that left its node before its turn.
const KNOWN_REASONS = new Set<string>([...MISSING_REASONS, "Migrated"]);

const asReason = (r: string): FederatedBackupStatusMissingEntryReason =>
  KNOWN_REASONS.has(r) ? (r as FederatedBackupStatusMissingEntryReason) : "CaptureFailed";

export interface StepWithPhase {
  step: NodeSnapshot;
  derived: DerivedStepPhase;
}

type FailedEntry = NonNullable<NonNullable<NodeSnapshot["status"]>["failed"]>[number];

/** The keys of one step's VMs, made once per step object. */
interface StepKeys {
  workloads: string[];
  unplaced: string[];
  captured: string[];
  failed: Map<string, FailedEntry>;
}

// These lists are rebuilt on every pass over every VM of the run (10,000 at 1,000 nodes), while a pass
// changes one or two steps: each step object's keys are kept until the cache replaces the object. A cache of
// a pure function of an object that is never mutated (a changed step is a new object).
const stepKeysMemo = new WeakMap<NodeSnapshot, StepKeys>();

function keysOf(step: NodeSnapshot): StepKeys {
  let keys = stepKeysMemo.get(step);
  if (!keys) {
    keys = {
      workloads: (step.spec.workloads ?? []).map(workloadKey),
      unplaced: (step.spec.unplaced ?? []).map(workloadKey),
      captured: (step.status?.captured ?? []).map(workloadKey),
      failed: new Map((step.status?.failed ?? []).map((f) => [workloadKey(f), f])),
    };
    stepKeysMemo.set(step, keys);
  }
  return keys;
}

/** The keys of the expected list: every VM the first round planned, placed on a node or not. */
export function expectedKeys(steps: readonly StepWithPhase[]): Set<string> {
  const out = new Set<string>();
  for (const { step } of steps) {
    if (step.spec.round !== 1) continue;
    const keys = keysOf(step);
    for (const key of keys.workloads) out.add(key);
    for (const key of keys.unplaced) out.add(key);
  }
  return out;
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
  return byKey(out);
}

// Sorted by key, each key made once: these lists are rebuilt on every pass and hold every VM of the run
// (10,000 at 1,000 nodes), so neither a key per comparison nor a locale-aware comparison is affordable.
function byKey<T>(entries: ReadonlyMap<string, T>): T[] {
  return [...entries.keys()].sort(compareStrings).map((key) => entries.get(key)!);
}

/** VMs captured by any step of any round (each once). */
export function capturedWorkloads(steps: readonly StepWithPhase[]): Map<string, { step: NodeSnapshot; round: number }> {
  const out = new Map<string, { step: NodeSnapshot; round: number }>();
  for (const { step } of steps) {
    for (const key of keysOf(step).captured) if (!out.has(key)) out.set(key, { step, round: step.spec.round });
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
    const keys = keysOf(step);
    (step.spec.unplaced ?? []).forEach((u, i) => {
      latest.set(keys.unplaced[i]!, {
        namespace: u.namespace,
        name: u.name,
        reason: asReason(u.reason),
        ...(u.message ? { message: u.message } : {}),
        ...(u.lastNode ? { lastNode: u.lastNode } : {}),
      });
    });
    const workloads = step.spec.workloads ?? [];
    for (let i = 0; i < workloads.length; i++) {
      const w = workloads[i]!;
      const key = keys.workloads[i]!;
      if (derived.phase === "Pending" || derived.phase === "Running") {
        latest.set(key, "pending");
        continue;
      }
      const reported = keys.failed.get(key);
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
  const out = new Map<string, FederatedBackupStatusMissingEntry>();
  for (const [key, entry] of latest) if (entry !== "pending" && !captured.has(key)) out.set(key, entry);
  return byKey(out);
}
