// The disks of a VM that are claims, in a restore. restore.ts keeps the order of the whole restore (see
// there); this file says what is particular to claims:
// - which claim disks a backup may write: its manifest is untrusted, so every claim disk it lists must be a
//   claim the operator allows for the VM (the NodeRestore's `claims`: the claims its VirtualMachine names
//   now and no other VM names), with the same volume, the same claim and the same volume mode. The claim a
//   disk was captured from may differ from the one it is written to (a copy of the VM, a claim re-created
//   under another name): the allowed claim then says so (capturedClaimName), and the disk is matched by that;
// - where they are: the restore Job mounts each Filesystem-mode claim at <claimsRoot>/<claim> and attaches
//   each Block-mode claim as the device <devicesRoot>/<claim>, as the backup Job does (<claim>: the claim
//   written to). A claim made again for the restore is blank: a Filesystem-mode one an empty directory (the
//   disk.img is created), a Block-mode one a device of zeros at least as large as the backup's;
// - a Filesystem-mode claim's disk.img is restored like a hostDisk file (verified, copied beside it,
//   swapped in), below the claim's mount point, through safe-fs.ts like every path a tenant can write. The
//   copy needs free room on the claim for its non-zero data (zero chunks stay holes): a claim too full for
//   it fails the VM (ENOSPC, RestoreFailed) before any device is written or any file replaced;
// - a Block-mode claim's device cannot be swapped: block-device.ts checks the device (a block device, not
//   in use, at least as large as the backup's) and verifies the data file before anything is written
//   (prepareBlockDisks), and writes it and reads it back (writeBlockDisks) only once every file's
//   temporary copy is ready. A write that fails leaves the device partly written (ClaimPartlyWritten).
import { posix } from "node:path";
import type { PreparedBlockRestore } from "./block-device.js";
import { BlockDeviceError, prepareBlockRestore } from "./block-device.js";
import type { ManifestBlockDisk, ManifestFilesystemDisk, WorkloadManifest } from "./manifest.js";
import { checkName } from "./manifest.js";
import type { RestoreErrorReason } from "./restore-error.js";
import { RestoreError } from "./restore-error.js";
import type { SafeDir } from "./safe-fs.js";
import { isCode, withRoot } from "./safe-fs.js";
import type { AgentLog } from "./types.js";
import { errorMessage } from "./types.js";
import type { PositionalSource } from "../storage/positional.js";

/** A claim the VM may be restored to (NodeRestore spec.workloads[].claims). */
export interface AllowedClaim {
  /** The volume's name in the VM spec. */
  volume: string;
  claimName: string;
  volumeMode: "Filesystem" | "Block";
  /** The claim the backup's disk for this volume was captured from, when it is not claimName. */
  capturedClaimName?: string;
}

type ClaimDisk = ManifestBlockDisk | ManifestFilesystemDisk;

/**
 * `claim pvc-a (volume root)`, for messages: the claim the disk was captured from, or `claimName` it is
 * written to (`claim pvc-b (volume root, captured from pvc-a)` when they differ).
 */
export function claimOf(disk: ClaimDisk, claimName = disk.source.claimName): string {
  const captured = disk.source.claimName === claimName ? "" : `, captured from ${disk.source.claimName}`;
  return `claim ${claimName} (volume ${disk.name}${captured})`;
}

/** The allowed claim a backup's claim disk is for: the same volume, captured from the same claim. */
export function allowedClaimFor(disk: ClaimDisk, allowed: readonly AllowedClaim[]): AllowedClaim | undefined {
  return allowed.find((c) => c.volume === disk.name && (c.capturedClaimName ?? c.claimName) === disk.source.claimName);
}

/**
 * The claim each claim disk of the manifest is written to (its allowed claim's name). Throws ForeignFile for
 * a claim disk that is not an allowed claim of the VM (by volume and captured claim) or whose claim another
 * disk of the manifest already takes, VolumeModeMismatch for one whose claim has another volume mode now.
 * Nothing is read or written.
 */
export function checkAllowedClaims(
  manifest: WorkloadManifest,
  allowed: readonly AllowedClaim[],
  vm: string,
): Map<ClaimDisk, string> {
  const targets = new Map<ClaimDisk, string>();
  for (const disk of [...(manifest.filesystemDisks ?? []), ...(manifest.blockDisks ?? [])]) {
    const { claimName } = disk.source;
    const claim = allowedClaimFor(disk, allowed);
    if (claim && [...targets.values()].includes(claim.claimName)) {
      throw new RestoreError(
        "ForeignFile",
        `the backup of ${vm} holds two disks for ${claimOf(disk, claim.claimName)}; nothing was written`,
        claim.claimName,
      );
    }
    if (!claim) {
      throw new RestoreError(
        "ForeignFile",
        `the backup of ${vm} holds ${claimOf(disk)}, which is not a claim ${vm} may be restored to (a claim its ` +
          `VirtualMachine names now under that volume and no other VM names); nothing was written`,
        claimName,
      );
    }
    if (claim.volumeMode !== disk.volumeMode) {
      throw new RestoreError(
        "VolumeModeMismatch",
        `the backup of ${vm} holds ${claimOf(disk)} in ${disk.volumeMode} mode, but the claim is in ` +
          `${claim.volumeMode} mode now: ${disk.volumeMode === "Block" ? "a device" : "a disk.img"} cannot be ` +
          `restored onto ${claim.volumeMode === "Block" ? "a device" : "a filesystem"}; nothing was written`,
        claimName,
      );
    }
    targets.set(disk, claim.claimName);
  }
  return targets;
}

/**
 * Where the disk.img of a Filesystem-mode claim is restored: the root of the mount of `claimName`, the claim
 * it is written to, opened.
 */
export async function openClaimMount(
  claimsRoot: string | undefined,
  disk: ManifestFilesystemDisk,
  claimName: string,
): Promise<SafeDir> {
  const claim = checkName("claim name", claimName);
  return withRoot(rootFor(claimsRoot, "claimsRoot", disk), async (claims) => {
    try {
      return await claims.openDir(claim);
    } catch (err) {
      if (!isCode(err, "ENOENT")) throw err;
      throw new Error(`${claimOf(disk, claimName)} is not mounted at ${posix.join(claimsRoot!, claim)}`, {
        cause: err,
      });
    }
  });
}

/** A Block-mode claim disk of the backup, from the check of its data file to its write. */
export interface PlannedBlockDisk {
  disk: ManifestBlockDisk;
  /** The claim it is written to (checkAllowedClaims). */
  claimName: string;
  /** The data file at the location, open from its size check on: what is verified is what is written. */
  data?: PositionalSource;
  /** The device, checked and held exclusively, and the data verified. */
  prepared?: PreparedBlockRestore;
}

/**
 * Opens each claim's device exclusively and checks it, then verifies its data file with the holes against
 * the sha256 of the backup (prepareBlockRestore): nothing is written. A device smaller than the backup's
 * fails with ClaimTooSmall.
 */
export async function prepareBlockDisks(
  items: readonly PlannedBlockDisk[],
  devicesRoot: string | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (const item of items) {
    const { disk, claimName } = item;
    const device = posix.join(rootFor(devicesRoot, "devicesRoot", disk), checkName("claim name", claimName));
    try {
      item.prepared = await prepareBlockRestore(item.data!, disk, device, signal ? { signal } : {});
    } catch (err) {
      throw refusedDevice(err, item, device);
    }
  }
}

// Why a device was not prepared, as a restore reason where there is one; nothing was written either way.
const DEVICE_REFUSALS: Partial<Record<BlockDeviceError["reason"], RestoreErrorReason>> = {
  DeviceTooSmall: "ClaimTooSmall",
  ChecksumMismatch: "ChecksumMismatch",
  SizeMismatch: "SizeMismatch",
  InvalidLayout: "InvalidManifest",
  // A symlink, a file or anything else than the device the Job attached; or replaced while it was opened.
  NotBlockDevice: "UnsafeFile",
  DeviceChanged: "UnsafeFile",
};

function refusedDevice(err: unknown, item: PlannedBlockDisk, device: string): unknown {
  const claim = item.claimName;
  const what = claimOf(item.disk, claim);
  const reason = err instanceof BlockDeviceError ? DEVICE_REFUSALS[err.reason] : undefined;
  if (reason) return new RestoreError(reason, `cannot restore ${what}: ${errorMessage(err)}`, claim, { cause: err });
  if (isCode(err, "ENOENT")) return new Error(`${what} is not attached at ${device}`, { cause: err });
  // DeviceBusy and I/O errors: RestoreFailed with the message.
  return err instanceof BlockDeviceError ? new Error(`cannot restore ${what}: ${err.message}`, { cause: err }) : err;
}

/**
 * Writes every prepared device and reads it back. A failure once a device has begun to be written is
 * ClaimPartlyWritten, naming the devices written: a device cannot be rolled back.
 */
export async function writeBlockDisks(items: readonly PlannedBlockDisk[], vm: string, log: AgentLog): Promise<void> {
  const written: string[] = [];
  for (const item of items) {
    const { disk, claimName } = item;
    try {
      const result = await item.prepared!.write();
      written.push(claimOf(disk, claimName));
      log.info("claim device restored", {
        vm,
        claim: claimName,
        bytes: result.bytes,
        tailBytes: result.tailBytes,
        readBack: result.readBack,
      });
    } catch (err) {
      const touched = err instanceof BlockDeviceError && err.deviceWritten;
      if (!touched && written.length === 0) throw err;
      const message =
        `${touched ? `the device of ${claimOf(disk, claimName)} is partly written` : `${claimOf(disk, claimName)} was not written`}: ` +
        `${errorMessage(err)}. A device cannot be put back as it was: do not start ${vm} on it, restore it again` +
        `${written.length > 0 ? ` (written in full before: ${written.join(", ")})` : ""}; the VM's files were not replaced`;
      log.error("a claim's device is partly written", { vm, claim: claimName, error: errorMessage(err) });
      throw new RestoreError("ClaimPartlyWritten", message, claimName, { cause: err });
    }
  }
}

/** Releases the devices and the data files. */
export async function closeBlockDisks(items: readonly PlannedBlockDisk[]): Promise<void> {
  const closing = items.flatMap((item) => [item.prepared?.close(), item.data?.close()]);
  await Promise.allSettled(closing.filter((p) => p !== undefined));
}

function rootFor(root: string | undefined, what: string, disk: ClaimDisk): string {
  if (root === undefined) throw new Error(`cannot restore ${claimOf(disk)}: the restore has no ${what}`);
  return root;
}
