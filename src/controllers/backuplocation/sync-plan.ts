// What a sync of an object-store location does, decided from what the location lists and what the cluster
// holds (pure; sync.ts carries it out). Velero's backup sync, both ways:
// - push: each run of this cluster that finished (Completed, PartiallyFailed) at this location and has no
//   index there yet gets one (storage/backup-index.ts);
// - pull: each index of the location's namespace whose backup this cluster does not have is read, and the
//   backup and its steps are created from it, marked synced (labels.ts LABEL_SYNCED);
// - prune: a synced backup whose index is gone from the location (its run was deleted where it was made)
//   goes too.
// A backup of this cluster and an index are the same backup when the index sits at the directory the
// backup's steps recorded. A name already taken by another backup of the namespace is left alone and
// counted as a conflict.
import { ANNOTATION_SYNCED_FROM, ANNOTATION_SYNCED_UID } from "../../api/labels.js";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../api/v1alpha1/index.js";
import { INDEXED_PHASES } from "../../storage/backup-index.js";
import { locationIdentity, type LocationSource } from "../../storage/location.js";
import { recordedLocation } from "../runtime/recorded-location.js";
import { isSynced } from "../runtime/synced-backups.js";

export interface SyncInput {
  location: BackupLocation;
  /** The backup directories (`<namespace>/<name>-<uid8>`) that have an index at the location. */
  indexed: ReadonlySet<string>;
  /** The FederatedBackups and NodeSnapshots of the location's namespace. */
  backups: readonly FederatedBackup[];
  steps: readonly NodeSnapshot[];
}

export interface SyncPlan {
  push: Array<{ backup: FederatedBackup; steps: NodeSnapshot[]; path: string }>;
  /** Index directories to read and create backups from. */
  pull: string[];
  prune: FederatedBackup[];
  /** Index directories whose backup name is taken in the namespace by another backup. */
  conflicts: string[];
}

/** The location a BackupLocation's backups write to, as their steps record it. */
export function sourceOfLocation(location: BackupLocation): LocationSource {
  return location.spec.s3
    ? { s3: location.spec.s3 }
    : { persistentVolumeClaim: { claimName: location.spec.persistentVolumeClaim!.claimName } };
}

export function planSync(input: SyncInput): SyncPlan {
  const { location, indexed } = input;
  const namespace = location.metadata.namespace!;
  const here = locationIdentity(sourceOfLocation(location));
  const stepsByUid = new Map<string, NodeSnapshot[]>();
  for (const step of input.steps) {
    const list = stepsByUid.get(step.spec.backupUID) ?? [];
    list.push(step);
    stepsByUid.set(step.spec.backupUID, list);
  }
  const plan: SyncPlan = { push: [], pull: [], prune: [], conflicts: [] };
  // The directory each backup of the namespace wrote to at this location.
  const known = new Set<string>();
  const names = new Set<string>();
  const repair: string[] = [];
  for (const backup of input.backups) {
    if (backup.metadata.namespace !== namespace) continue;
    names.add(backup.metadata.name!);
    const steps = stepsByUid.get(backup.metadata.uid!) ?? [];
    const recorded = recordedLocation(steps);
    const fromHere =
      isSynced(backup) && backup.metadata.annotations?.[ANNOTATION_SYNCED_FROM] === location.metadata.name;
    // A pull cut short (the backup created, its status or steps not yet): its index is read again.
    if (fromHere && (!recorded || !backup.status?.phase)) {
      const uid = backup.metadata.annotations?.[ANNOTATION_SYNCED_UID] ?? "";
      const path = `${namespace}/${backup.metadata.name}-${uid.slice(0, 8)}`;
      if (indexed.has(path)) {
        known.add(path);
        repair.push(path);
      } else if (!backup.metadata.deletionTimestamp) plan.prune.push(backup);
      continue;
    }
    if (!recorded || locationIdentity(recorded.source) !== here) continue;
    known.add(recorded.path);
    if (isSynced(backup)) {
      if (fromHere && !indexed.has(recorded.path) && !backup.metadata.deletionTimestamp) plan.prune.push(backup);
      continue;
    }
    const phase = backup.status?.phase;
    if (!indexed.has(recorded.path) && (INDEXED_PHASES as readonly (string | undefined)[]).includes(phase)) {
      plan.push.push({ backup, steps, path: recorded.path });
    }
  }
  plan.pull.push(...repair.sort());
  for (const path of [...indexed].sort()) {
    if (known.has(path)) continue;
    const name = nameOfDirectory(path);
    if (name === undefined || names.has(name)) plan.conflicts.push(path);
    else plan.pull.push(path);
  }
  return plan;
}

/**
 * The backup name a directory `<namespace>/<name>-<uid8>` is of (the uid's first 8 characters cut off), or
 * undefined when it has no such suffix.
 */
export function nameOfDirectory(path: string): string | undefined {
  const dir = path.slice(path.indexOf("/") + 1);
  const cut = dir.lastIndexOf("-");
  return cut > 0 && dir.length - cut - 1 === 8 ? dir.slice(0, cut) : undefined;
}
