// The WorkloadRestore decision: from what exists (a RestoreWorld), what to do next and what the status
// says. Pure and deterministic; the reconciler gathers before and acts after.
//
// New (waiting, up to spec.waitForBackup, for a backup it names that is not finished yet)
//   → (plan: status.plan and one NodeRestore per restore node) → InProgress, one node at a time:
//   Preparing  migrate (action MigrateThenRestore) or stop every VM of the node, as the plan recorded in the
//              step; a stopped VM carries a hold annotation recording how it ran (see vm-hold.ts)
//   Restoring  the node agent's Job verifies the checksums and writes the disks back
//   Starting   each VM is started pinned to the node (or, if its restore failed, where it ran before),
//              the hold and the pin are removed once it runs
// → Completed | PartiallyFailed | Failed. Every stage is recomputed from the steps, their Jobs and the VMs.
import { isFinished } from "../../api/phases.js";
import { rfc3339 } from "../../api/timestamps.js";
import { parseDuration } from "../../api/duration.js";
import type {
  NodeRestore,
  NodeRestoreStatusOutcome,
  NodeRestoreStatus,
  NodeRestoreStatusPhase,
  NodeRestoreSpecWorkloadClaim,
  NodeRestoreStatusResult,
  WorkloadRestore,
  WorkloadRestoreStatus,
} from "../../api/v1alpha1/index.js";
import {
  compareWorkloads,
  planRestore,
  workloadKey,
  type ObservedNode,
  type ObservedWorkload,
  type OrderingPolicy,
  type PlannedClaim,
  type RestorePlanEntry,
  type WorkloadRef,
} from "../../planning/index.js";
import { jsonEqual } from "../runtime/conditions.js";
import { orderingPolicy } from "../runtime/ordering.js";
import { waitingForLeaseMessage, type LeaseSetState } from "../runtime/lease-state.js";
import { REPORT_GRACE_MS, type JobView } from "../runtime/job-view.js";
import { buildNodeRestore, RESTORE_DEFAULTS, restoreOwnerId } from "./builders.js";
import { BACKUPS_LISTED, type Resolution } from "./resolve.js";
import { buildRestoreStatus, skipReasons, type PlanEntry, type PlanProblem, type RestoreFacts } from "./status.js";
import type { CreatedDisks, CreatedDisksProblem } from "./created-disks.js";
import { planVmObjects } from "./vm-objects.js";
import { RUNNING_STRATEGIES, startStrategy, type VmHold, type VmView } from "./vm-hold.js";
import { definitionOutcome, replacement, vmCreation, type DefinitionOutcome } from "./vm-object-actions.js";
import type { RecreatedObjects } from "../../planning/recreated-vm.js";
import { JOB_FAILED, describeDisksAfterFailure, disksAfterFailure, mayStartAgain } from "./disks-after-failure.js";

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
  /** The Leases of every storage back end of the run's VMs, as one (runtime/lease-state.ts). */
  lease: LeaseSetState;
  /** While New: the captures to restore from, and the VMIs now. */
  resolution?: Resolution;
  observed?: ObservedWorkload[];
  /**
   * While New: the files each VM may be restored to, by "namespace/name" (its own files by its current
   * spec, see runtime/file-claims.ts); a VM absent here may be written nothing.
   */
  ownedFiles?: ReadonlyMap<string, readonly string[]>;
  /**
   * While New: the claims each VM may be restored to, by "namespace/name" (the claims its current spec
   * alone names, see runtime/claim-disks.ts); a VM absent here may be written no claim.
   */
  ownedClaims?: ReadonlyMap<string, readonly PlannedClaim[]>;
  /**
   * While New: the VMs to restore whose VirtualMachine does not exist (by target "namespace/name"), with the disks
   * they would be created with or why they cannot be (created-disks.ts); a VM absent here exists.
   */
  missingVms?: ReadonlyMap<string, CreatedDisks | CreatedDisksProblem>;
  /**
   * While Starting: the Secrets and ConfigMaps that the definitions of the step's VMs to create reference and that
   * do not exist, by target "namespace/name" (e.g. "Secret cloud-init"); a VM absent here lacks nothing.
   */
  missingReferences?: ReadonlyMap<string, readonly string[]>;
  /**
   * While the current step prepares: the claims it creates that exist ("namespace/name"), or are still being
   * deleted (a deleted VM's claim that a pod still uses); one absent here does not exist.
   */
  claimsNow?: ReadonlyMap<string, "Present" | "Deleting">;
}

export interface RestoreSettings {
  leaseRenewMs: number;
}

/** What the operator writes into a NodeRestore's status (results are the agent's). */
export type StepStatusPatch = Omit<NodeRestoreStatus, "results">;

export type RestoreAction =
  | { kind: "CreateStep"; step: NodeRestore }
  | { kind: "DeleteStep"; step: NodeRestore }
  | { kind: "ClaimLease"; node: string; step: string }
  | { kind: "ReleaseLease" }
  | { kind: "HoldVm"; vm: WorkloadRef; hold: VmHold }
  | { kind: "StartVm"; vm: WorkloadRef; node: string; runStrategy: string }
  | { kind: "ReleaseVm"; vm: WorkloadRef; hold: VmHold; runStrategy?: string }
  | { kind: "CreateMigration"; vm: WorkloadRef; node: string }
  | { kind: "CreateClaim"; vm: WorkloadRef; claim: NodeRestoreSpecWorkloadClaim; node: string }
  | { kind: "CreateVm"; vm: WorkloadRef; objects: RecreatedObjects }
  | { kind: "ReplaceSpec"; vm: WorkloadRef; spec: Record<string, unknown>; hold: VmHold }
  | { kind: "StartJob"; step: NodeRestore }
  | { kind: "DeleteJob"; step: NodeRestore }
  | { kind: "RecordStep"; step: NodeRestore; status: StepStatusPatch }
  | { kind: "Event"; type: "Normal" | "Warning"; reason: string; message: string };

export type EventAction = Extract<RestoreAction, { kind: "Event" }>;

export interface RestoreDecision {
  /**
   * What to do, in order, before the status is written. An Event here follows the RecordStep it reports: it is
   * true once that step's record is written, whatever becomes of the status write.
   */
  actions: RestoreAction[];
  status: WorkloadRestoreStatus;
  /**
   * Events that report this status (planned, waiting, failed, finished): emitted only once it is written. Were
   * they emitted before, a status write that fails (a conflict) would have the next pass, which decides them
   * again, repeat them.
   */
  statusEvents: EventAction[];
  requeueAfterMs?: number;
}

const iso = rfc3339;
/** How often a step waiting for VMs to stop, migrate or start looks again if no watch event comes first. */
const WAIT_MS = 2_000;
/**
 * How often a restore waiting for its backup looks again if no event of the backup comes first (its end
 * enqueues the restore; this is for an event missed).
 */
const BACKUP_WAIT_MS = 60_000;

export const restoreOrdering = (restore: WorkloadRestore): OrderingPolicy =>
  orderingPolicy(restore.spec.ordering, restore.metadata.uid ?? "");

export function decideRestore(world: RestoreWorld, settings: RestoreSettings): RestoreDecision {
  const { restore, now } = world;
  const nowIso = iso(now);
  const prev = restore.status ?? {};
  const actions: RestoreAction[] = [];
  const statusEvents: EventAction[] = [];
  const steps = world.steps.map((s) => ({ ...s, step: structuredClone(s.step) }));
  steps.sort((a, b) => a.step.spec.order - b.step.spec.order);
  const facts: RestoreFacts = {
    phase: prev.phase ?? "New",
    plan: prev.plan ?? [],
    planTruncated: prev.planTruncated ?? 0,
    startTime: prev.startTime,
    completionTime: prev.completionTime,
    progressing: { reason: "Planning", message: "choosing a restore node and an action for every VM" },
    ...(world.lease.keys ? { storageBackends: world.lease.keys } : {}),
  };
  const result = (requeueAfterMs?: number): RestoreDecision => ({
    actions,
    status: buildRestoreStatus(restore, steps, facts, nowIso),
    statusEvents,
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  });

  if (isFinished(facts.phase)) {
    if (world.lease.ours || world.lease.heldSome) actions.push({ kind: "ReleaseLease" });
    return { actions, status: prev, statusEvents };
  }

  if (facts.phase === "New" || facts.phase === "Planning") {
    const objects = planVmObjects(
      world.resolution ?? { workloads: [], unrestorable: [] },
      world.missingVms ?? new Map(),
      restore.spec.definition ?? "Keep",
    );
    const { resolution } = objects;
    const fail = (invalid: { reason: string; message: string }): RestoreDecision => {
      facts.phase = "Failed";
      facts.invalid = invalid;
      facts.startTime = nowIso;
      facts.completionTime = nowIso;
      statusEvents.push({ kind: "Event", type: "Warning", ...invalid });
      return result();
    };
    // The API server fills in the CRD's defaults (the one place they are written down) on every object it
    // serves: a field missing here means that the installed CRD is older than the operator.
    const { conflictPolicy, waitForBackup, definition } = restore.spec;
    if (conflictPolicy === undefined || waitForBackup === undefined || definition === undefined) {
      const missing = [
        ...(conflictPolicy === undefined ? ["spec.conflictPolicy"] : []),
        ...(waitForBackup === undefined ? ["spec.waitForBackup"] : []),
        ...(definition === undefined ? ["spec.definition"] : []),
      ];
      return fail({
        reason: "CRDOutdated",
        message:
          `${missing.join(" and ")} ${missing.length > 1 ? "are not set, although the WorkloadRestore CRD defaults them" : "is not set, although the WorkloadRestore CRD defaults it"}: ` +
          "the installed CRD is older than the operator; install the CRDs of this version, then create the " +
          "WorkloadRestore again",
      });
    }
    if (resolution.invalid) return fail(resolution.invalid);
    if (resolution.unfinished?.length) {
      // Applied together with its backup (one kubectl apply, one GitOps sync): waits for it, touching nothing.
      const ns = restore.metadata.namespace ?? "";
      const { unfinished } = resolution;
      const more = unfinished.length > BACKUPS_LISTED ? ` and ${unfinished.length - BACKUPS_LISTED} more` : "";
      const which = `FederatedBackup${unfinished.length > 1 ? "s" : ""} ${unfinished
        .slice(0, BACKUPS_LISTED)
        .map((u) => `${ns}/${u.name} (${u.phase})`)
        .join(", ")}${more}`;
      const since = Date.parse(restore.metadata.creationTimestamp ?? "") || now;
      const deadline = since + parseDuration(waitForBackup);
      if (now >= deadline) {
        return fail({
          reason: "BackupNotFinished",
          message:
            `${which} not finished within spec.waitForBackup (${waitForBackup}) of the restore's creation; only a ` +
            "Completed or PartiallyFailed backup can be restored from. Nothing was touched: create a new " +
            "WorkloadRestore once the backup has finished",
        });
      }
      facts.progressing = {
        reason: "WaitingForBackup",
        message: `waiting for ${which} to finish, until ${iso(deadline)} (spec.waitForBackup ${waitForBackup})`,
      };
      const waitingBefore = prev.conditions?.find((c) => c.type === "Progressing")?.reason === "WaitingForBackup";
      if (!waitingBefore) {
        statusEvents.push({
          kind: "Event",
          type: "Normal",
          reason: "WaitingForBackup",
          message: facts.progressing.message,
        });
      }
      return result(Math.min(deadline - now, BACKUP_WAIT_MS));
    }
    facts.startTime = nowIso;
    const plan = planRestore({
      workloads: resolution.workloads,
      observed: world.observed ?? [],
      nodes: world.nodes,
      placement: restore.spec.placement ?? {},
      conflictPolicy,
      groups: restore.spec.groups ?? [],
      ordering: restoreOrdering(restore),
    });
    const skipped: RestorePlanEntry[] = resolution.unrestorable.map((u) => ({
      namespace: u.namespace,
      name: u.name,
      backup: u.backup,
      action: "Skip",
      reason: u.message,
      problem: u.reason,
    }));
    const resolved = new Map(resolution.workloads.map((w) => [workloadKey(w), w]));
    const planned: PlanEntry[] = plan.entries.map((e) => {
      const source = resolved.get(workloadKey(e))?.source;
      const definitionAction = objects.definition.get(workloadKey(e));
      return e.action === "Skip"
        ? { ...e, ...(source ? { source } : {}) }
        : { ...e, ...(source ? { source } : {}), ...(definitionAction ? { definition: definitionAction } : {}) };
    });
    const entries = [...planned, ...skipped];
    facts.plan = entries;
    // Sorted by VM; the planner's problems of a VM keep their order.
    facts.problems = [
      ...plan.problems,
      ...resolution.unrestorable.map((u): PlanProblem => ({
        namespace: u.namespace,
        name: u.name,
        reason: u.reason,
        message: u.message,
      })),
    ].sort(compareWorkloads);
    const desired = plan.nodeOrder.map((node, i) =>
      buildNodeRestore(
        restore,
        i + 1,
        node,
        planned.filter((e) => e.restoreNode === node && e.action !== "Skip"),
        resolved,
        {
          files: world.ownedFiles ?? new Map(),
          claims: world.ownedClaims ?? new Map(),
          created: objects.created,
        },
      ),
    );
    const plannedCount = entries.filter((e) => e.action !== "Skip").length;
    const skips = skipReasons(entries);
    const summary = `${plannedCount} VMs on ${desired.length} nodes (${desired.map((s) => `${s.spec.node}: ${s.spec.workloads.length}`).join(", ") || "none"})${
      entries.length > plannedCount ? `; ${entries.length - plannedCount} skipped (${skips})` : ""
    }`;
    // Nothing has been touched while the phase is New: steps left by an interrupted pass are replaced when
    // the plan came out differently this time (and removed when there is nothing to run).
    const willRun = desired.length > 0 && !restore.spec.dryRun;
    const byName = new Map((willRun ? desired : []).map((d) => [d.metadata.name!, d]));
    const kept = new Set<string>();
    for (const { step } of steps) {
      if (jsonEqual(byName.get(step.metadata.name!)?.spec, step.spec)) kept.add(step.metadata.name!);
      else actions.push({ kind: "DeleteStep", step });
    }
    steps.length = 0;
    if (desired.length === 0) {
      return fail({
        reason: "NothingToRestore",
        message: `no VM can be restored: ${entries.length} skipped (${skips}; see the PlanProblems condition and status.plan)`,
      });
    }
    if (restore.spec.dryRun) {
      // A dry run says what the real run would do. With VMs skipped, that run would end PartiallyFailed (a skipped
      // VM is not restored), so the dry run does too, with Ready False and reason DryRunWithSkips: whoever gates the
      // real restore on `kubectl wait --for=condition=Ready` is stopped by a plan that leaves VMs out rather than
      // waved through, and `kubectl get wr` shows it. A plan that skips every VM fails with NothingToRestore, above.
      const clean = entries.length === plannedCount;
      facts.phase = clean ? "Completed" : "PartiallyFailed";
      facts.completionTime = nowIso;
      facts.dryRun = true;
      statusEvents.push({
        kind: "Event",
        type: clean ? "Normal" : "Warning",
        reason: clean ? "DryRun" : "DryRunWithSkips",
        message: `planned ${summary}; nothing touched`,
      });
      return result();
    }
    for (const d of desired) if (!kept.has(d.metadata.name!)) actions.push({ kind: "CreateStep", step: d });
    steps.push(...desired.map((step) => ({ step })));
    facts.phase = "InProgress";
    facts.progressing = { reason: "Planned", message: summary };
    statusEvents.push({ kind: "Event", type: "Normal", reason: "Planned", message: summary });
    return result(0);
  }

  const current = steps.find(({ step }) => !isDone(step.status?.phase));
  if (!current) return finish();
  // Nothing of a step is touched without every back end's Lease (another run may have taken one over after
  // this one's expired while the operator was away). The ones held are given back meanwhile: all or none.
  if (!world.lease.ours && !world.lease.free) {
    if (world.lease.heldSome) actions.push({ kind: "ReleaseLease" });
    facts.progressing = { reason: "WaitingForVolumeLease", message: waitingForLeaseMessage(world.lease) };
    return result(5_000);
  }
  const position = `${current.step.spec.order}/${steps.length}`;
  const node = current.step.spec.node;
  facts.coordinatingNode = node;
  const outcome = advanceStep(world, current, actions, nowIso);
  facts.progressing = { reason: outcome.reason, message: `node ${node} (${position}): ${outcome.message}` };
  if (outcome.done) return result(0);
  const due =
    !world.lease.ours || world.lease.holderNode !== node || now - (world.lease.renewedAt ?? 0) >= settings.leaseRenewMs;
  // Claimed (or renewed) before any other action of the pass.
  if (due) actions.unshift({ kind: "ClaimLease", node, step: current.step.metadata.name! });
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
    statusEvents.push({
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
  requeueAfterMs?: number;
}

/** What the stages of one step share during a pass. */
interface StepPass {
  world: RestoreWorld;
  step: NodeRestore;
  job?: JobView;
  node: string;
  me: string;
  timeoutMs: number;
  nowIso: string;
  actions: RestoreAction[];
  /** The operator's final word per VM, as recorded plus what this pass adds. */
  outcomes: Map<string, NodeRestoreStatusOutcome>;
  /** Records a status change of the step (with the outcomes so far) and mirrors it into `step`. */
  record(patch: StepStatusPatch): void;
  /** Records the VM's outcome as Failed: reason in CamelCase (see NodeRestore status.outcomes[].reason). */
  fail(w: WorkloadRef, reason: string, message: string, runsOn?: string): void;
  vmOf(w: WorkloadRef): VmView;
}

/** One pass over the current step: Pending → Preparing → Restoring → Starting → Succeeded | Failed. */
function advanceStep(
  world: RestoreWorld,
  current: ObservedRestoreStep,
  actions: RestoreAction[],
  nowIso: string,
): StepOutcome {
  const { restore } = world;
  const { step } = current;
  const outcomes = new Map((step.status?.outcomes ?? []).map((o) => [workloadKey(o), o]));
  const pass: StepPass = {
    world,
    step,
    ...(current.job ? { job: current.job } : {}),
    node: step.spec.node,
    me: restoreOwnerId(restore),
    timeoutMs: parseDuration(restore.spec.nodeTimeout ?? RESTORE_DEFAULTS.nodeTimeout),
    nowIso,
    actions,
    outcomes,
    record: (patch) => {
      const full = { ...patch, ...(outcomes.size ? { outcomes: [...outcomes.values()] } : {}) };
      actions.push({ kind: "RecordStep", step, status: full });
      step.status = { ...step.status, ...full };
    },
    fail: (w, reason, message, runsOn) =>
      outcomes.set(workloadKey(w), {
        namespace: w.namespace,
        name: w.name,
        phase: "Failed",
        verified: false,
        ...(runsOn ? { node: runsOn } : {}),
        reason,
        message,
      }),
    vmOf: (w) => world.vms.get(workloadKey(w)) ?? { exists: false, runStrategy: "Halted" },
  };
  const phase = step.status?.phase;
  if (phase === undefined || phase === "Pending") {
    const started = beginStep(pass);
    if (started) return started;
  }
  if (step.status?.phase === "Preparing") return prepare(pass);
  if (step.status?.phase === "Restoring") {
    const running = awaitRestoreJob(pass);
    if (running) return running;
  }
  return startVms(pass);
}

/** The node's turn begins, if the node can take it; undefined when the step goes on to Preparing. */
function beginStep(p: StepPass): StepOutcome | undefined {
  const { node, step } = p;
  const workloads = step.spec.workloads;
  const nodeState = p.world.nodes.find((n) => n.name === node);
  if (!nodeState?.ready) {
    const why = nodeState ? `node ${node} is not Ready` : `node ${node} no longer exists`;
    for (const w of workloads) {
      p.fail(w, "NodeFailed", `not restored: ${why}; its disks and its instance were not touched`, p.vmOf(w).vmi?.node);
    }
    p.record({
      phase: "Failed",
      workloads: workloads.length,
      restoredCount: 0,
      completionTime: p.nowIso,
      message: why,
    });
    p.actions.push({
      kind: "Event",
      type: "Warning",
      reason: "NodeFailed",
      message: `${why}: its ${workloads.length} VMs are not restored`,
    });
    return { reason: "NodeFailed", message: why, done: true };
  }
  p.record({ phase: "Preparing", workloads: workloads.length, startTime: p.nowIso, message: "stopping the VMs" });
  p.actions.push({
    kind: "Event",
    type: "Normal",
    reason: "NodeStarted",
    message: `node ${node} is the coordinating node: restoring ${workloads.length} VMs`,
  });
  return undefined;
}

/**
 * Every VM of the node is migrated there or not, as the plan recorded in the step (action MigrateThenRestore),
 * then held and stopped. The plan's action is carried out, not decided again: a VM that moved since it was
 * planned is migrated from where it runs now (MigrateThenRestore), or stopped there (every other action).
 */
function prepare(p: StepPass): StepOutcome {
  const { node, world, step } = p;
  const timedOut = world.now - (Date.parse(step.status?.startTime ?? "") || world.now) > p.timeoutMs;
  // A node that died while its VMs were being stopped will not run the restore Job: give up at once on
  // what is not stopped yet, rather than wait for nodeTimeout (the stopped ones are started again).
  const nodeLost = !world.nodes.find((n) => n.name === node)?.ready;
  const giveUp = timedOut || nodeLost;
  const notStopped = nodeLost
    ? `node ${node} became NotReady before its disks were restored; they were not touched`
    : `not stopped within nodeTimeout; its disks were not touched`;
  const notStoppedReason = nodeLost ? "NodeFailed" : "NotStopped";
  const recorded = step.status?.outcomes?.length ?? 0;
  const notes: string[] = [];
  for (const w of step.spec.workloads) {
    if (p.outcomes.has(workloadKey(w))) continue;
    const migrate = w.action === "MigrateThenRestore";
    const v = p.vmOf(w);
    if (w.definition === "Create") {
      if (v.exists) {
        p.fail(
          w,
          "VMExists",
          `a VirtualMachine ${workloadKey(w)} was created after the restore planned to create it; it was not touched, nor its disks`,
          v.vmi?.node,
        );
        continue;
      }
      if (giveUp) {
        p.fail(w, notStoppedReason, `its claims were not all created in time; ${notStopped}`);
        continue;
      }
      // Its claims first: the restore Job mounts them. Created with the node in selected-node, as the scheduler
      // would for the Job's pod, so that a WaitForFirstConsumer class provisions them where the Job runs.
      const stateOf = (c: { claimName: string }) => world.claimsNow?.get(`${w.namespace}/${c.claimName}`);
      const absent = (w.claims ?? []).filter((c) => c.create && !stateOf(c));
      const deleting = (w.claims ?? []).filter((c) => c.create && stateOf(c) === "Deleting");
      for (const claim of absent) p.actions.push({ kind: "CreateClaim", vm: w, claim, node });
      if (absent.length > 0) notes.push(`${w.name} creating ${absent.length} claims`);
      if (deleting.length > 0) {
        notes.push(
          `${w.name} waiting for claim ${deleting[0]!.claimName} to be deleted (a pod still using it keeps it, kubernetes.io/pvc-protection)`,
        );
      }
      continue;
    }
    if (!v.exists) {
      p.fail(
        w,
        "VMNotFound",
        `VirtualMachine ${workloadKey(w)} does not exist: without it the VM can be neither stopped nor started, so its disks were not touched`,
      );
      continue;
    }
    const vmi = v.vmi;
    const held = v.hold?.owner === p.me;
    const elsewhere = vmi?.phase === "Running" && !!vmi.node && vmi.node !== node;
    if (!held && giveUp) {
      // Never stop a VM after the node's time is up: it would only be started again.
      if (migrate && elsewhere && !nodeLost) {
        p.fail(
          w,
          "MigrationTimeout",
          `not migrated to ${node} within nodeTimeout; it keeps running on ${vmi.node} and its disks were not touched`,
          vmi.node,
        );
      } else p.fail(w, notStoppedReason, notStopped, vmi?.node);
      continue;
    }
    if (!held && migrate && elsewhere) {
      const m = v.migration?.phase;
      if (m === "Failed" || (m === "Succeeded" && !vmi.migrating)) {
        p.fail(
          w,
          "MigrationFailed",
          `the live migration from ${vmi.node} to ${node} failed; the VM keeps running on ${vmi.node} and its disks were not touched`,
          vmi.node,
        );
        continue;
      }
      if (!v.migration) p.actions.push({ kind: "CreateMigration", vm: w, node });
      notes.push(`${w.name} migrating from ${vmi.node}`);
      continue;
    }
    if (!held) {
      // Another restore's hold keeps the original state it recorded; only the owner changes.
      const hold: VmHold = v.hold
        ? { ...v.hold, owner: p.me }
        : {
            owner: p.me,
            runStrategy: v.runStrategy,
            activeNode: vmi?.phase === "Running" ? (vmi.node ?? "") : "",
            ...(v.pinnedNode ? { nodeSelector: v.pinnedNode } : {}),
          };
      p.actions.push({ kind: "HoldVm", vm: w, hold });
      notes.push(`${w.name} stopping`);
      continue;
    }
    if (vmi || v.runStrategy !== "Halted") {
      if (giveUp) {
        // Held without a restore result: the Starting stage starts it again where it ran.
        p.fail(w, notStoppedReason, notStopped, vmi?.node);
        continue;
      }
      // Someone started it again meanwhile: stop it again (the hold keeps how it ran before).
      if (v.runStrategy !== "Halted") p.actions.push({ kind: "HoldVm", vm: w, hold: v.hold! });
      notes.push(`${w.name} stopping on ${vmi?.node ?? "its node"}`);
    }
  }
  if (notes.length > 0) {
    if (p.outcomes.size !== recorded) p.record({});
    return { reason: "PreparingVMs", message: `${notes.length} VMs not stopped yet: ${notes.slice(0, 5).join(", ")}` };
  }
  if (nodeLost) {
    for (const w of step.spec.workloads) if (!p.outcomes.has(workloadKey(w))) p.fail(w, "NodeFailed", notStopped);
  }
  const toRestore = step.spec.workloads.filter((w) => !p.outcomes.has(workloadKey(w)));
  if (toRestore.length === 0) {
    p.record({ phase: "Starting", startingSince: p.nowIso, message: "no VM left to restore" });
    return { reason: "StartingVMs", message: "no VM left to restore", requeueAfterMs: 0 };
  }
  // The outcomes first: the agent leaves out the VMs the operator has decided already.
  p.record({ phase: "Restoring", message: `the restore Job writes back the disks of ${toRestore.length} VMs` });
  p.actions.push({ kind: "StartJob", step });
  return { reason: "Restoring", message: `restoring the disks of ${toRestore.length} VMs` };
}

/** Waits for the restore Job and its report; undefined once the step goes on to Starting. */
function awaitRestoreJob(p: StepPass): StepOutcome | undefined {
  const { job, step, world } = p;
  const results = new Set((step.status?.results ?? []).map(workloadKey));
  const sent = step.spec.workloads.filter((w) => !p.outcomes.has(workloadKey(w)));
  const startedAt = Date.parse(step.status?.startTime ?? "") || world.now;
  if (job && !job.complete && !job.failed) {
    if (world.now - startedAt <= p.timeoutMs) {
      return { reason: "Restoring", message: `the restore Job runs for ${sent.length} VMs` };
    }
    p.actions.push({ kind: "DeleteJob", step });
    p.record({
      phase: "Starting",
      startingSince: p.nowIso,
      message: "the restore Job did not finish within nodeTimeout",
    });
    return { reason: "StartingVMs", message: "the restore Job timed out; waiting for it to end" };
  }
  // The agent reports before its pod exits, but the Job's completion can reach the operator first.
  const reported = sent.every((w) => results.has(workloadKey(w)));
  const completedAt = Date.parse(job?.completionTime ?? "") || startedAt;
  if (job && !reported && world.now - completedAt < REPORT_GRACE_MS) {
    return { reason: "Restoring", message: "waiting for the node agent's report", requeueAfterMs: 1_000 };
  }
  const message = !job
    ? "the restore Job disappeared before it finished"
    : job.failed
      ? `the restore Job failed (${job.failureReason ?? "Failed"}): ${job.failureMessage ?? "no message"}`
      : "the restore Job finished";
  p.record({ phase: "Starting", startingSince: p.nowIso, message });
  return undefined;
}

/** Every held VM is started where it belongs and released; then the step records its outcome. */
function startVms(p: StepPass): StepOutcome {
  const { step, job, node, world } = p;
  if (job && !job.complete && !job.failed) {
    // A timed-out Job being deleted: its pod may still write; nothing starts before it is gone.
    return { reason: "StartingVMs", message: "waiting for the stopped restore Job to end" };
  }
  const results = new Map((step.status?.results ?? []).map((r) => [workloadKey(r), r]));
  const recorded = step.status?.outcomes?.length ?? 0;
  const timedOut = world.now - (Date.parse(step.status?.startingSince ?? "") || world.now) > p.timeoutMs;
  const notes: string[] = [];
  for (const w of step.spec.workloads) {
    const key = workloadKey(w);
    const v = p.vmOf(w);
    const report = results.get(key);
    const restored = report?.restored === true && !p.outcomes.has(key);
    if (v.exists && v.hold?.owner === p.me && restored && w.definition === "Replace") {
      const replaced = replacement(v, report);
      if (replaced) {
        p.actions.push({ kind: "ReplaceSpec", vm: w, spec: replaced.spec, hold: replaced.hold });
        notes.push(`${w.name} spec put back as captured`);
        continue;
      }
      if (!RUNNING_STRATEGIES.has(v.hold.runStrategy)) {
        // The captured spec does not run: put back as it is, not started.
        p.actions.push({ kind: "ReleaseVm", vm: w, hold: v.hold, runStrategy: v.hold.runStrategy });
        notes.push(`${w.name} released stopped, as captured`);
        continue;
      }
    }
    if (!v.exists && restored && w.definition === "Create" && !p.outcomes.has(key)) {
      const creation = vmCreation({
        workload: w,
        report,
        nodeMountPath: step.spec.sharedVolume?.nodeMountPath ?? "",
        owner: p.me,
        backup: `${step.metadata.namespace}/${w.backup}`,
        keepIdentity: p.world.restore.spec.keepIdentity === true,
        missingReferences: world.missingReferences?.get(key) ?? [],
      });
      if (creation.kind === "Refuse") {
        p.fail(w, creation.reason, creation.message);
        continue;
      }
      p.actions.push({ kind: "CreateVm", vm: w, objects: creation.objects });
      const missing = world.missingReferences?.get(key) ?? [];
      if (missing.length > 0) {
        p.fail(
          w,
          "MissingReferences",
          `its disks were restored and its VirtualMachine created, halted: it references ${missing.join(", ")}, ` +
            "which do not exist in its namespace; create them, then start it",
        );
      } else if (creation.held) {
        notes.push(`${w.name} created, starting on ${node}`);
      } else {
        p.outcomes.set(key, {
          namespace: w.namespace,
          name: w.name,
          phase: "Restored",
          definition: "Created",
          bytes: report.bytes ?? 0,
          verified: report.verified === true,
          message:
            `${report.files ?? 0} files, ${report.bytes ?? 0} bytes written and verified; its VirtualMachine was ` +
            `created from its captured definition, not started: its run strategy is ${creation.runStrategy}`,
        });
      }
      continue;
    }
    if (v.exists && v.hold?.owner === p.me) {
      const hold = v.hold;
      const target = restored ? node : hold.activeNode;
      const runStrategy = startStrategy(hold);
      // Back to the strategy it had (a VM that did not run keeps the Always it was started with).
      const afterwards =
        hold.runStrategy === "Halted" || hold.runStrategy === runStrategy ? undefined : hold.runStrategy;
      const failure = failureOf(report, step.status?.message);
      const disks = restored ? "Untouched" : disksAfterFailure(p.outcomes.get(key)?.reason ?? failure.reason, w);
      if (!mayStartAgain(disks)) {
        // A device partly written (or maybe): released stopped, never started on it.
        if (!p.outcomes.has(key)) p.fail(w, failure.reason, `${failure.text}; ${describeDisksAfterFailure(disks)}`);
        p.actions.push({ kind: "ReleaseVm", vm: w, hold, runStrategy: "Halted" });
        notes.push(`${w.name} left stopped`);
      } else if (!target) {
        // It did not run before and its restore failed: back to how it was.
        p.actions.push({ kind: "ReleaseVm", vm: w, hold, runStrategy: hold.runStrategy });
      } else if (!world.nodes.find((n) => n.name === target)?.ready) {
        // Pinned to a node that is gone it would never start: released unpinned, KubeVirt places it.
        if (!p.outcomes.has(key)) {
          const failure = failureOf(report, step.status?.message);
          const what = restored ? "its disks were restored" : `${failure.text}; its disks were not touched`;
          p.fail(
            w,
            restored ? "NodeFailed" : failure.reason,
            `${what}, but node ${target} is not Ready: it was released to start wherever KubeVirt places it`,
          );
        }
        p.actions.push({
          kind: "ReleaseVm",
          vm: w,
          hold,
          runStrategy: hold.runStrategy === "Halted" ? runStrategy : hold.runStrategy,
        });
      } else if (v.vmi?.phase === "Running" && v.vmi.node === target && v.runStrategy === runStrategy) {
        p.actions.push({ kind: "ReleaseVm", vm: w, hold, ...(afterwards ? { runStrategy: afterwards } : {}) });
      } else if (timedOut) {
        if (!p.outcomes.has(key)) {
          const failure = failureOf(report, step.status?.message);
          const what = restored ? "its disks were restored" : `${failure.text}; its disks were not touched`;
          p.fail(
            w,
            restored ? "StartTimeout" : failure.reason,
            `${what}, but it did not reach Running on ${target} within nodeTimeout`,
            v.vmi?.node,
          );
        }
        p.actions.push({ kind: "ReleaseVm", vm: w, hold, ...(afterwards ? { runStrategy: afterwards } : {}) });
      } else if (v.runStrategy !== runStrategy || v.pinnedNode !== target) {
        p.actions.push({ kind: "StartVm", vm: w, node: target, runStrategy });
      }
      notes.push(`${w.name} starting on ${target || "(stays stopped)"}`);
      continue;
    }
    if (p.outcomes.has(key)) continue;
    const runsOn = v.vmi?.phase === "Running" ? v.vmi.node : undefined;
    if (restored) {
      const definition = definitionOutcome(w, v, report);
      p.outcomes.set(key, {
        namespace: w.namespace,
        name: w.name,
        phase: "Restored",
        node,
        bytes: report.bytes ?? 0,
        verified: report.verified === true,
        ...(definition ? { definition } : {}),
        message:
          `${report.files ?? 0} files, ${report.bytes ?? 0} bytes written and verified; ` +
          (!v.exists
            ? "the VirtualMachine was deleted meanwhile"
            : runsOn || RUNNING_STRATEGIES.has(v.runStrategy)
              ? `running on ${runsOn ?? node}`
              : `not running (run strategy ${v.runStrategy})`) +
          (definition ? `; VirtualMachine ${DEFINITION_WORDS[definition]}` : ""),
      });
    } else {
      const after = runsOn ? `; started again on ${runsOn}` : "";
      const failure = failureOf(report, step.status?.message);
      const disks = describeDisksAfterFailure(disksAfterFailure(failure.reason, w));
      p.fail(w, failure.reason, `${failure.text}; ${disks}${after}`, runsOn);
    }
  }
  if (notes.length > 0) {
    if (p.outcomes.size !== recorded) p.record({});
    return { reason: "StartingVMs", message: `${notes.length} VMs starting: ${notes.slice(0, 5).join(", ")}` };
  }
  const total = step.spec.workloads.length;
  const restoredCount = [...p.outcomes.values()].filter((o) => o.phase === "Restored").length;
  const allRestored = restoredCount === total;
  p.record({
    phase: allRestored ? "Succeeded" : "Failed",
    restoredCount,
    completionTime: p.nowIso,
    message: `${restoredCount} of ${total} VMs restored`,
  });
  p.actions.push({
    kind: "Event",
    type: allRestored ? "Normal" : "Warning",
    reason: allRestored ? "NodeSucceeded" : "NodeFailed",
    message: `node ${node}: ${restoredCount} of ${total} VMs restored`,
  });
  return { reason: "NodeDone", message: `${restoredCount} of ${total} VMs restored`, done: true };
}

const DEFINITION_WORDS: Record<DefinitionOutcome, string> = {
  Created: "created from its captured definition",
  Replaced: "spec put back as captured",
  Kept: "spec kept, although it differs from the captured one",
  Matches: "spec as captured",
};

/**
 * Why a VM the restore Job was sent was not restored: the agent's reason when it reported one (anything that is
 * not a CamelCase word becomes RestoreFailed, so that the outcome passes the CRD's pattern), else JobFailed.
 */
function failureOf(
  report: NodeRestoreStatusResult | undefined,
  stepMessage: string | undefined,
): { reason: string; text: string } {
  if (report && !report.restored) {
    const reason = /^[A-Z][A-Za-z0-9]{0,63}$/.test(report.reason ?? "") ? report.reason! : "RestoreFailed";
    return { reason, text: `${report.reason ?? "RestoreFailed"}: ${report.message ?? "no detail"}` };
  }
  return { reason: JOB_FAILED, text: `not restored: ${stepMessage ?? "the restore Job did not report this VM"}` };
}
