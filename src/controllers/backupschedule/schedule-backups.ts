// Which FederatedBackups belong to a schedule. The label is what the schedule lists by; the name must also be the
// one the schedule gives its backup of the annotated time, so that a backup someone else labeled by mistake is
// not counted as a run, nor deleted by the schedule's retention. A backup synced from a location (another
// cluster's run, which may carry the same label) is never one of this cluster's schedule's runs.
import { ANNOTATION_SCHEDULED_TIME, LABEL_SYNCED } from "../../api/labels.js";
import type { FederatedBackup } from "../../api/v1alpha1/index.js";
import { scheduledBackupName } from "../../planning/scheduled-backup-name.js";
import type { ScheduleBackup } from "./decide.js";

/** The backup as the schedule sees it, or undefined if it is not one of the schedule's. */
export function scheduleBackupOf(schedule: string, backup: FederatedBackup): ScheduleBackup | undefined {
  if (backup.metadata.labels?.[LABEL_SYNCED] === "true") return undefined;
  const text = backup.metadata.annotations?.[ANNOTATION_SCHEDULED_TIME];
  const time = text === undefined ? NaN : Date.parse(text);
  if (Number.isNaN(time)) return undefined;
  const scheduledTime = new Date(time);
  if (backup.metadata.name !== scheduledBackupName(schedule, scheduledTime)) return undefined;
  return {
    name: backup.metadata.name,
    scheduledTime,
    ...(backup.status?.phase ? { phase: backup.status.phase } : {}),
    ...(backup.status?.completionTime ? { completionTime: backup.status.completionTime } : {}),
    deleting: !!backup.metadata.deletionTimestamp,
  };
}
