// One info line per decision that changes something: the run (namespace/name, kind), what is done, and
// the step, node, round and VM where the action has them. Lease renewals are debug: they repeat.
import type { KubeObject } from "../../k8s/types.js";
import { viewLease, type LeaseObject } from "../../k8s/volume-lease.js";

export interface ActionLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

/** The fields of the controllers' actions this reads (BackupAction and RestoreAction have them). */
export interface LoggedAction {
  kind: string;
  step?: string | { metadata: { name?: string }; spec: { node?: string; round?: number } };
  node?: string;
  vm?: { namespace?: string; name: string };
  phase?: string;
}

const MESSAGES: Record<string, string> = {
  CreateStep: "creating a node step",
  DeleteStep: "deleting a node step",
  ClaimLease: "taking the storage back ends' Leases for a node",
  ReleaseLease: "releasing the storage back ends' Leases",
  StartJob: "starting the node Job",
  DeleteJob: "deleting the node Job",
  StartExtract: "starting the extract Job from the volume snapshot",
  ReleaseVolumeSnapshot: "releasing the step's volume snapshot",
  RecordStepPhase: "recording a node step's phase",
  RecordStep: "recording a node step's result",
  DeleteBackup: "deleting the backup (past its time to live)",
  HoldVm: "holding a VM for its restore",
  StartVm: "starting a restored VM on its node",
  ReleaseVm: "releasing a VM after its restore",
  CreateMigration: "migrating a VM to its restore node",
};

/**
 * Logs `action` of `run` (events are not logged: they are recorded as Events). A lease claim for the
 * node that already holds it for this run (`lease`: the first storage Lease before the action, `owner`:
 * the run's owner id) is a renewal, logged at debug.
 */
export function logAction(
  log: ActionLogger,
  run: KubeObject,
  action: LoggedAction,
  lease?: { object?: LeaseObject; owner: string },
): void {
  if (action.kind === "Event") return;
  const held = viewLease(lease?.object);
  const renewal = action.kind === "ClaimLease" && held?.holderNode === action.node && held?.owner === lease?.owner;
  const kind = run.kind ?? "";
  const step = typeof action.step === "string" ? undefined : action.step;
  const meta: Record<string, unknown> = {
    object: `${run.metadata.namespace}/${run.metadata.name}`,
    kind,
    action: action.kind,
    ...(action.step ? { step: typeof action.step === "string" ? action.step : action.step.metadata.name } : {}),
    ...((action.node ?? step?.spec.node) ? { node: action.node ?? step?.spec.node } : {}),
    ...(step?.spec.round !== undefined ? { round: step.spec.round } : {}),
    ...(action.vm ? { vm: `${action.vm.namespace ?? run.metadata.namespace}/${action.vm.name}` } : {}),
    ...(action.phase ? { phase: action.phase } : {}),
  };
  if (renewal) log.debug("renewing the storage back ends' Leases", meta);
  else log.info(MESSAGES[action.kind] ?? action.kind, meta);
}

/** Logs a run's phase change (the decision its status write carries). */
export function logPhase(log: ActionLogger, run: KubeObject, from?: string, to?: string): void {
  if ((from ?? "") === (to ?? "")) return;
  const kind = run.kind ?? "";
  log.info(`${kind} phase ${from ?? "New"} -> ${to ?? "New"}`, {
    object: `${run.metadata.namespace}/${run.metadata.name}`,
    kind,
    phase: to,
  });
}
