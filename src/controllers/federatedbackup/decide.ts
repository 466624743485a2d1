// The FederatedBackup decision: from what exists (gathered into a BackupWorld), what to do next and
// what the status says. Pure and deterministic; the reconciler gathers before and acts after.
//
// The run moves New → InProgress (round 1, one node step at a time) → Verifying → Reconciling (an
// extra round for VMs that moved or whose node failed) → Verifying … → Completed | PartiallyFailed |
// Failed. Everything is recomputed from the steps (NodeSnapshots) and their Jobs on every pass.
import { isFinished } from "../../api/phases.js";
import { rfc3339 } from "../../api/timestamps.js";
import { parseDuration } from "../../api/duration.js";
import type {
  FederatedBackup,
  FederatedBackupStatus,
  FederatedBackupStatusPhase,
  NodeSnapshot,
  NodeSnapshotStatusFailedEntry,
  NodeSnapshotStatusPhase,
} from "../../api/v1alpha1/index.js";
import {
  finalPhase,
  nextRoundDecision,
  planDiscovery,
  planReconcileRound,
  workloadKey,
  type MissingReason,
  type ObservedNode,
  type ObservedWorkload,
  type OrderingPolicy,
  type UnplacedWorkload,
  type WorkloadRef,
} from "../../planning/index.js";
import { jsonEqual } from "../runtime/conditions.js";
import { orderingPolicy } from "../runtime/ordering.js";
import { waitingForLeaseMessage, type LeaseSetState } from "../runtime/lease-state.js";
import { buildNodeSnapshot, DEFAULTS, usesCsiCut } from "./builders.js";
import { inlineLocation, LOCATION_NOT_FOUND, type ResolvedLocation } from "./location.js";
import { describeLocation } from "../../storage/location.js";
import { claimMethodsSummary } from "./claim-methods-event.js";
import { capturedWorkloads, expectedWorkloads, missingWorkloads, type StepWithPhase } from "./missing.js";
import { buildStatus, type StatusFacts } from "./status.js";
import { statusOutline } from "./status-pace.js";
import { agentReported, byRoundAndOrder, deriveStepPhase, type ObservedStep } from "./steps.js";
import { holdingTheCut, planPipeline, type PipelineSettings } from "./pipeline.js";

export type { LeaseState } from "../runtime/lease-state.js";

export interface BackupWorld {
  now: number;
  backup: FederatedBackup;
  steps: ObservedStep[];
  /** In-scope VMIs as observed now. */
  workloads: ObservedWorkload[];
  nodes: ObservedNode[];
  /** The Leases of every storage back end of the run's VMs, as one (runtime/lease-state.ts). */
  lease: LeaseSetState;
  /**
   * Where the run writes: resolved from spec.location or spec.locationRef while New, then the location its
   * steps recorded (location.ts). Absent for an inline location, which the backup itself says.
   */
  location?: ResolvedLocation;
  /** While New: the referenced BackupLocation is missing or not Available, so the run does not start. */
  locationWaiting?: { reason: string; message: string };
  /** Something the API server could not check: a missing PVC, VolumeSnapshotClass, ... */
  invalid?: { reason: string; message: string };
  /** While New: namespaces spec.workloads names that do not exist (a typo selects nothing there). */
  missingNamespaces?: string[];
  /** While New: VMs spec.workloads.names names that do not exist at all (neither VMI nor VirtualMachine). */
  absent?: WorkloadRef[];
}

export interface DecisionSettings {
  /** How often a held Lease is renewed (a third of its duration). */
  leaseRenewMs: number;
  /** How long verification waits for live migrations to land before giving up on those VMs. */
  migrationWaitMs: number;
}

export type BackupAction =
  | { kind: "CreateStep"; step: NodeSnapshot }
  | { kind: "DeleteStep"; step: NodeSnapshot }
  | { kind: "ClaimLease"; node: string; step: string }
  | { kind: "ReleaseLease" }
  /** waitsForTurn: a pipelined step; its agent waits until the run's Leases name it before it cuts. */
  | { kind: "StartJob"; step: NodeSnapshot; waitsForTurn: boolean }
  | { kind: "DeleteJob"; step: NodeSnapshot }
  /** CSI method: restore the step's VolumeSnapshot into a claim and start the extract Job on its node. */
  | { kind: "StartExtract"; step: NodeSnapshot }
  /** CSI method, step over: delete the restored claim and (unless extractAt Restore) the VolumeSnapshot. */
  | { kind: "ReleaseVolumeSnapshot"; step: NodeSnapshot }
  | {
      kind: "RecordStepPhase";
      step: NodeSnapshot;
      phase: NodeSnapshotStatusPhase;
      message?: string;
      startTime?: string;
      completionTime?: string;
      /** The step's node was lost under its Job: its VMs may be left frozen (see thaw.ts). */
      thawPending?: boolean;
      /** The VMs a failed step leaves uncaptured, each with why, when its agent could not say. */
      failed?: NodeSnapshotStatusFailedEntry[];
    }
  | { kind: "Event"; type: "Normal" | "Warning"; reason: string; message: string }
  | { kind: "DeleteBackup" };

export interface BackupDecision {
  actions: BackupAction[];
  /** The phase of `status`, known without building it. */
  phase: FederatedBackupStatusPhase;
  /**
   * The status this pass would write. Built when first read: its progress walks every VM of the run, while
   * a pass within a second of the previous write needs only `outline()` (status-pace.ts).
   */
  readonly status: FederatedBackupStatus;
  /** statusOutline(status), without walking the VMs while the run is not finished. */
  outline: () => unknown;
  requeueAfterMs?: number;
}

const iso = rfc3339;

/** How often a run waiting for its BackupLocation looks again, besides the location's own changes. */
export const LOCATION_RECHECK_MS = 60_000;

export const orderingOf = (backup: FederatedBackup): OrderingPolicy =>
  orderingPolicy(backup.spec.ordering, backup.metadata.uid ?? "");

export function decideBackup(world: BackupWorld, settings: DecisionSettings): BackupDecision {
  const { backup, now } = world;
  const nowIso = iso(now);
  const prev = backup.status ?? {};
  const actions: BackupAction[] = [];
  const steps = world.steps.map((o) => ({ ...o })).sort((a, b) => byRoundAndOrder(a.step, b.step));
  const location = world.location ?? inlineLocation(backup);
  const withPhase: StepWithPhase[] = steps.map((o) => ({ step: o.step, derived: deriveStepPhase(o, now) }));
  recordStepPhases(withPhase, steps, nowIso, actions);
  for (const { step, derived } of withPhase) {
    // A finished CSI step leaves no restored claim behind (the step's status records that it is done).
    const finished = derived.phase === "Succeeded" || derived.phase === "Failed";
    if (usesCsiCut(step) && step.spec.node && finished && !step.status?.volumeSnapshot?.released)
      actions.push({ kind: "ReleaseVolumeSnapshot", step });
  }

  const facts: StatusFacts = {
    phase: prev.phase ?? "New",
    round: prev.progress?.round ?? 1,
    startTime: prev.startTime,
    completionTime: prev.completionTime,
    ...(location ? { backupPath: location.path, location: describeLocation(location.source) } : {}),
    expiresAt: prev.expiresAt,
    progressing: { reason: "Discovering", message: "finding the selected VMs and where they run" },
    ...(world.lease.keys ? { storageBackends: world.lease.keys } : {}),
  };
  const result = (extraSteps: StepWithPhase[] = [], requeueAfterMs?: number): BackupDecision => {
    const all = [...withPhase, ...extraSteps];
    let status: FederatedBackupStatus | undefined;
    const full = () => (status ??= buildStatus(backup, all, facts, nowIso));
    return {
      actions,
      phase: facts.phase,
      get status() {
        return full();
      },
      // A finished run's outline has its Verified condition, which depends on the missing VMs.
      outline: () =>
        statusOutline(isFinished(facts.phase) ? full() : buildStatus(backup, all, facts, nowIso, "outline")),
      ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
    };
  };
  const finish = (extraSteps: StepWithPhase[] = []): BackupDecision => {
    const all = [...withPhase, ...extraSteps];
    const expected = expectedWorkloads(all);
    const expectedKeys = new Set(expected.map(workloadKey));
    const captured = [...capturedWorkloads(all).keys()].filter((k) => expectedKeys.has(k)).length;
    const missing = missingWorkloads(all).length;
    facts.phase = finalPhase({ expected: expected.length, captured, missing, invalid: false });
    facts.completionTime = nowIso;
    facts.coordinatingNode = undefined;
    if (backup.spec.ttl) facts.expiresAt = iso(now + parseDuration(backup.spec.ttl));
    actions.push({ kind: "ReleaseLease" });
    actions.push({
      kind: "Event",
      type: facts.phase === "Completed" ? "Normal" : "Warning",
      reason: facts.phase,
      message: `${captured} of ${expected.length} VMs captured${missing ? `, ${missing} missing` : ""}`,
    });
    return result(extraSteps);
  };

  // Finished: the status was settled when the run ended; only housekeeping (release the Lease, expire).
  if (isFinished(facts.phase)) {
    if (world.lease.ours || world.lease.heldSome) actions.push({ kind: "ReleaseLease" });
    const settled = { actions, phase: facts.phase, status: prev, outline: () => statusOutline(prev) };
    if (facts.expiresAt) {
      const left = Date.parse(facts.expiresAt) - now;
      if (left <= 0) actions.push({ kind: "DeleteBackup" });
      else return { ...settled, requeueAfterMs: Math.min(left, 24 * 3_600_000) };
    }
    return settled;
  }

  if (world.invalid) {
    facts.phase = "Failed";
    facts.invalid = world.invalid;
    facts.completionTime = nowIso;
    if (world.lease.ours || world.lease.heldSome) actions.push({ kind: "ReleaseLease" });
    actions.push({ kind: "Event", type: "Warning", reason: world.invalid.reason, message: world.invalid.message });
    return result();
  }

  const ordering = orderingOf(backup);

  if (facts.phase === "New" && (world.locationWaiting || !location)) {
    // Nothing is planned against a location that is not there: the BackupLocation's changes wake the run.
    facts.progressing = world.locationWaiting ?? {
      reason: LOCATION_NOT_FOUND,
      message: "the backup's location could not be resolved",
    };
    return result([], LOCATION_RECHECK_MS);
  }

  if (facts.phase === "New") {
    const plan = planDiscovery(world.workloads, world.nodes, ordering, world.absent ?? []);
    const desired = [
      ...plan.steps.map((s) => buildNodeSnapshot(backup, 1, s.order, s.node, s.workloads, [], location)),
      ...(plan.unplaced.length
        ? [buildNodeSnapshot(backup, 1, plan.steps.length + 1, undefined, [], plan.unplaced, location)]
        : []),
    ];
    // Nothing has run while the phase is New, so round-1 steps may still be replaced to match the plan
    // (e.g. after a restart in the middle of creating them, when VMs have moved since).
    const desiredByName = new Map(desired.map((d) => [d.metadata.name!, d]));
    for (const { step } of withPhase) {
      const want = desiredByName.get(step.metadata.name!);
      if (!want || !jsonEqual(want.spec, step.spec)) actions.push({ kind: "DeleteStep", step });
    }
    const kept = new Set(
      withPhase
        .filter(({ step }) => jsonEqual(desiredByName.get(step.metadata.name!)?.spec, step.spec))
        .map(({ step }) => step.metadata.name),
    );
    for (const d of desired) if (!kept.has(d.metadata.name)) actions.push({ kind: "CreateStep", step: d });

    const planned: StepWithPhase[] = desired.map((step) => ({
      step,
      derived: { phase: step.spec.node ? "Pending" : "Unplaced" },
    }));
    withPhase.length = 0;
    facts.startTime = nowIso;
    facts.round = 1;
    if (plan.expected.length === 0) {
      // A selector that matches nothing is far more often a mistake than an intent: say so loudly.
      const message = `no VirtualMachineInstance matches spec.workloads${missingNamespacesNote(world)}; nothing was backed up`;
      actions.push({ kind: "Event", type: "Warning", reason: "NothingSelected", message });
      facts.phase = "Failed";
      facts.invalid = { reason: "NothingSelected", message };
      facts.completionTime = nowIso;
      return result(planned);
    }
    const methods = claimMethodsSummary(desired);
    if (methods) actions.push({ kind: "Event", type: "Normal", reason: "ClaimSnapshotMethods", message: methods });
    if (world.missingNamespaces?.length) {
      actions.push({
        kind: "Event",
        type: "Warning",
        reason: "NamespaceNotFound",
        message: `spec.workloads names namespaces that do not exist, so nothing is selected there: ${world.missingNamespaces.join(", ")}`,
      });
    }
    facts.phase = "InProgress";
    facts.progressing = { reason: "Planned", message: `${plan.expected.length} VMs on ${plan.steps.length} nodes` };
    actions.push({
      kind: "Event",
      type: "Normal",
      reason: "Planned",
      message: `${plan.expected.length} VMs expected; node order: ${plan.steps.map((s) => `${s.node} (${s.workloads.length})`).join(", ") || "none"}${
        plan.unplaced.length ? `; ${plan.unplaced.length} cannot be placed` : ""
      }`,
    });
    return result(planned, 0);
  }

  // Steps of a later round than the status names mean that round was planned and its status write got
  // lost (or is not in the cache yet): carry on with it rather than plan it again.
  const latestRound = Math.max(facts.round, ...withPhase.map((s) => s.step.spec.round));
  if (latestRound > facts.round) {
    facts.round = latestRound;
    facts.phase = "Reconciling";
  }
  const round = facts.round;
  if (facts.phase === "InProgress" || facts.phase === "Reconciling") {
    const stage = decideRoundSteps(world, settings, withPhase, round, facts, actions);
    if (stage !== "RoundDone") return result([], stage.requeueAfterMs);
    facts.phase = "Verifying";
    facts.progressing = {
      reason: "Verifying",
      message: `round ${round} is done; comparing expected and captured VMs`,
    };
    return result([], 0);
  }

  // Verifying: every step of the round is done.
  const missing = missingWorkloads(withPhase);
  const maxRounds = backup.spec.verification?.maxRounds ?? DEFAULTS.maxRounds;
  const reconcileMissing = backup.spec.verification?.reconcileMissing !== false;
  const plan = planReconcileRound(
    missing.map((m) => ({
      workload: { namespace: m.namespace, name: m.name },
      ...(m.lastNode ? { lastNode: m.lastNode } : {}),
      previousReason: toPlanningReason(m.reason),
    })),
    world.workloads,
    world.nodes,
    ordering,
    round + 1,
  );
  const next = nextRoundDecision({
    round,
    maxRounds,
    reconcileMissing,
    missingCount: missing.length,
    resolvableCount: plan.steps.reduce((n, s) => n + s.workloads.length, 0),
  });
  if (next === "Finish") {
    // Stopped by the spec, the budget, or a complete backup: done. Stopped because no missing VM can be
    // placed now: live migrations may still land, so wait for them a while before giving up on them.
    if (missing.length === 0 || !reconcileMissing || round >= maxRounds) return finish();
    const roundEnded = Math.max(
      0,
      ...withPhase
        .filter((s) => s.step.spec.round === round)
        .map((s) => Date.parse(s.step.status?.completionTime ?? "") || 0),
    );
    if (plan.unresolved.some((u) => u.reason === "Migrating") && now - roundEnded < settings.migrationWaitMs) {
      facts.progressing = {
        reason: "WaitingForMigration",
        message: "waiting for live migrations of missing VMs to land",
      };
      return result([], 2_000);
    }
    const record = unplacedRecord(backup, round + 1, 1, plan.unresolved, location);
    if (record) actions.push({ kind: "CreateStep", step: record.step });
    return finish(record ? [record] : []);
  }
  const nextSteps = plan.steps.map((s) =>
    buildNodeSnapshot(backup, round + 1, s.order, s.node, s.workloads, [], location),
  );
  for (const step of nextSteps) actions.push({ kind: "CreateStep", step });
  const record = unplacedRecord(backup, round + 1, plan.steps.length + 1, plan.unresolved, location);
  if (record) actions.push({ kind: "CreateStep", step: record.step });
  facts.phase = "Reconciling";
  facts.round = round + 1;
  facts.progressing = {
    reason: "Reconciling",
    message: `round ${round + 1}: capturing ${missing.length - plan.unresolved.length} missing VMs on ${plan.steps.length} nodes`,
  };
  actions.push({
    kind: "Event",
    type: "Normal",
    reason: "Reconciling",
    message: `round ${round + 1}: ${missing.length} VMs missing; ${plan.steps.map((s) => `${s.node} (${s.workloads.map(workloadKey).join(", ")})`).join("; ")}${
      plan.unresolved.length ? `; ${plan.unresolved.length} cannot be placed` : ""
    }`,
  });
  const planned: StepWithPhase[] = nextSteps.map((step) => ({ step, derived: { phase: "Pending" } }));
  return result(record ? [...planned, record] : planned, 0);
}

// The VMs of a step failed as a whole that its agent did not report, named in the step itself (not only in
// an Event), with the step's failure as their reason.
/** The pipeline's settings for a run: strict (lookAhead 0) when it has no storage Lease to wait on. */
export function pipelineSettingsOf(
  backup: FederatedBackup,
  storageKeys: readonly string[] | undefined,
): PipelineSettings {
  const lookAhead = backup.spec.pipeline?.lookAhead ?? DEFAULTS.lookAhead;
  return {
    // An agent learns its turn from the run's Leases: without any, nothing could tell it, so no step waits.
    lookAhead: (storageKeys?.length ?? 0) > 0 ? lookAhead : 0,
    maxExtractions: backup.spec.pipeline?.maxExtractions ?? DEFAULTS.maxExtractions,
  };
}

/**
 * A round's node steps: fail those whose node is lost, start the Jobs pipeline.ts says to start, and keep
 * the Leases on the step that holds the cut. "RoundDone" once every node step of the round has ended.
 */
function decideRoundSteps(
  world: BackupWorld,
  settings: DecisionSettings,
  withPhase: StepWithPhase[],
  round: number,
  facts: StatusFacts,
  actions: BackupAction[],
): { requeueAfterMs: number } | "RoundDone" {
  const { now } = world;
  const nowIso = iso(now);
  const roundSteps = withPhase.filter(({ step }) => step.spec.round === round && !!step.spec.node);
  // Looked up by name: a round has a step per node, and every pass looks at each (1,000 × 1,000 by find).
  const nodesByName = new Map(world.nodes.map((n) => [n.name, n]));
  const nodeOf = (s: StepWithPhase) => nodesByName.get(s.step.spec.node ?? "");
  const position = (s: StepWithPhase) => `${s.step.spec.order}/${roundSteps.length}`;
  const isOpen = (s: StepWithPhase) => s.derived.phase === "Pending" || s.derived.phase === "Running";
  const failStep = (s: StepWithPhase, message: string, nodeLostUnderJob = false) => {
    setStepPhase(
      s,
      {
        kind: "RecordStepPhase",
        step: s.step,
        phase: "Failed",
        message,
        completionTime: nowIso,
        ...(nodeLostUnderJob ? { thawPending: true } : {}),
        failed: uncapturedOf(s.step, message),
      },
      actions,
    );
    actions.push({
      kind: "Event",
      type: "Warning",
      reason: "NodeFailed",
      message: `round ${round}: ${message}; its VMs are chased in a later round`,
    });
  };

  // A node that died under a running Job: its pods cannot finish there. Fail the step now (not after
  // nodeTimeout) and remove the Job so it cannot wake up later beside another node's step.
  let lost = false;
  for (const s of roundSteps) {
    if (s.derived.phase !== "Running") continue;
    const node = nodeOf(s);
    if (node?.ready) continue;
    lost = true;
    actions.push({ kind: "DeleteJob", step: s.step });
    const name = s.step.spec.node!;
    failStep(
      s,
      node ? `node ${name} became NotReady while its Job ran` : `node ${name} was removed while its Job ran`,
      true,
    );
  }
  // Its thaw (thaw.ts) and the record of the failure come first; the next pass goes on.
  if (lost) return { requeueAfterMs: 0 };
  for (const s of roundSteps)
    if (s.derived.phase === "Running" && s.derived.startExtract) actions.push({ kind: "StartExtract", step: s.step });
  if (!roundSteps.some(isOpen)) return "RoundDone";

  const started = roundSteps.filter((s) => s.derived.phase === "Running");
  if (!world.lease.ours && !world.lease.free) {
    // All or none: the Leases of some back ends are given back while another is waited for, so that two
    // runs never each hold one the other waits for. Steps already running go on (their cut was granted).
    if (world.lease.heldSome) actions.push({ kind: "ReleaseLease" });
    if (started.length === 0) {
      facts.progressing = { reason: "WaitingForVolumeLease", message: waitingForLeaseMessage(world.lease) };
      return { requeueAfterMs: 5_000 };
    }
  }

  const pipeline = pipelineSettingsOf(world.backup, world.lease.keys);
  const planned = planPipeline(
    roundSteps.map(({ step, derived }) => ({
      name: step.metadata.name!,
      started: derived.phase !== "Pending",
      finished: !isOpen({ step, derived }),
      cutDone: !!derived.cutDone || !isOpen({ step, derived }),
      reported: agentReported(step),
    })),
    world.lease.ours ? world.lease.holderStep : undefined,
    pipeline,
  );
  // A failed step's agent may have died with VMs frozen: the operator thaws them (thaw.ts, the next pass)
  // before another node freezes anything. Not for a lost node's: nothing there can be thawed until it is back.
  const thawFirst = withPhase.filter((s) => s.step.status?.thawPending && nodeOf(s)?.ready);
  const plan = thawFirst.length > 0 ? holdingTheCut(planned, pipeline) : planned;
  const byName = new Map(roundSteps.map((s) => [s.step.metadata.name!, s]));
  const cutter = plan.cutter ? byName.get(plan.cutter) : undefined;
  const mayAct = world.lease.ours || world.lease.free;

  // The Leases name the step that holds the cut (taken, handed on, or renewed when due); while the cut waits
  // for an extraction to end they stay with the step that last held it.
  const holder = cutter ?? (world.lease.holderStep ? byName.get(world.lease.holderStep) : undefined);
  let renewDue = false;
  if (holder && mayAct) {
    // A pipelined step's agent waits for its own step's name on the Leases; strict runs need only the node.
    const handOn =
      !world.lease.ours || (pipeline.lookAhead > 0 && world.lease.holderStep !== holder.step.metadata.name);
    renewDue =
      handOn ||
      world.lease.holderNode !== holder.step.spec.node ||
      now - (world.lease.renewedAt ?? 0) >= settings.leaseRenewMs;
    // First in the pass: the next node waits on it, and nothing before it here bears on the cut (records and
    // events of steps that ended, releasing their snapshots, extractions of steps whose cut is made; a lost
    // node's Job, which must go before anyone else cuts, ended the pass above).
    if (renewDue)
      actions.unshift({ kind: "ClaimLease", node: holder.step.spec.node!, step: holder.step.metadata.name! });
  }

  for (const name of mayAct ? plan.start : []) {
    const s = byName.get(name)!;
    const node = nodeOf(s);
    if (!node?.ready) {
      failStep(s, node ? `node ${s.step.spec.node} is not Ready` : `node ${s.step.spec.node} no longer exists`);
      continue;
    }
    actions.push({ kind: "StartJob", step: s.step, waitsForTurn: pipeline.lookAhead > 0 });
    setStepPhase(s, { kind: "RecordStepPhase", step: s.step, phase: "Running", startTime: nowIso }, actions);
    actions.push({
      kind: "Event",
      type: "Normal",
      reason: "NodeStarted",
      message: `round ${round}, node ${s.step.spec.node} (${position(s)}) started: capturing ${s.step.spec.workloads?.length ?? 0} VMs${
        pipeline.lookAhead > 0 && s !== cutter ? ", after the nodes before it have made their cut" : ""
      }`,
    });
  }

  const shown = cutter ?? holder;
  if (shown) facts.coordinatingNode = shown.step.spec.node;
  if (thawFirst.length > 0) {
    facts.progressing = {
      reason: "NodeInProgress",
      message: `round ${round}: thawing the VMs the agent of ${thawFirst.map((s) => s.step.spec.node).join(", ")} left frozen before the next node's cut`,
    };
    return { requeueAfterMs: 2_000 };
  }
  const extracting = roundSteps.filter(
    (s) => s.derived.phase === "Running" && s.derived.cutDone && !agentReported(s.step),
  ).length;
  const waiting = roundSteps.filter((s) => s.derived.phase === "Running" && !s.derived.cutDone && s !== cutter).length;
  facts.progressing = {
    reason: "NodeInProgress",
    message: `round ${round}, node ${shown?.step.spec.node ?? "-"}${shown ? ` (${position(shown)})` : ""} ${
      cutter ? `is capturing ${cutter.step.spec.workloads?.length ?? 0} VMs` : "made its cut"
    }${extracting ? `; ${extracting} extracting` : ""}${waiting ? `; ${waiting} waiting for their turn` : ""}`,
  };
  if (plan.start.length > 0) return { requeueAfterMs: settings.leaseRenewMs };
  const renewIn = settings.leaseRenewMs - (now - (world.lease.renewedAt ?? now));
  return { requeueAfterMs: Math.max(100, renewDue ? settings.leaseRenewMs : renewIn) };
}

function uncapturedOf(step: NodeSnapshot, message: string): NonNullable<NodeSnapshot["status"]>["failed"] {
  const reported = new Set(
    [...(step.status?.captured ?? []), ...(step.status?.failed ?? [])].map((w) => workloadKey(w)),
  );
  return [
    ...(step.status?.failed ?? []),
    ...(step.spec.workloads ?? [])
      .filter((w) => !reported.has(workloadKey(w)))
      .map((w) => ({ namespace: w.namespace, name: w.name, reason: "NodeFailed", message })),
  ];
}

const missingNamespacesNote = (world: BackupWorld): string =>
  world.missingNamespaces?.length ? ` (namespaces that do not exist: ${world.missingNamespaces.join(", ")})` : "";

function unplacedRecord(
  backup: FederatedBackup,
  round: number,
  order: number,
  unresolved: UnplacedWorkload[],
  location: ResolvedLocation | undefined,
): StepWithPhase | undefined {
  if (unresolved.length === 0) return undefined;
  return {
    step: buildNodeSnapshot(backup, round, order, undefined, [], unresolved, location),
    derived: { phase: "Unplaced" },
  };
}

function toPlanningReason(reason: string): MissingReason | undefined {
  return reason === "Migrated" ? undefined : (reason as MissingReason);
}

/** Records a phase change on the step (and mirrors it into this pass's view of the step). */
function setStepPhase(
  s: StepWithPhase,
  action: Extract<BackupAction, { kind: "RecordStepPhase" }>,
  actions: BackupAction[],
): void {
  actions.push(action);
  s.derived = { phase: action.phase, ...(action.message ? { message: action.message } : {}) };
  s.step = {
    ...s.step,
    status: {
      ...s.step.status,
      phase: action.phase,
      ...(action.startTime ? { startTime: action.startTime } : {}),
      ...(action.completionTime ? { completionTime: action.completionTime } : {}),
      ...(action.thawPending ? { thawPending: true } : {}),
    },
  };
}

/** Phases derived from Jobs that differ from what the steps record are written back to the steps. */
function recordStepPhases(
  withPhase: StepWithPhase[],
  observed: ObservedStep[],
  nowIso: string,
  actions: BackupAction[],
): void {
  withPhase.forEach((s, i) => {
    const recorded = s.step.status?.phase;
    const phase = s.derived.phase;
    if (phase === recorded || phase === "Pending") return;
    const job = observed[i]?.job;
    const terminal = phase === "Succeeded" || phase === "Failed";
    setStepPhase(
      s,
      {
        kind: "RecordStepPhase",
        step: s.step,
        phase,
        ...(s.derived.message ? { message: s.derived.message } : {}),
        ...(phase === "Running" && !s.step.status?.startTime ? { startTime: nowIso } : {}),
        ...(terminal ? { completionTime: job?.completionTime ?? nowIso } : {}),
        // An agent that dies (killed, out of retries) cannot thaw what it froze: the operator does (thaw.ts).
        ...(phase === "Failed" && s.step.spec.node ? { thawPending: true } : {}),
      },
      actions,
    );
    if (terminal) {
      actions.push({
        kind: "Event",
        type: phase === "Succeeded" ? "Normal" : "Warning",
        reason: phase === "Succeeded" ? "NodeSucceeded" : "NodeFailed",
        message: `round ${s.step.spec.round}, node ${s.step.spec.node}: ${s.derived.message ?? phase}`,
      });
    }
  });
}
