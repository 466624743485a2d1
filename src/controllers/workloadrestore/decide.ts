// The WorkloadRestore decision: from what exists (a RestoreWorld), what to do next and what the status
// says. Pure and deterministic; the reconciler gathers before and acts after.
//
// New → (plan: status.plan and one NodeRestore per restore node) → InProgress, one node at a time:
//   Preparing  migrate (conflictPolicy Migrate) or stop every VM of the node; a stopped VM carries a hold
//              annotation recording how it ran (see vm-hold.ts)
//   Restoring  the node agent's Job verifies the checksums and writes the disks back
//   Starting   each VM is started pinned to the node (or, if its restore failed, where it ran before),
//              the hold and the pin are removed once it runs
// → Completed | PartiallyFailed | Failed. Every stage is recomputed from the steps, their Jobs and the VMs.
import { parseDuration } from "../../api/duration.js";
import type {
  NodeRestore,
  NodeRestoreStatusOutcome,
  NodeRestoreStatusPhase,
  NodeRestoreStatusResult,
  WorkloadRestore,
  WorkloadRestoreStatus,
  WorkloadRestoreStatusPhase,
} from "../../api/v1alpha1/index.js";
import {
  planRestore,
  seedFromText,
  workloadKey,
  type ObservedNode,
  type ObservedWorkload,
  type OrderingPolicy,
  type RestorePlanEntry,
  type WorkloadRef,
} from "../../planning/index.js";
import { jsonEqual } from "../runtime/conditions.js";
import type { LeaseState } from "../runtime/lease-state.js";
import { REPORT_GRACE_MS, type JobView } from "../federatedbackup/steps.js";
import { buildNodeRestore, RESTORE_DEFAULTS, restoreOwnerId } from "./builders.js";
import type { Resolution } from "./resolve.js";
import { buildRestoreStatus, type RestoreFacts } from "./status.js";
import { startStrategy, type VmHold, type VmView } from "./vm-hold.js";

export interface ObservedRestoreStep {
  step: NodeRestore;
  job?: JobView;
}

export interface RestoreWorld {
  now: number;
  restore: WorkloadRestore;
  steps: ObservedRestoreStep[];
  /** The VMs of the current step (all planned VMs while New), by "namespace/name". */
  vms: ReadonlyMap<string, VmView>;
  nodes: ObservedNode[];
  lease: LeaseState;
  /** While New: the captures to restore from, and the VMIs now. */
  resolution?: Resolution;
  observed?: ObservedWorkload[];
}

export interface RestoreSettings {
  leaseRenewMs: number;
}

export type StepStatusPatch = {
  phase?: NodeRestoreStatusPhase;
  workloads?: number;
  restoredCount?: number;
  startTime?: string;
  startingSince?: string;
  completionTime?: string;
  message?: string;
  outcomes?: NodeRestoreStatusOutcome[];
};

export type RestoreAction =
  | { kind: "CreateStep"; step: NodeRestore }
  | { kind: "DeleteStep"; step: NodeRestore }
  | { kind: "ClaimLease"; node: string; step: string }
  | { kind: "ReleaseLease" }
  | { kind: "HoldVm"; vm: WorkloadRef; hold: VmHold }
  | { kind: "StartVm"; vm: WorkloadRef; node: string; runStrategy: string }
  | { kind: "ReleaseVm"; vm: WorkloadRef; hold: VmHold; runStrategy?: string }
  | { kind: "CreateMigration"; vm: WorkloadRef; node: string }
  | { kind: "StartJob"; step: NodeRestore }
  | { kind: "DeleteJob"; step: NodeRestore }
  | { kind: "RecordStep"; step: NodeRestore; status: StepStatusPatch }
  | { kind: "Event"; type: "Normal" | "Warning"; reason: string; message: string };

export interface RestoreDecision {
  actions: RestoreAction[];
  status: WorkloadRestoreStatus;
  requeueAfterMs?: number;
}

const FINISHED: readonly WorkloadRestoreStatusPhase[] = ["Completed", "PartiallyFailed", "Failed"];
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
/** How often a step waiting for VMs to stop, migrate or start looks again if no watch event comes first. */
const WAIT_MS = 2_000;

export function restoreOrdering(restore: WorkloadRestore): OrderingPolicy {
  const o = restore.spec.ordering;
  return {
    policy: o?.policy ?? "WorkloadCount",
    ...(o?.nodes ? { nodes: o.nodes } : {}),
    ...(o?.policy === "Random" ? { seed: o.seed ?? seedFromText(restore.metadata.uid ?? "") } : {}),
    ...(o?.controlPlaneNode ? { controlPlaneNode: o.controlPlaneNode } : {}),
  };
}

export function decideRestore(world: RestoreWorld, settings: RestoreSettings): RestoreDecision {
  const { restore, now } = world;
  const nowIso = iso(now);
  const prev = restore.status ?? {};
  const actions: RestoreAction[] = [];
  const steps = world.steps.map((s) => ({ ...s, step: structuredClone(s.step) }));
  steps.sort((a, b) => a.step.spec.order - b.step.spec.order);
  const facts: RestoreFacts = {
    phase: prev.phase ?? "New",
    plan: prev.plan ?? [],
    planTruncated: prev.planTruncated ?? 0,
    startTime: prev.startTime,
    completionTime: prev.completionTime,
    progressing: { reason: "Planning", message: "choosing a restore node and an action for every VM" },
  };
  const result = (requeueAfterMs?: number): RestoreDecision => ({
    actions,
    status: buildRestoreStatus(restore, steps, facts, nowIso),
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  });

  if (FINISHED.includes(facts.phase)) {
    if (world.lease.ours) actions.push({ kind: "ReleaseLease" });
    return { actions, status: prev };
  }

  if (facts.phase === "New" || facts.phase === "Planning") {
    const resolution = world.resolution ?? { workloads: [], unrestorable: [] };
    facts.startTime = nowIso;
    if (resolution.invalid) {
      facts.phase = "Failed";
      facts.invalid = resolution.invalid;
      facts.completionTime = nowIso;
      actions.push({ kind: "Event", type: "Warning", ...resolution.invalid });
      return result();
    }
    const plan = planRestore({
      workloads: resolution.workloads,
      observed: world.observed ?? [],
      nodes: world.nodes,
      placement: restore.spec.placement ?? {},
      conflictPolicy: restore.spec.conflictPolicy ?? "Migrate",
      groups: restore.spec.groups ?? [],
      ordering: restoreOrdering(restore),
    });
    const skipped: RestorePlanEntry[] = resolution.unrestorable.map((u) => ({
      namespace: u.namespace,
      name: u.name,
      backup: u.backup,
      action: "Skip",
      reason: u.reason,
    }));
    const entries = [...plan.entries, ...skipped];
    facts.plan = entries;
    const resolved = new Map(resolution.workloads.map((w) => [workloadKey(w), w]));
    const desired = plan.nodeOrder.map((node, i) =>
      buildNodeRestore(
        restore,
        i + 1,
        node,
        plan.entries.filter((e) => e.restoreNode === node && e.action !== "Skip"),
        resolved,
      ),
    );
    const planned = entries.filter((e) => e.action !== "Skip").length;
    const summary = `${planned} VMs on ${desired.length} nodes (${desired.map((s) => `${s.spec.node}: ${s.spec.workloads.length}`).join(", ") || "none"})${
      entries.length > planned ? `; ${entries.length - planned} skipped` : ""
    }`;
    if (restore.spec.dryRun) {
      facts.phase = "Completed";
      facts.completionTime = nowIso;
      facts.dryRun = true;
      actions.push({ kind: "Event", type: "Normal", reason: "DryRun", message: `planned ${summary}; nothing touched` });
      return result();
    }
    // Nothing has been touched while the phase is New: steps left by an interrupted pass are replaced when
    // the plan came out differently this time.
    const byName = new Map(desired.map((d) => [d.metadata.name!, d]));
    for (const { step } of steps) {
      if (!jsonEqual(byName.get(step.metadata.name!)?.spec, step.spec)) actions.push({ kind: "DeleteStep", step });
    }
    const kept = new Set(
      steps.filter(({ step }) => jsonEqual(byName.get(step.metadata.name!)?.spec, step.spec)).map((s) => s.step),
    );
    for (const d of desired) {
      if (![...kept].some((k) => k.metadata.name === d.metadata.name)) actions.push({ kind: "CreateStep", step: d });
    }
    steps.length = 0;
    steps.push(...desired.map((step) => ({ step })));
    if (desired.length === 0) {
      facts.phase = "Failed";
      facts.completionTime = nowIso;
      facts.invalid = {
        reason: "NothingToRestore",
        message: `no VM can be restored: ${entries.length} skipped (see status.plan)`,
      };
      actions.push({ kind: "Event", type: "Warning", ...facts.invalid });
      return result();
    }
    facts.phase = "InProgress";
    facts.progressing = { reason: "Planned", message: summary };
    actions.push({ kind: "Event", type: "Normal", reason: "Planned", message: summary });
    return result(0);
  }

  const current = steps.find(({ step }) => !isDone(step.status?.phase));
  if (!current) return finish();
  const position = `${current.step.spec.order}/${steps.length}`;
  const node = current.step.spec.node;
  facts.coordinatingNode = node;
  const outcome = advanceStep(world, current, settings, actions, nowIso);
  facts.progressing = { reason: outcome.reason, message: `node ${node} (${position}): ${outcome.message}` };
  if (outcome.done) return result(0);
  if (outcome.needsLease) {
    if (!world.lease.ours && !world.lease.free) {
      facts.coordinatingNode = undefined;
      facts.progressing = {
        reason: "WaitingForVolumeLease",
        message: `the shared volume is in use by ${world.lease.owner ?? "another run"}; waiting for it to finish`,
      };
      return result(5_000);
    }
    const due =
      !world.lease.ours ||
      world.lease.holderNode !== node ||
      now - (world.lease.renewedAt ?? 0) >= settings.leaseRenewMs;
    // Claimed before any other action of the pass: nothing is touched without the volume.
    if (due) actions.unshift({ kind: "ClaimLease", node, step: current.step.metadata.name! });
  }
  return result(Math.min(outcome.requeueAfterMs ?? WAIT_MS, settings.leaseRenewMs));

  function finish(): RestoreDecision {
    const outcomes = steps.flatMap(({ step }) => step.status?.outcomes ?? []);
    const restored = outcomes.filter((o) => o.phase === "Restored").length;
    const total = facts.plan.length + facts.planTruncated;
    facts.phase = restored === total ? "Completed" : restored === 0 ? "Failed" : "PartiallyFailed";
    facts.completionTime = nowIso;
    facts.coordinatingNode = undefined;
    actions.push({ kind: "ReleaseLease" });
    const failures = outcomes.filter((o) => o.phase === "Failed").map((o) => `${o.namespace}/${o.name}`);
    actions.push({
      kind: "Event",
      type: facts.phase === "Completed" ? "Normal" : "Warning",
      reason: facts.phase,
      message: `${restored} of ${total} VMs restored${failures.length ? `; failed: ${failures.slice(0, 20).join(", ")}` : ""}`,
    });
    return result();
  }
}

const isDone = (phase: NodeRestoreStatusPhase | undefined): boolean => phase === "Succeeded" || phase === "Failed";

interface StepOutcome {
  reason: string;
  message: string;
  /** The step finished in this pass. */
  done?: boolean;
  /** The step is under way and needs the shared volume's Lease. */
  needsLease?: boolean;
  requeueAfterMs?: number;
}

/** One pass over the current step; its recorded status is updated in place as the actions will. */
function advanceStep(
  world: RestoreWorld,
  current: ObservedRestoreStep,
  settings: RestoreSettings,
  actions: RestoreAction[],
  nowIso: string,
): StepOutcome {
  const { restore, now } = world;
  const { step, job } = current;
  const node = step.spec.node;
  const me = restoreOwnerId(restore);
  const timeoutMs = parseDuration(restore.spec.nodeTimeout ?? RESTORE_DEFAULTS.nodeTimeout);
  const status = step.status ?? {};
  const outcomes = new Map((status.outcomes ?? []).map((o) => [workloadKey(o), o]));
  const record = (patch: StepStatusPatch) => {
    const full = { ...patch, ...(patch.outcomes ? {} : outcomes.size ? { outcomes: [...outcomes.values()] } : {}) };
    actions.push({ kind: "RecordStep", step, status: full });
    step.status = { ...step.status, ...full };
  };
  const fail = (w: WorkloadRef, message: string) =>
    outcomes.set(workloadKey(w), { namespace: w.namespace, name: w.name, phase: "Failed", message });
  const vmOf = (w: WorkloadRef): VmView => world.vms.get(workloadKey(w)) ?? { exists: false, runStrategy: "Halted" };
  const heldByMe = (v: VmView) => v.hold?.owner === me;
  const workloads = step.spec.workloads;

  // Pending: the node's turn begins, if the node can take it.
  if (status.phase === undefined || status.phase === "Pending") {
    const nodeState = world.nodes.find((n) => n.name === node);
    if (!nodeState?.ready) {
      const why = nodeState ? `node ${node} is not Ready` : `node ${node} no longer exists`;
      for (const w of workloads) fail(w, `not restored: ${why}; its disks and its instance were not touched`);
      record({ phase: "Failed", workloads: workloads.length, restoredCount: 0, completionTime: nowIso, message: why });
      actions.push({
        kind: "Event",
        type: "Warning",
        reason: "NodeFailed",
        message: `${why}: its ${workloads.length} VMs are not restored`,
      });
      return { reason: "NodeFailed", message: why, done: true };
    }
    if (!world.lease.ours && !world.lease.free)
      return { reason: "WaitingForVolumeLease", message: "waiting", needsLease: true };
    record({
      phase: "Preparing",
      workloads: workloads.length,
      startTime: nowIso,
      message: "stopping or migrating the VMs",
    });
    actions.push({
      kind: "Event",
      type: "Normal",
      reason: "NodeStarted",
      message: `node ${node} is the coordinating node: restoring ${workloads.length} VMs`,
    });
    // Fall through: prepare in the same pass.
  }

  const startedAt = Date.parse(step.status?.startTime ?? "") || now;
  const phase = step.status?.phase;

  if (phase === "Preparing") {
    const timedOut = now - startedAt > timeoutMs;
    let waiting = 0;
    let notes: string[] = [];
    for (const w of workloads) {
      if (outcomes.has(workloadKey(w))) continue;
      const v = vmOf(w);
      if (!v.exists) {
        fail(
          w,
          `VirtualMachine ${workloadKey(w)} does not exist: without it the VM can be neither stopped nor started, so its disks are not touched`,
        );
        continue;
      }
      const vmi = v.vmi;
      const held = heldByMe(v);
      const elsewhere = !!vmi?.node && vmi.node !== node && vmi.phase === "Running";
      if (!held && elsewhere && (restore.spec.conflictPolicy ?? "Migrate") === "Migrate") {
        const m = v.migration?.phase;
        if (m === "Failed" || (m === "Succeeded" && !vmi.migrating)) {
          fail(
            w,
            `the live migration from ${vmi.node} to ${node} failed; the VM keeps running on ${vmi.node} and its disks were not touched`,
          );
          continue;
        }
        if (timedOut) {
          fail(
            w,
            `not migrated to ${node} within nodeTimeout; it keeps running on ${vmi.node} and its disks were not touched`,
          );
          continue;
        }
        if (!v.migration) actions.push({ kind: "CreateMigration", vm: w, node });
        notes.push(`${w.name} migrating from ${vmi.node}`);
        waiting++;
        continue;
      }
      if (!held) {
        // Another restore's hold keeps the original state it recorded; only the owner changes.
        const hold: VmHold = v.hold
          ? { ...v.hold, owner: me }
          : {
              owner: me,
              runStrategy: v.runStrategy,
              activeNode: vmi?.phase === "Running" ? (vmi.node ?? "") : "",
              ...(v.pinnedNode ? { nodeSelector: v.pinnedNode } : {}),
            };
        actions.push({ kind: "HoldVm", vm: w, hold });
        notes.push(`${w.name} stopping`);
        waiting++;
        continue;
      }
      if (v.runStrategy !== "Halted") actions.push({ kind: "HoldVm", vm: w, hold: v.hold! });
      if (vmi || v.runStrategy !== "Halted") {
        if (timedOut) {
          // Started again where it ran by the Starting stage, which sees the hold without a restore result.
          fail(w, `not stopped within nodeTimeout; its disks were not touched`);
          continue;
        }
        notes.push(`${w.name} stopping on ${vmi?.node ?? "its node"}`);
        waiting++;
      }
    }
    notes = notes.slice(0, 5);
    if (waiting > 0) {
      if (outcomes.size !== (status.outcomes?.length ?? 0)) record({});
      return {
        reason: "PreparingVMs",
        message: `${waiting} VMs not stopped yet: ${notes.join(", ")}`,
        needsLease: true,
      };
    }
    const toRestore = workloads.filter((w) => !outcomes.has(workloadKey(w)));
    if (toRestore.length === 0) {
      record({ phase: "Starting", startingSince: nowIso, message: "no VM left to restore" });
      return { reason: "StartingVMs", message: "no VM left to restore", needsLease: true, requeueAfterMs: 0 };
    }
    actions.push({ kind: "StartJob", step });
    record({ phase: "Restoring", message: `the restore Job writes back the disks of ${toRestore.length} VMs` });
    return { reason: "Restoring", message: `restoring the disks of ${toRestore.length} VMs`, needsLease: true };
  }

  const results = new Map((status.results ?? []).map((r) => [workloadKey(r), r]));
  const sent = workloads.filter((w) => !outcomes.has(workloadKey(w)) || results.has(workloadKey(w)));

  if (phase === "Restoring") {
    const finished = job?.complete || job?.failed;
    if (job && !finished) {
      if (now - startedAt > timeoutMs) {
        actions.push({ kind: "DeleteJob", step });
        record({
          phase: "Starting",
          startingSince: nowIso,
          message: "the restore Job did not finish within nodeTimeout",
        });
        return {
          reason: "StartingVMs",
          message: "the restore Job timed out; starting the VMs again",
          needsLease: true,
          requeueAfterMs: 0,
        };
      }
      return { reason: "Restoring", message: `the restore Job runs for ${sent.length} VMs`, needsLease: true };
    }
    const reported = sent.every((w) => results.has(workloadKey(w)));
    const completedAt = Date.parse(job?.completionTime ?? "") || now;
    if (job && !reported && now - completedAt < REPORT_GRACE_MS) {
      return {
        reason: "Restoring",
        message: "waiting for the node agent's report",
        needsLease: true,
        requeueAfterMs: 1_000,
      };
    }
    const message = !job
      ? "the restore Job disappeared before it finished"
      : job.failed
        ? `the restore Job failed (${job.failureReason ?? "Failed"}): ${job.failureMessage ?? "no message"}`
        : "the restore Job finished";
    record({ phase: "Starting", startingSince: nowIso, message });
  }

  // Starting: every held VM is started where it belongs, then released.
  const startingSince = Date.parse(step.status?.startingSince ?? "") || now;
  const timedOut = now - startingSince > timeoutMs;
  let waiting = 0;
  const notes: string[] = [];
  for (const w of workloads) {
    const key = workloadKey(w);
    const v = vmOf(w);
    const report = results.get(key);
    const restored = report?.restored === true && !outcomes.has(key);
    if (v.exists && heldByMe(v)) {
      const hold = v.hold!;
      const target = restored ? node : hold.activeNode;
      const runStrategy = startStrategy(hold);
      if (!target) {
        // It did not run before and its restore failed: back to how it was.
        actions.push({ kind: "ReleaseVm", vm: w, hold, runStrategy: hold.runStrategy });
      } else if (v.vmi?.phase === "Running" && v.vmi.node === target) {
        actions.push({ kind: "ReleaseVm", vm: w, hold });
      } else if (timedOut) {
        if (!outcomes.has(key))
          fail(w, `${restoredText(report)}, but it did not reach Running on ${target} within nodeTimeout`);
        actions.push({ kind: "ReleaseVm", vm: w, hold });
      } else if (v.runStrategy !== runStrategy || v.pinnedNode !== target) {
        actions.push({ kind: "StartVm", vm: w, node: target, runStrategy });
      }
      notes.push(`${w.name} starting on ${target || "(stays stopped)"}`);
      waiting++;
      continue;
    }
    if (outcomes.has(key)) continue;
    if (restored) {
      outcomes.set(key, {
        namespace: w.namespace,
        name: w.name,
        phase: "Restored",
        node: v.vmi?.node ?? node,
        bytes: report.bytes ?? 0,
        verified: report.verified === true,
        message: `${report.files ?? 0} files, ${report.bytes ?? 0} bytes written and verified; running on ${v.vmi?.node ?? node}`,
      });
    } else {
      const after = v.vmi?.node ? `; started again on ${v.vmi.node}` : "";
      outcomes.set(key, {
        namespace: w.namespace,
        name: w.name,
        phase: "Failed",
        ...(v.vmi?.node ? { node: v.vmi.node } : {}),
        verified: false,
        message: `${failureText(report, step.status?.message)}; its disks were not touched${after}`,
      });
    }
  }
  if (waiting > 0) {
    if (outcomes.size !== (status.outcomes?.length ?? 0)) record({});
    return {
      reason: "StartingVMs",
      message: `${waiting} VMs starting: ${notes.slice(0, 5).join(", ")}`,
      needsLease: true,
    };
  }
  const restoredCount = [...outcomes.values()].filter((o) => o.phase === "Restored").length;
  const allRestored = restoredCount === workloads.length;
  record({
    phase: allRestored ? "Succeeded" : "Failed",
    restoredCount,
    completionTime: nowIso,
    message: `${restoredCount} of ${workloads.length} VMs restored`,
  });
  actions.push({
    kind: "Event",
    type: allRestored ? "Normal" : "Warning",
    reason: allRestored ? "NodeSucceeded" : "NodeFailed",
    message: `node ${node}: ${restoredCount} of ${workloads.length} VMs restored`,
  });
  return { reason: "NodeDone", message: `${restoredCount} of ${workloads.length} VMs restored`, done: true };
}

function restoredText(report: NodeRestoreStatusResult | undefined): string {
  return report?.restored ? "its disks were restored" : "its disks were not restored";
}

function failureText(report: NodeRestoreStatusResult | undefined, stepMessage: string | undefined): string {
  if (report && !report.restored) return `${report.reason ?? "RestoreFailed"}: ${report.message ?? "no detail"}`;
  return `not restored: ${stepMessage ?? "the restore Job did not report this VM"}`;
}
