// What a BackupSchedule does in one pass, from what is in the cluster: whether a time is due and is run or
// skipped, which of its backups retention deletes, and the status that says so. Pure: the reconciler gathers
// the schedule and its backups (by label) and carries out the decision.
import { isFinished } from "../../api/phases.js";
import { parseDuration } from "../../api/duration.js";
import type {
  BackupSchedule,
  BackupScheduleStatus,
  BackupScheduleStatusLastSkipped,
  FederatedBackupSpec,
} from "../../api/v1alpha1/index.js";
import { backupsToPrune, type Prune, type RetentionPhase, type RetentionPolicy } from "../../planning/retention.js";
import { scheduledBackupName } from "../../planning/scheduled-backup-name.js";
import { dueTime, isScheduleProblem, latestOf, parseSchedule } from "../../planning/schedule-times.js";
import { mergeConditions, type DesiredCondition } from "../runtime/conditions.js";

export const READY = "Ready";

/** A FederatedBackup the schedule created (it carries the schedule's label). */
export interface ScheduleBackup {
  name: string;
  /** The schedule time it was created for (its annotation), or its creation time without one. */
  scheduledTime: Date;
  phase?: string;
  completionTime?: string;
  /** Being deleted: it no longer counts for anything. */
  deleting: boolean;
}

export interface ScheduleWorld {
  schedule: BackupSchedule;
  backups: ScheduleBackup[];
  now: Date;
  /**
   * Why the schedule's creator may not have a backup of the namespaces its template selects (asked only once a
   * run is due, see the reconciler): the run is not started, Ready says why, and the time stays due.
   */
  refusal?: { reason: string; message: string };
}

export type ScheduleAction =
  | { type: "CreateBackup"; name: string; time: Date; spec: FederatedBackupSpec }
  | { type: "DeleteBackup"; name: string; reason: Prune["reason"]; message: string }
  | { type: "Event"; kind: "Normal" | "Warning"; reason: string; message: string };

export interface ScheduleDecision {
  actions: ScheduleAction[];
  status: BackupScheduleStatus;
  /** When to look again: the next time, at the latest. */
  requeueAfterMs?: number;
}

const MAX_REQUEUE_MS = 10 * 60_000;

/** A running backup of the schedule: not finished and not going. The newest one if several. */
export function activeBackup(backups: readonly ScheduleBackup[]): ScheduleBackup | undefined {
  return backups
    .filter((b) => !b.deleting && !isFinished(b.phase))
    .sort((a, b) => b.scheduledTime.getTime() - a.scheduledTime.getTime())[0];
}

/** The newest Completed backup of the schedule. */
export function lastSuccessful(backups: readonly ScheduleBackup[]): ScheduleBackup | undefined {
  return backups
    .filter((b) => !b.deleting && b.phase === "Completed")
    .sort((a, b) => b.scheduledTime.getTime() - a.scheduledTime.getTime())[0];
}

/** The retention policy of the spec, or why its maxAge cannot be read (the CRD's rule normally prevents that). */
export function retentionPolicy(schedule: BackupSchedule): RetentionPolicy | undefined {
  const r = schedule.spec.retention;
  if (!r) return undefined;
  let maxAgeMs: number | undefined;
  if (r.maxAge !== undefined) {
    try {
      maxAgeMs = parseDuration(r.maxAge);
    } catch {
      maxAgeMs = undefined;
    }
  }
  return {
    ...(r.keepLast !== undefined ? { keepLast: r.keepLast } : {}),
    ...(r.keepDaily !== undefined ? { keepDaily: r.keepDaily } : {}),
    ...(r.keepWeekly !== undefined ? { keepWeekly: r.keepWeekly } : {}),
    ...(r.keepMonthly !== undefined ? { keepMonthly: r.keepMonthly } : {}),
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
  };
}

function retentionPhase(backup: ScheduleBackup): RetentionPhase {
  return backup.phase === "Completed" || backup.phase === "PartiallyFailed" || backup.phase === "Failed"
    ? backup.phase
    : "Running";
}

const PRUNE_WHY: Record<Prune["reason"], string> = {
  NotKept: "no keep rule of spec.retention keeps it",
  Superseded: "it did not complete and is older than every backup spec.retention keeps",
  MaxAge: "it is older than spec.retention.maxAge",
};

/** The deletions retention asks for, over the backups not already going. */
export function pruneActions(
  schedule: BackupSchedule,
  backups: readonly ScheduleBackup[],
  now: Date,
): ScheduleAction[] {
  const policy = retentionPolicy(schedule);
  if (!policy) return [];
  const present = backups.filter((b) => !b.deleting);
  const prunes = backupsToPrune(
    present.map((b) => ({ name: b.name, scheduledTime: b.scheduledTime, phase: retentionPhase(b) })),
    policy,
    now,
    schedule.spec.timeZone ?? "UTC",
  );
  return prunes.flatMap((p): ScheduleAction[] => [
    { type: "DeleteBackup", name: p.name, reason: p.reason, message: PRUNE_WHY[p.reason] },
    {
      type: "Event",
      kind: "Normal",
      reason: "Pruned",
      message: `Deleted FederatedBackup ${p.name} (${p.reason}): ${PRUNE_WHY[p.reason]}`,
    },
  ]);
}

function parseTime(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** Whole seconds, as Kubernetes writes times. */
const iso = (time: Date): string =>
  new Date(Math.floor(time.getTime() / 1000) * 1000).toISOString().replace(".000Z", "Z");

export function decideSchedule(world: ScheduleWorld): ScheduleDecision {
  const { schedule, backups, now } = world;
  const previous = schedule.status;
  const actions: ScheduleAction[] = [];
  const present = backups.filter((b) => !b.deleting);
  const active = activeBackup(present);
  const success = lastSuccessful(present);
  // What the schedule handled is what its status says or, after a status write that was lost, what its backups show.
  let lastScheduleTime = latestOf(parseTime(previous?.lastScheduleTime), ...present.map((b) => b.scheduledTime));
  let lastSkipped: BackupScheduleStatusLastSkipped | undefined = previous?.lastSkipped;
  let ready: DesiredCondition;
  let nextScheduleTime: Date | undefined;
  let activeName = active?.name;
  let refused: ScheduleWorld["refusal"];

  const times = parseSchedule(schedule.spec.schedule, schedule.spec.timeZone ?? "UTC");
  if (isScheduleProblem(times)) {
    ready = { type: READY, status: "False", reason: times.reason, message: times.message };
  } else {
    nextScheduleTime = times.next(now);
    const handledUntil =
      latestOf(parseTime(schedule.metadata.creationTimestamp), lastScheduleTime, parseTime(lastSkipped?.time)) ?? now;
    const due = schedule.spec.suspend
      ? undefined
      : dueTime({
          times,
          now,
          handledUntil,
          ...(schedule.spec.startingDeadlineSeconds !== undefined
            ? { startingDeadlineSeconds: schedule.spec.startingDeadlineSeconds }
            : {}),
        });
    if (due?.late) {
      lastSkipped = {
        time: iso(due.time),
        reason: "MissedDeadline",
        message: `${iso(due.time)} was found at ${iso(now)}, more than spec.startingDeadlineSeconds (${schedule.spec.startingDeadlineSeconds} s) later`,
      };
    } else if (due && active) {
      lastSkipped = {
        time: iso(due.time),
        reason: "ConcurrentRunActive",
        message: `FederatedBackup ${active.name} of this schedule still runs (concurrencyPolicy Forbid)`,
      };
    } else if (due && world.refusal) {
      refused = world.refusal;
    } else if (due) {
      const name = scheduledBackupName(schedule.metadata.name ?? "", due.time);
      actions.push({ type: "CreateBackup", name, time: due.time, spec: schedule.spec.template });
      actions.push({
        type: "Event",
        kind: "Normal",
        reason: "Created",
        message: `Created FederatedBackup ${name} for ${iso(due.time)}`,
      });
      lastScheduleTime = due.time;
      activeName = name;
    }
    if (lastSkipped && lastSkipped !== previous?.lastSkipped) {
      actions.push({
        type: "Event",
        kind: "Warning",
        reason: "Skipped",
        message: `Skipped ${lastSkipped.time}: ${lastSkipped.message ?? lastSkipped.reason}`,
      });
    }
    ready = refused
      ? { type: READY, status: "False", reason: refused.reason, message: refused.message }
      : schedule.spec.suspend
        ? { type: READY, status: "False", reason: "Suspended", message: "spec.suspend is true: no run starts" }
        : {
            type: READY,
            status: "True",
            reason: "Scheduled",
            message: nextScheduleTime ? `the next run is due at ${iso(nextScheduleTime)}` : "no time is left to run",
          };
    actions.push(...pruneActions(schedule, backups, now));
  }

  const status: BackupScheduleStatus = {
    observedGeneration: schedule.metadata.generation ?? 0,
    conditions: mergeConditions(previous?.conditions, [ready], schedule.metadata.generation, iso(now)),
    ...(lastScheduleTime ? { lastScheduleTime: iso(lastScheduleTime) } : {}),
    ...(nextScheduleTime && !schedule.spec.suspend ? { nextScheduleTime: iso(nextScheduleTime) } : {}),
    ...(activeName ? { activeBackup: activeName } : {}),
    ...(success
      ? {
          lastSuccessfulBackup: {
            name: success.name,
            ...(success.completionTime ? { completionTime: success.completionTime } : {}),
          },
        }
      : {}),
    ...(lastSkipped ? { lastSkipped } : {}),
  };
  // A little after the next time, so that the pass that wakes then finds it due.
  const untilNext = nextScheduleTime ? nextScheduleTime.getTime() - now.getTime() + 100 : MAX_REQUEUE_MS;
  return { actions, status, requeueAfterMs: Math.min(Math.max(untilNext, 500), MAX_REQUEUE_MS) };
}
