// Which capture each VM of a WorkloadRestore is restored from. Pure: the backups and their steps
// (NodeSnapshots) in, one capture per VM out, or the reason a VM cannot be restored.
import { isFinished, isRestorable } from "../../api/phases.js";
import type {
  FederatedBackup,
  NodeSnapshot,
  NodeSnapshotSpecWorkloadClaim,
  WorkloadRestore,
} from "../../api/v1alpha1/index.js";
import { indexCaptures, vmKey } from "../../digest/index.js";
import { compareWorkloads, type RestoreWorkload, type WorkloadRef } from "../../planning/index.js";
import { isCopy, restoreTarget } from "../../planning/restore-target.js";
import { describeLocation, locationIdentity, locationSourceOf, type LocationSource } from "../../storage/location.js";

/** A VM with the capture it is restored from. */
/** How many backups a message names; it counts the rest (a condition's message holds 32768 characters). */
export const BACKUPS_LISTED = 20;

export interface ResolvedWorkload extends RestoreWorkload {
  /** The backup's directory, relative to the location PVC root. */
  backupPath: string;
  /** The shared volume's claim; "" when the backup had none (VMs on claims only). */
  sharedClaim: string;
  /** Where the capture's backup saw the shared volume mounted on the nodes (its disks' paths start there). */
  nodeMountPath: string;
  /** The backup location the capture was written to (its step records it). */
  location: LocationSource;
  /** For a copy: the captured VM it is made from (namespace and name are the copy's). */
  source?: WorkloadRef;
  /** What the capture holds: what a VM created from it is made of. */
  capture: CaptureContents;
}

/** A capture's disks as its backup step recorded them, and whether it holds the VM's definition. */
export interface CaptureContents {
  /** hostDisk files, relative to the shared volume root. */
  files: string[];
  claims: NodeSnapshotSpecWorkloadClaim[];
  definition: boolean;
}

/**
 * A VM asked for that has no usable capture. Reasons: NotCaptured (the backup, or with source Latest no finished
 * backup of the namespace, holds no capture of it), VolumeSnapshotOnly (its files are only in a CSI
 * VolumeSnapshot), OtherVolumes (its capture uses other volumes than the other VMs').
 */
export interface Unrestorable extends WorkloadRef {
  backup: string;
  reason:
    | "NotCaptured"
    | "VolumeSnapshotOnly"
    | "OtherVolumes"
    | "NoDefinition"
    | "TargetExists"
    | "ClaimInOtherNamespace"
    | "DiskInUse"
    | "ClaimShapeUnknown";
  /** One sentence, starting with "Skipped:". */
  message: string;
}

export interface Resolution {
  workloads: ResolvedWorkload[];
  /** VMs asked for that have no usable capture, with the reason (they are planned as Skip). */
  unrestorable: Unrestorable[];
  /**
   * A problem with the request as a whole: nothing is restored. The reason is the first problem's (BackupNotFound,
   * BackupFailed, NothingToRestore); the message names every problem found, the unfinished backups too.
   */
  invalid?: { reason: string; message: string };
  /**
   * The backups named that are not finished yet (New, InProgress, Verifying, ...), when nothing else is wrong:
   * nothing is resolved until they are (the caller waits for them up to spec.waitForBackup).
   */
  unfinished?: Array<{ name: string; phase: string }>;
}

/**
 * Resolves spec.workloads (all VMs of the backup when empty) against the captures. A VM is restored from
 * the latest round that captured it in its backup; with source Latest, from its most recent capture in
 * any finished backup of the namespace (the digest's capture index). One restore Job mounts one shared
 * volume and one location, so VMs whose capture lives elsewhere than the majority's are left out.
 */
export function resolveWorkloads(
  restore: WorkloadRestore,
  backups: readonly FederatedBackup[],
  steps: readonly NodeSnapshot[],
  now: number,
): Resolution {
  const ns = restore.metadata.namespace!;
  const spec = restore.spec;
  const backupByName = new Map(backups.filter((b) => b.metadata.namespace === ns).map((b) => [b.metadata.name!, b]));
  const stepsOf = (backup: FederatedBackup) =>
    steps.filter((s) => s.metadata.namespace === ns && s.spec.backupUID === backup.metadata.uid);

  // Every backup named must exist and be restorable: a typo or a failed backup is the user's to fix, a backup
  // still running is waited for. Every problem is reported, not the first: fixing one must not reveal the next.
  const named = [
    ...new Set([spec.backupRef?.name, ...(spec.workloads ?? []).map((w) => w.backupRef?.name)].filter(Boolean)),
  ] as string[];
  const fatal: Array<{ reason: string; message: string }> = [];
  const unfinished: Array<{ name: string; phase: string }> = [];
  for (const name of named.sort()) {
    const backup = backupByName.get(name);
    const phase = backup?.status?.phase ?? "New";
    if (!backup) fatal.push({ reason: "BackupNotFound", message: `FederatedBackup ${ns}/${name} does not exist` });
    else if (!isFinished(phase)) unfinished.push({ name, phase });
    else if (!isRestorable(phase)) {
      fatal.push({
        reason: "BackupFailed",
        message: `FederatedBackup ${ns}/${name} is ${phase}; only a Completed or PartiallyFailed backup can be restored from`,
      });
    }
  }
  if (fatal.length > 0) {
    const all = [
      ...fatal.map((f) => f.message),
      ...unfinished.map((u) => `FederatedBackup ${ns}/${u.name} is ${u.phase}, not finished yet`),
    ];
    const listed = all.slice(0, BACKUPS_LISTED).join("; ");
    const more = all.length > BACKUPS_LISTED ? `; and ${all.length - BACKUPS_LISTED} more` : "";
    const message = all.length === 1 ? listed : `${all.length} problems: ${listed}${more}`;
    return invalid(fatal[0]!.reason, message);
  }
  if (unfinished.length > 0) return { workloads: [], unrestorable: [], unfinished };

  const finishedSteps = [...backupByName.values()]
    .filter((b) => isRestorable(b.status?.phase))
    .flatMap((b) => stepsOf(b));
  const latest = spec.source === "Latest" ? indexCaptures([...backupByName.values()], finishedSteps, now) : undefined;

  const captureIn = (backup: FederatedBackup, w: WorkloadRef) => {
    let best: { step: NodeSnapshot; index: number } | undefined;
    for (const step of stepsOf(backup)) {
      const index = step.status?.captured?.findIndex((c) => c.namespace === w.namespace && c.name === w.name) ?? -1;
      if (index >= 0 && (!best || step.spec.round > best.step.spec.round)) best = { step, index };
    }
    return best?.step;
  };

  // Each VM asked for, by its captured name; the plan and the steps know it by its target's.
  let wanted: Array<WorkloadRef & { targetNode?: string; backup?: string; target?: WorkloadRef }>;
  if (spec.workloads?.length) {
    wanted = spec.workloads.map((w) => ({
      namespace: w.namespace,
      name: w.name,
      target: restoreTarget(w, w, spec.namespaceMapping),
      ...(w.targetNode ? { targetNode: w.targetNode } : {}),
      ...(w.backupRef?.name || spec.backupRef?.name ? { backup: w.backupRef?.name ?? spec.backupRef?.name } : {}),
    }));
  } else if (latest) {
    wanted = [...latest.keys()].map((key) => {
      const [namespace, name] = key.split("/") as [string, string];
      return { namespace, name };
    });
  } else {
    const backup = backupByName.get(spec.backupRef!.name)!;
    const seen = new Set<string>();
    wanted = stepsOf(backup)
      .flatMap((s) => s.status?.captured ?? [])
      .filter((c) => !seen.has(vmKey(c.namespace, c.name)) && !!seen.add(vmKey(c.namespace, c.name)))
      .map((c) => ({ namespace: c.namespace, name: c.name, backup: backup.metadata.name! }));
  }
  wanted.sort(compareWorkloads);

  const found: ResolvedWorkload[] = [];
  const unrestorable: Unrestorable[] = [];
  for (const w of wanted) {
    const key = vmKey(w.namespace, w.name);
    const target = w.target ?? restoreTarget(w, undefined, spec.namespaceMapping);
    const copy = isCopy(w, target);
    const backupName = w.backup ?? latest?.get(key)?.last.backup.split("/")[1];
    const backup = backupName ? backupByName.get(backupName) : undefined;
    const step = backup ? captureIn(backup, w) : undefined;
    if (!backup || !step) {
      unrestorable.push({
        ...target,
        backup: backupName ?? "",
        reason: "NotCaptured",
        message: backup
          ? `Skipped: FederatedBackup ${backupName} holds no capture of ${key}.`
          : `Skipped: no finished FederatedBackup in ${ns} holds a capture of ${key}.`,
      });
      continue;
    }
    if (step.spec.snapshot.method === "CSI" && step.spec.extractAt === "Restore") {
      // Its files are only in the VolumeSnapshot; a restore Job mounts the shared volume and the location.
      unrestorable.push({
        ...target,
        backup: backup.metadata.name!,
        reason: "VolumeSnapshotOnly",
        message:
          `Skipped: ${backup.metadata.name} kept its files in VolumeSnapshot ${step.metadata.name} (CSI, extractAt ` +
          `Restore), and restoring from a VolumeSnapshot is not supported yet; back it up with extractAt Backup.`,
      });
      continue;
    }
    const captured = step.status?.captured?.find((c) => c.namespace === w.namespace && c.name === w.name);
    const planned = step.spec.workloads?.find((p) => p.namespace === w.namespace && p.name === w.name);
    found.push({
      ...target,
      ...(copy ? { source: { namespace: w.namespace, name: w.name } } : {}),
      capture: {
        files: [...(planned?.files ?? [])],
        claims: [...(planned?.claims ?? [])],
        definition: captured?.definition === true,
      },
      backup: backup.metadata.name!,
      ...(w.targetNode ? { targetNode: w.targetNode } : {}),
      ...(step.spec.node ? { originalNode: step.spec.node } : {}),
      backupPath: step.spec.location.path,
      // A backup without a shared volume holds claims only (its hostDisk VMs were NoSharedDisk).
      sharedClaim: step.spec.sharedVolume?.claimName ?? "",
      nodeMountPath: step.spec.sharedVolume?.nodeMountPath ?? "",
      location: locationSourceOf(step.spec.location),
    });
  }
  if (wanted.length === 0) {
    return invalid("NothingToRestore", "the backup holds no captured VM to restore");
  }

  // The volumes most captures use, ties by name; the others need a WorkloadRestore of their own.
  const volumesOf = (w: ResolvedWorkload) => `${w.sharedClaim}\n${locationIdentity(w.location)}`;
  const counts = new Map<string, number>();
  for (const w of found) counts.set(volumesOf(w), (counts.get(volumesOf(w)) ?? 0) + 1);
  const [majority] = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  const workloads: ResolvedWorkload[] = [];
  for (const w of found) {
    if (majority === undefined || volumesOf(w) === majority[0]) workloads.push(w);
    else {
      const kept = found.find((f) => volumesOf(f) === majority[0])!;
      unrestorable.push({
        namespace: w.namespace,
        name: w.name,
        backup: w.backup,
        reason: "OtherVolumes",
        message:
          `Skipped: its capture in ${w.backup} uses shared volume ${w.sharedClaim} and location ${describeLocation(w.location)}, ` +
          `the other VMs ${kept.sharedClaim} and ${describeLocation(kept.location)}; restore it with a WorkloadRestore of its own.`,
      });
    }
  }
  return { workloads, unrestorable };

  function invalid(reason: string, message: string): Resolution {
    return { workloads: [], unrestorable: [], invalid: { reason, message } };
  }
}
