// The pure decision logic of the gather → plan → act loop: plain data in, plain data out, no I/O.

export { activeNodeOf } from "./active-node.js";
export { compareStrings, compareWorkloads } from "./compare.js";
export type { DiscoveryPlan } from "./discovery.js";
export { planDiscovery } from "./discovery.js";
export { countRecentFailures } from "./failure-window.js";
export type { FileClaimant, FileOwnership, FileProblem } from "./file-ownership.js";
export { describeFileProblem, resolveFileOwnership } from "./file-ownership.js";
export type { NodeFailureEvent } from "./failure-window.js";
export type { FinalPhase, FinalPhaseInput } from "./final-phase.js";
export { finalPhase } from "./final-phase.js";
export { fnv1a32, fnv1a32Hex } from "./fnv1a.js";
export type { MissingReasonContext } from "./missing-reason.js";
export { missingReasonMessage } from "./missing-reason.js";
export type { NextRoundDecision, NextRoundInput } from "./next-round.js";
export { nextRoundDecision } from "./next-round.js";
export type { NodePlacement, NodeRejection, NodeSteps } from "./node-steps.js";
export { groupIntoSteps, toCandidate } from "./node-steps.js";
export type { NodeCandidate, NodeOrder } from "./order-nodes.js";
export { orderNodes } from "./order-nodes.js";
export type { MissingWorkload, ReconcileRoundPlan } from "./reconcile-round.js";
export { planReconcileRound } from "./reconcile-round.js";
export { mulberry32, seedFromText, seededShuffle } from "./seeded-shuffle.js";
export type { BackupKey } from "./shared-volume-layout.js";
export {
  SHARED_VOLUME_TOP,
  SNAPSHOTS_DIR,
  backupSnapshotsPath,
  isInSharedVolumeTop,
  isWorkloadSnapshotPath,
  snapshotRunPath,
  workloadSnapshotPath,
} from "./shared-volume-layout.js";
export { stepName } from "./step-name.js";
export type {
  ClaimProblemReason,
  MissingReason,
  NodeStep,
  ObservedNode,
  ObservedWorkload,
  OrderingPolicy,
  PlannedClaim,
  UnplacedWorkload,
  WorkloadRef,
} from "./types.js";
export { MISSING_REASONS, workloadKey } from "./types.js";
export type { CaptureProblem } from "./capture-problem.js";
export { captureProblem } from "./capture-problem.js";
export type {
  InactiveTargetPolicy,
  RestoreAction,
  RestoreGroup,
  RestorePlacement,
  RestorePlan,
  RestorePlanEntry,
  RestorePlanInput,
  RestoreProblem,
  RestoreWorkload,
} from "./restore-plan.js";
export { planRestore } from "./restore-plan.js";
export { claimSnapshotName, restoredClaimSnapshotName } from "./claim-snapshot-names.js";
export { GROUP_SNAPSHOT_LABEL, groupSnapshotName } from "./group-snapshot-names.js";
export { vmGroupSnapshotClass, type GroupCutClaim } from "./vm-group-cut.js";
export type { SnapshotClassInfo, WorkloadClaimMethods } from "./workload-claim-methods.js";
export { planWorkloadClaimMethods, snapshotClassByDriver } from "./workload-claim-methods.js";
