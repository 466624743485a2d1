// When a BackupSchedule runs: its cron expression read in its time zone (by croner, a well-kept parser), the
// time that is due now, whether it came too late to run, and the next time. Pure: `now` and what the schedule
// already handled are inputs.
import { Cron } from "croner";

/** The times of a cron expression in a time zone. */
export interface CronTimes {
  /** The first time strictly after `after`. */
  next(after: Date): Date | undefined;
  /** The latest time at or before `at`. */
  latestAtOrBefore(at: Date): Date | undefined;
}

export type ScheduleProblem =
  { reason: "InvalidTimeZone"; message: string } | { reason: "InvalidSchedule"; message: string };

/** Whether `timeZone` is an IANA time zone this runtime knows. */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The times of `expression` (5 fields, or 6 with seconds first, or a nickname such as @daily) in `timeZone`, or
 * why the schedule cannot be read.
 */
export function parseSchedule(expression: string, timeZone: string): CronTimes | ScheduleProblem {
  if (!isKnownTimeZone(timeZone)) {
    return {
      reason: "InvalidTimeZone",
      message: `spec.timeZone ${JSON.stringify(timeZone)} is not a known IANA time zone`,
    };
  }
  let cron: Cron;
  try {
    cron = new Cron(expression.trim(), { timezone: timeZone, paused: true, mode: "5-or-6-parts" });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return {
      reason: "InvalidSchedule",
      message: `spec.schedule ${JSON.stringify(expression)} is not valid: ${detail}`,
    };
  }
  if (cron.nextRun(new Date(0)) === null) {
    return { reason: "InvalidSchedule", message: `spec.schedule ${JSON.stringify(expression)} never comes` };
  }
  return {
    next: (after) => cron.nextRun(after) ?? undefined,
    latestAtOrBefore: (at) => {
      // croner's previousRuns leaves out the second of its reference: ask from the next whole second.
      const from = new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
      return cron.previousRuns(2, from).find((t) => t.getTime() <= at.getTime());
    },
  };
}

export function isScheduleProblem(value: CronTimes | ScheduleProblem): value is ScheduleProblem {
  return "reason" in value;
}

export interface DueInput {
  times: CronTimes;
  now: Date;
  /**
   * Every time at or before this was handled already: run or skipped (the latest of the schedule's creation,
   * its last run's time and its last skipped time).
   */
  handledUntil: Date;
  startingDeadlineSeconds?: number;
}

/** A time that came since handledUntil: the latest one only (earlier ones are not run after an outage). */
export interface DueTime {
  time: Date;
  /** It is older than startingDeadlineSeconds: it is skipped, not run. */
  late: boolean;
}

/** The latest time in (handledUntil, now], if any, and whether it is too late to run. */
export function dueTime(input: DueInput): DueTime | undefined {
  const latest = input.times.latestAtOrBefore(input.now);
  if (latest === undefined || latest.getTime() <= input.handledUntil.getTime()) return undefined;
  const deadline = input.startingDeadlineSeconds;
  const late = deadline !== undefined && input.now.getTime() - latest.getTime() > deadline * 1000;
  return { time: latest, late };
}

/** The latest of the given times (undefined ones ignored). */
export function latestOf(...times: Array<Date | undefined>): Date | undefined {
  let latest: Date | undefined;
  for (const t of times) if (t !== undefined && (latest === undefined || t.getTime() > latest.getTime())) latest = t;
  return latest;
}
