import type { MissingReason, WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

/** What a message may mention besides the VM itself; every field is optional. */
export interface MissingReasonContext {
  workload: WorkloadRef;
  /** The node involved: where the VM runs, ran, or was last seen. */
  node?: string;
  /** The VMI phase, for NotRunning. */
  phase?: string;
  /** The verification round the message is about. */
  round?: number;
  /** Free-form detail appended after a colon, e.g. a Job's failure message. */
  detail?: string;
  /** Why the VM was missing in the previous round; mentioned only when it differs from the reason now. */
  previousReason?: MissingReason;
}

// status.missing holds up to 100 entries; a short cap keeps the status object small and readable.
const MAX_MESSAGE_LENGTH = 1024;

/**
 * A one-line human message for status.missing[].message. It names the VM and, where known, the node,
 * and says what the user can expect (retry or not) so they do not have to look the reason up.
 */
export function missingReasonMessage(reason: MissingReason, ctx: MissingReasonContext): string {
  let message = baseMessage(reason, ctx);
  if (ctx.detail) message += `: ${ctx.detail}`;
  if (ctx.previousReason !== undefined && ctx.previousReason !== reason) {
    message += ` (previous round: ${ctx.previousReason})`;
  }
  return truncate(oneLine(message), MAX_MESSAGE_LENGTH);
}

function baseMessage(reason: MissingReason, ctx: MissingReasonContext): string {
  const vm = `VM ${workloadKey(ctx.workload)}`;
  const node = ctx.node ? `node ${ctx.node}` : "its node";
  const inRound = ctx.round === undefined ? "" : ` in round ${ctx.round}`;
  switch (reason) {
    case "NotFound":
      return `${vm} no longer exists${ctx.node ? ` (last seen on ${node})` : ""}`;
    case "NotRunning":
      return `${vm} is not running (phase ${ctx.phase ? ctx.phase : "unknown"}${ctx.node ? `, on ${node}` : ""})`;
    case "Migrating":
      return `${vm} was live-migrating away from ${node}, so it was not captured${inRound}; it can be captured once the migration has finished`;
    case "NodeNotReady":
      return `${vm} runs on ${node}, which is not Ready, so no Job can run there`;
    case "NodeFailed":
      return `the work on ${node} failed${inRound}, so ${vm} was not captured`;
    case "NodeSkipped":
      return `${vm} runs on control-plane ${node}, which spec.ordering.controlPlaneNode Skip leaves out`;
    case "NoSharedDisk":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has neither a disk on the shared volume nor a claim, so there is nothing to capture`;
    case "SharedFile":
      return `${vm}${ctx.node ? ` on ${node}` : ""} shares a file with another VM, so it was not captured`;
    case "UnsafeFile":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has a file that is not its own regular file, so it was not captured${inRound}`;
    case "InvalidVolume":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has a volume fedbackup cannot read safely, so it was not captured`;
    case "ClaimNotFound":
      return `${vm}${ctx.node ? ` on ${node}` : ""} names a claim that does not exist, so it was not captured`;
    case "ClaimNotBound":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has a claim that is not Bound, so it was not captured; a later backup can capture it once it is`;
    case "ClaimInOtherNamespace":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has its disks on claims of its own namespace, which a backup of another namespace cannot mount (a Job mounts only claims of its namespace); back it up with a FederatedBackup in its namespace`;
    case "VolumeSnapshotClassNotFound":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has a claim that spec.snapshot.method CSI cannot cut with a VolumeSnapshot, so it was not captured`;
    case "ReflinkNotSupported":
      return `${vm}${ctx.node ? ` on ${node}` : ""} has a claim that cannot be cloned with Reflink (Block mode, or a filesystem that does not clone), so it was not captured`;
    case "CaptureFailed":
      return `capturing ${vm} on ${node} failed${inRound}`;
  }
}

// Conditions and status fields are shown in one-line columns by kubectl; newlines would break them.
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

// Cuts at code points, never inside a surrogate pair.
function truncate(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${Array.from(text)
        .slice(0, max - 3)
        .join("")}...`;
}
