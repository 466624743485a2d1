// The FederatedBackup's status, rebuilt from its steps on every pass. Small by construction: counts, a
// short entry for the current, the next and the latest node steps, and at most MISSING_LIMIT missing VMs
// (every step is a NodeSnapshot; the full lists live there and in the manifests at the location).
import { isFinished } from "../../api/phases.js";
import type {
  FederatedBackup,
  FederatedBackupStatus,
  FederatedBackupStatusNode,
  FederatedBackupStatusNodePhase,
  FederatedBackupStatusPhase,
  FederatedBackupStatusSnapshotMethod,
} from "../../api/v1alpha1/index.js";
import { mergeConditions, type DesiredCondition } from "../runtime/conditions.js";
import { capturedWorkloads, expectedKeys, missingWorkloads, type StepWithPhase } from "./missing.js";
import { MAX_LISTED_STORAGE_BACKENDS } from "../runtime/storage-keys.js";

export const MISSING_LIMIT = 100;
/** Node steps not done yet (Pending, Running) listed in status.nodes at most: the current ones and the next. */
export const NODES_NOT_DONE_LIMIT = 10;
/** Node steps done (Succeeded, Failed) listed in status.nodes at most: the latest in processing order. */
export const NODES_DONE_LIMIT = 10;

const isDone = (n: FederatedBackupStatusNode) => n.phase === "Succeeded" || n.phase === "Failed";

/**
 * The node steps status.nodes lists: the first steps not done (those running, then the next ones) and the
 * latest done, in processing order. A list of every step would be rewritten on every status write, about
 * twice per step: at 1,000 nodes that is 150 KiB per write; this is a few KiB at any size.
 */
export function keepNodes(nodes: readonly FederatedBackupStatusNode[]): FederatedBackupStatusNode[] {
  const indexed = nodes.map((n, i) => ({ n, i }));
  const notDone = indexed.filter(({ n }) => !isDone(n));
  const running = notDone.filter(({ n }) => n.phase === "Running");
  const pending = notDone.filter(({ n }) => n.phase !== "Running");
  const done = indexed.filter(({ n }) => isDone(n));
  const kept = [...running, ...pending].slice(0, NODES_NOT_DONE_LIMIT);
  kept.push(...done.slice(-NODES_DONE_LIMIT));
  return kept.sort((a, b) => a.i - b.i).map(({ n }) => n);
}

export interface StatusFacts {
  phase: FederatedBackupStatusPhase;
  round: number;
  startTime?: string;
  completionTime?: string;
  coordinatingNode?: string;
  /** The storage keys whose Leases the run takes (runtime/storage-keys.ts). */
  storageBackends?: readonly string[];
  backupPath?: string;
  /** Where the run writes, in words (describeLocation). */
  location?: string;
  expiresAt?: string;
  /** Why the run is where it is, for the Progressing condition. */
  progressing: { reason: string; message: string };
  /** Set when the spec or its references are unusable. */
  invalid?: { reason: string; message: string };
}

const NODE_PHASE: Record<string, FederatedBackupStatusNodePhase> = {
  Pending: "Pending",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
};

/**
 * The status from the steps and the pass's facts. With "outline", the VM counts and the missing list (a walk
 * over every VM of the run) are left empty: what is left has the full status's statusOutline while the run
 * is not finished, which is all a paced pass needs to know (status-pace.ts).
 */
export function buildStatus(
  backup: FederatedBackup,
  steps: readonly StepWithPhase[],
  facts: StatusFacts,
  nowIso: string,
  detail: "full" | "outline" = "full",
): FederatedBackupStatus {
  const nodeSteps = steps.filter((s) => !!s.step.spec.node);
  const full = detail === "full";
  const expected = full ? expectedKeys(steps).size : 0;
  const captured = full ? capturedWorkloads(steps) : new Map<string, unknown>();
  const missing = full ? missingWorkloads(steps) : [];
  const completed = nodeSteps.filter((s) => s.derived.phase === "Succeeded").length;
  const failed = nodeSteps.filter((s) => s.derived.phase === "Failed").length;
  const method = nodeSteps.map((s) => s.step.status?.snapshotMethod).find((m) => !!m) as
    FederatedBackupStatusSnapshotMethod | undefined;

  const nodes: FederatedBackupStatusNode[] = nodeSteps.map(({ step, derived }) => ({
    name: step.spec.node!,
    order: step.spec.order,
    round: step.spec.round,
    phase: NODE_PHASE[derived.phase] ?? "Pending",
    step: step.metadata.name,
    workloads: step.spec.workloads?.length ?? 0,
    captured: step.status?.captured?.length ?? 0,
    ...(step.status?.startTime ? { startTime: step.status.startTime } : {}),
    ...(step.status?.completionTime ? { completionTime: step.status.completionTime } : {}),
    ...(derived.phase === "Failed" && derived.message ? { message: derived.message } : {}),
  }));

  const kept = keepNodes(nodes);

  const finished = isFinished(facts.phase);
  const verifiedKnown = finished && !facts.invalid;
  const conditions: DesiredCondition[] = [
    {
      type: "Ready",
      status: facts.phase === "Completed" ? "True" : "False",
      reason: facts.invalid?.reason ?? facts.phase,
      message: facts.invalid?.message ?? readyMessage(facts.phase, captured.size, expected, missing.length),
    },
    {
      type: "Progressing",
      status: finished ? "False" : "True",
      reason: finished ? "Finished" : facts.progressing.reason,
      message: finished ? `the backup finished: ${facts.phase}` : facts.progressing.message,
    },
    {
      type: "Failed",
      status: facts.phase === "Failed" ? "True" : "False",
      reason: facts.phase === "Failed" ? (facts.invalid?.reason ?? "NothingCaptured") : "NotFailed",
      message: facts.phase === "Failed" ? (facts.invalid?.message ?? "no VM could be captured") : "",
    },
    {
      type: "Verified",
      status: verifiedKnown ? (missing.length === 0 ? "True" : "False") : "Unknown",
      reason: verifiedKnown ? (missing.length === 0 ? "AllCaptured" : "WorkloadsMissing") : "NotVerifiedYet",
      message: verifiedKnown
        ? missing.length === 0
          ? `all ${expected} expected VMs were captured`
          : `${missing.length} of ${expected} expected VMs are missing`
        : "the expected and captured lists are compared when every node is done",
    },
  ];

  return {
    phase: facts.phase,
    observedGeneration: backup.metadata.generation,
    conditions: mergeConditions(backup.status?.conditions, conditions, backup.metadata.generation, nowIso),
    ...(facts.startTime ? { startTime: facts.startTime } : {}),
    ...(facts.completionTime ? { completionTime: facts.completionTime } : {}),
    ...(method ? { snapshotMethod: method } : {}),
    ...(facts.coordinatingNode ? { coordinatingNode: facts.coordinatingNode } : {}),
    ...(facts.storageBackends?.length
      ? { storageBackends: facts.storageBackends.slice(0, MAX_LISTED_STORAGE_BACKENDS) }
      : {}),
    ...(facts.backupPath ? { backupPath: facts.backupPath } : {}),
    ...(facts.location ? { location: facts.location } : {}),
    ...(facts.expiresAt ? { expiresAt: facts.expiresAt } : {}),
    progress: {
      nodes: `${completed + failed}/${nodeSteps.length}`,
      nodesTotal: nodeSteps.length,
      nodesCompleted: completed,
      nodesFailed: failed,
      workloadsExpected: expected,
      workloadsCaptured: captured.size,
      workloadsMissing: missing.length,
      round: facts.round,
    },
    nodes: kept,
    ...(kept.length < nodes.length ? { nodesTruncated: nodes.length - kept.length } : {}),
    missing: missing.slice(0, MISSING_LIMIT),
    ...(missing.length > MISSING_LIMIT ? { missingTruncated: missing.length - MISSING_LIMIT } : {}),
  };
}

function readyMessage(phase: FederatedBackupStatusPhase, captured: number, expected: number, missing: number): string {
  switch (phase) {
    case "Completed":
      return `all ${expected} VMs captured`;
    case "PartiallyFailed":
      return `${captured} of ${expected} VMs captured, ${missing} missing (see status.missing)`;
    case "Failed":
      return `no VM captured out of ${expected}`;
    default:
      return `${captured} of ${expected} VMs captured so far`;
  }
}
