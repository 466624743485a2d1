import { fnv1a32Hex } from "./fnv1a.js";

// The name is used for the step object, the node Job and as a label value, so it must satisfy the
// strictest of them: a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', each dot-separated part
// starting and ending with an alphanumeric) of at most 63 characters, the label-value limit.
const MAX_NAME_LENGTH = 63;
const HASH_LENGTH = 8;

/**
 * The deterministic name of the work on one node in one round: `<backup>-r<round>-<node>`.
 *
 * When that does not fit in 63 characters, or an input had to be altered to be valid (upper case, '_',
 * ...), the backup and node parts are shortened, sharing the room fairly so both stay recognisable, and an
 * 8-hex-digit FNV-1a hash of the original inputs is appended: `<backup…>-r<round>-<node…>-<hash>`. The
 * hash keeps names of different inputs apart where the shortened parts coincide; the same inputs always
 * give the same name, so a reconcile finds the Job an earlier reconcile created.
 */
export function stepName(backupName: string, round: number, node: string): string {
  if (!Number.isSafeInteger(round) || round < 0) {
    throw new RangeError(`round must be a non-negative integer, got ${round}`);
  }
  const backup = toSubdomain(backupName);
  const host = toSubdomain(node);
  const roundPart = `r${round}`;
  const unaltered = backup === backupName && host === node && backup !== "" && host !== "";
  const plain = `${backup}-${roundPart}-${host}`;
  if (unaltered && plain.length <= MAX_NAME_LENGTH) return plain;

  // Separators: one after backup, one after the round, one before the hash.
  const room = MAX_NAME_LENGTH - roundPart.length - HASH_LENGTH - 3;
  const [backupRoom, hostRoom] = shareRoom(backup.length, host.length, room);
  const hash = fnv1a32Hex(`${backupName}\n${round}\n${node}`);
  // Empty parts are left out rather than joined, so the name never starts with or doubles a '-'.
  return [trimEnd(backup.slice(0, backupRoom)), roundPart, trimEnd(host.slice(0, hostRoom)), hash]
    .filter((part) => part !== "")
    .join("-");
}

/**
 * Lower-cases, turns anything outside [a-z0-9.-] into '-', and strips the '-' at either end of each
 * dot-separated part (dropping empty parts), which yields a valid DNS-1123 subdomain or "".
 */
function toSubdomain(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, "-")
    .split(".")
    .map((part) => part.replace(/^-+|-+$/g, ""))
    .filter((part) => part !== "")
    .join(".");
}

/** After a cut the last part may end in '-' or '.'; a subdomain may not. */
function trimEnd(text: string): string {
  return text.replace(/[-.]+$/, "");
}

/** Splits `room` characters between two parts: a short part keeps its length, the other gets the rest. */
function shareRoom(first: number, second: number, room: number): [number, number] {
  if (first + second <= room) return [first, second];
  const half = Math.floor(room / 2);
  if (first <= half) return [first, room - first];
  if (second <= room - half) return [room - second, second];
  return [half, room - half];
}
