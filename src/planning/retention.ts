// Which of a schedule's finished backups its retention deletes. Completed backups are kept by the keep rules
// (the newest keepLast, and the newest of each of the newest keepDaily days, keepWeekly ISO weeks and keepMonthly
// months, in the schedule's time zone); with no keep rule every Completed backup is kept. PartiallyFailed and
// Failed backups are never kept by a rule (they cannot stand in for a good backup) and go once they are older
// than the oldest backup a rule keeps: until then they are the record of what went wrong since. maxAge deletes
// any finished backup scheduled longer ago, except the newest Completed one, so that a schedule whose runs all
// fail never deletes its last good backup. Running backups are never deleted.

export type RetentionPhase = "Completed" | "PartiallyFailed" | "Failed" | "Running";

export interface ScheduledBackup {
  name: string;
  /** The schedule time the backup was created for. */
  scheduledTime: Date;
  phase: RetentionPhase;
}

export interface RetentionPolicy {
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  maxAgeMs?: number;
}

export type PruneReason = "NotKept" | "Superseded" | "MaxAge";

export interface Prune {
  name: string;
  reason: PruneReason;
}

/** Newest first; equal times by name, so the order never depends on the input's. */
function newestFirst(a: ScheduledBackup, b: ScheduledBackup): number {
  return b.scheduledTime.getTime() - a.scheduledTime.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The calendar date of `time` in `timeZone`. */
export function localDate(time: Date, timeZone: string): { year: number; month: number; day: number } {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    year: "numeric",
    month: "numeric",
    day: "numeric",
  }).formatToParts(time);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: part("year"), month: part("month"), day: part("day") };
}

/** The ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday) of a calendar date. */
export function isoWeek(date: { year: number; month: number; day: number }): { year: number; week: number } {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day));
  const weekday = d.getUTCDay() === 0 ? 7 : d.getUTCDay();
  // The Thursday of the same week decides the week's year.
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  return { year: d.getUTCFullYear(), week: Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

export type Period = "day" | "week" | "month";

/** The period `time` falls in, in `timeZone`, as a key equal for times of the same period. */
export function periodKey(time: Date, period: Period, timeZone: string): string {
  const date = localDate(time, timeZone);
  if (period === "day") return `${date.year}-${date.month}-${date.day}`;
  if (period === "month") return `${date.year}-${date.month}`;
  const week = isoWeek(date);
  return `${week.year}-W${week.week}`;
}

/** The newest backup of each of the newest `count` periods that have one (backups sorted newest first). */
function newestPerPeriod(sorted: ScheduledBackup[], count: number, period: Period, timeZone: string): string[] {
  const kept: string[] = [];
  const seen = new Set<string>();
  for (const backup of sorted) {
    if (seen.size >= count) break;
    const key = periodKey(backup.scheduledTime, period, timeZone);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(backup.name);
  }
  return kept;
}

/** The Completed backups the keep rules keep. */
export function keptByRules(backups: ScheduledBackup[], policy: RetentionPolicy, timeZone: string): Set<string> {
  const completed = backups.filter((b) => b.phase === "Completed").sort(newestFirst);
  const { keepLast, keepDaily, keepWeekly, keepMonthly } = policy;
  if (keepLast === undefined && keepDaily === undefined && keepWeekly === undefined && keepMonthly === undefined) {
    return new Set(completed.map((b) => b.name));
  }
  return new Set([
    ...completed.slice(0, keepLast ?? 0).map((b) => b.name),
    ...newestPerPeriod(completed, keepDaily ?? 0, "day", timeZone),
    ...newestPerPeriod(completed, keepWeekly ?? 0, "week", timeZone),
    ...newestPerPeriod(completed, keepMonthly ?? 0, "month", timeZone),
  ]);
}

/** The backups to delete and why, oldest first. */
export function backupsToPrune(
  backups: ScheduledBackup[],
  policy: RetentionPolicy,
  now: Date,
  timeZone: string,
): Prune[] {
  const kept = keptByRules(backups, policy, timeZone);
  const keptTimes = backups.filter((b) => kept.has(b.name)).map((b) => b.scheduledTime.getTime());
  const oldestKept = keptTimes.length > 0 ? Math.min(...keptTimes) : undefined;
  const newestCompleted = backups.filter((b) => b.phase === "Completed").sort(newestFirst)[0]?.name;
  const prunes: Prune[] = [];
  for (const backup of [...backups].sort(newestFirst).reverse()) {
    if (backup.phase === "Running") continue;
    const age = now.getTime() - backup.scheduledTime.getTime();
    if (policy.maxAgeMs !== undefined && age > policy.maxAgeMs && backup.name !== newestCompleted) {
      prunes.push({ name: backup.name, reason: "MaxAge" });
    } else if (backup.phase === "Completed" && !kept.has(backup.name)) {
      prunes.push({ name: backup.name, reason: "NotKept" });
    } else if (
      backup.phase !== "Completed" &&
      oldestKept !== undefined &&
      backup.scheduledTime.getTime() < oldestKept
    ) {
      prunes.push({ name: backup.name, reason: "Superseded" });
    }
  }
  return prunes;
}
