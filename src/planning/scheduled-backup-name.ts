// The name of the FederatedBackup a schedule creates for one of its times. The same schedule and time always give
// the same name, so an operator that restarts between creating a backup and recording it in the schedule's
// status finds the backup there (its create answers AlreadyExists) instead of creating a second one.
import { fnv1a32Hex } from "./fnv1a.js";

/** A FederatedBackup's name must fit a label value (its Jobs and steps carry it). */
const MAX_NAME_LENGTH = 63;
const HASH_LENGTH = 8;

/** The time as yyyymmddhhmmss in UTC: unambiguous across daylight-saving changes, sorted as the times are. */
export function compactUtc(time: Date): string {
  return time.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/**
 * `<schedule>-<yyyymmddhhmmss>` (UTC). A schedule name too long for that keeps its first characters and gets an
 * FNV-1a hash of the whole name, so that two long names sharing a start still give different backups.
 */
export function scheduledBackupName(schedule: string, time: Date): string {
  const stamp = compactUtc(time);
  const plain = `${schedule}-${stamp}`;
  if (plain.length <= MAX_NAME_LENGTH) return plain;
  const room = MAX_NAME_LENGTH - stamp.length - HASH_LENGTH - 2;
  const head = schedule.slice(0, room).replace(/[-.]+$/, "");
  return `${head}-${fnv1a32Hex(schedule)}-${stamp}`;
}
