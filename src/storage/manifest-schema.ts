// The manifests that describe a backup at its location: their types, and the checks every reader applies
// (a manifest comes from a location others can write to: it is parsed and checked, never trusted).
// Where each file lives is layout.ts; reading and writing them, the agent's manifest.ts.
//
// Schema versions: every reader checks schemaVersion exactly, so a field that changes which disks there are
// is never silently ignored by an older reader (optional fields that do not, below, need no new version).
// A VM manifest without block disks is version 1, the same bytes as before
// block disks existed, so that an agent of an earlier release (during an upgrade) reads it. A manifest that
// lists disks on claims (`blockDisks`, Block-mode claims read as raw devices; `filesystemDisks`, the
// disk.img of Filesystem-mode claims) is version 2: an earlier agent refuses it as invalid instead of
// restoring the files and silently leaving the claims out. This code reads both; version 1 must have
// neither field, version 2 must have `blockDisks` (empty when the VM has no Block-mode claim) and may have
// `filesystemDisks`. Node manifests stay version 1.
//
// The VM's definition and Secrets (definition-file.ts) are listed in the optional fields `definition` and
// `secrets` ({path, bytes, sha256}, path relative to the VM's directory), without a version bump: they add
// to what a restore can do and take nothing away from what it did. A reader of an earlier release ignores
// fields it does not check (parseWorkloadManifest checks the fields it knows and never refuses others), so
// it restores the disks of such a manifest exactly as before and simply cannot re-create a deleted VM; a
// bump would instead make that reader refuse disks it can restore. Neither file counts in totalBytes (the
// sum of the disks, which an earlier reader checks), and both are written before the manifest, like disks.
import { DEFINITION_FILE, SECRETS_FILE, checkName, checkRelativePath, checkRound } from "./layout.js";
import { ManifestError } from "./manifest-error.js";

export const MANIFEST_SCHEMA_VERSION = 1;

/** The version of a VM manifest that lists block disks (see above); one without them stays version 1. */
export const MANIFEST_SCHEMA_VERSION_BLOCK_DISKS = 2;

export type WorkloadManifestSchemaVersion = typeof MANIFEST_SCHEMA_VERSION | typeof MANIFEST_SCHEMA_VERSION_BLOCK_DISKS;

/** The version a VM manifest with (or without) these disks on claims must carry. */
export function workloadManifestSchemaVersion(
  blockDisks: readonly unknown[] | undefined,
  filesystemDisks?: readonly unknown[],
): WorkloadManifestSchemaVersion {
  return blockDisks === undefined && filesystemDisks === undefined
    ? MANIFEST_SCHEMA_VERSION
    : MANIFEST_SCHEMA_VERSION_BLOCK_DISKS;
}

/** How the files were snapshotted. */
export type CaptureMethod = "Reflink" | "Copy" | "CSI";

/**
 * Whether the guest was frozen while its files were captured, and if not, why.
 * GuestAgent: frozen through the QEMU guest agent for the whole capture (application-consistent).
 * NoGuestAgent: the VM has no connected guest agent. QuiesceTimeout: the freeze did not complete within
 * freezeTimeout. NotQuiesced: quiesce None, no freeze was asked for. FreezeBudgetExceeded: the capture
 * outlasted maxFreeze, so the guest was thawed before it ended. FreezeFailed: the freeze failed for another
 * reason (see message). All but GuestAgent come with a message.
 */
export const INDICATIONS = [
  "GuestAgent",
  "NoGuestAgent",
  "QuiesceTimeout",
  "NotQuiesced",
  "FreezeBudgetExceeded",
  "FreezeFailed",
] as const;
export type Indication = (typeof INDICATIONS)[number];

/**
 * What the captured files are worth, derived from the indication and the method.
 * ApplicationConsistent: frozen guest. CrashConsistent: not frozen, but each file was captured at one
 * instant (a reflink clone or a CSI snapshot), like a disk after a power cut. Inconsistent: the file was
 * copied byte by byte, at least partly while the guest was running, so different parts of it come from
 * different moments; such a copy may not boot and should be treated as a failed capture.
 */
export const CONSISTENCIES = ["ApplicationConsistent", "CrashConsistent", "Inconsistent"] as const;
export type Consistency = (typeof CONSISTENCIES)[number];

export type ExtractAt = "Backup" | "Restore";

export interface ManifestFile {
  /** Relative to the shared volume root, exactly as the VM spec refers to it. */
  path: string;
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
  /** Permission bits and owner of the source file, so a restore into an empty directory gets them back. */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A run of all-zero bytes of a block device that was not stored (see BlockLayout). */
export interface BlockHole {
  /** Where the run starts on the device: a multiple of the layout's chunkBytes. */
  offset: number;
  /** A multiple of chunkBytes, except for a run that ends at the end of the device. */
  length: number;
}

/**
 * How a block device's content is stored (block-device.ts): the device is cut in chunks of chunkBytes (the
 * last one may be shorter); chunks that are entirely zero are holes, the others are stored one after the
 * other, in device order, in one data file of storedBytes. Holes are listed as merged runs, sorted, never
 * touching each other (two adjacent runs are one run), so a content has exactly one layout.
 */
export interface BlockLayout {
  /** The device's size: what it holds from 0 to the end, zeros included; a multiple of 512. */
  bytes: number;
  /** Lowercase hex sha256 of the whole device content (bytes long, zeros included): `sha256sum /dev/...`. */
  sha256: string;
  /** The chunk size the holes are aligned to: a multiple of 4096 from 4 KiB to 64 MiB. */
  chunkBytes: number;
  holes: BlockHole[];
  /** Size of the data file: bytes less the holes' lengths. */
  storedBytes: number;
}

/** Where a block disk's data comes from in the VM spec. A DataVolume's claim has the DataVolume's name. */
export type BlockDiskSourceKind = "PersistentVolumeClaim" | "DataVolume";

/**
 * The claim a disk was captured from, with its shape at the time (absent in manifests written before it
 * was recorded): what a claim made again for it needs.
 */
export interface ClaimDiskSource {
  kind: BlockDiskSourceKind;
  claimName: string;
  accessModes?: string[];
  storageClassName?: string;
  /** The claim's capacity in bytes (status.capacity.storage), which may exceed the disk's. */
  sizeBytes?: number;
}

/** A volume of the VM that is not data (containerDisk, cloudInitNoCloud, ...): named, never captured. */
export interface SkippedVolume {
  volume: string;
  /** The volume source's field name. */
  type: string;
}

/** A disk of the VM that is a claim in Block mode, read as a raw device; its data file is backupBlockDiskPath. */
export interface ManifestBlockDisk extends BlockLayout {
  /** The volume's name in the VM spec (spec.template.spec.volumes[].name); one path component. */
  name: string;
  source: ClaimDiskSource;
  volumeMode: "Block";
  /** How the claim was cut: CSI (a VolumeSnapshot) or Copy (under freeze); absent in older manifests (Copy). */
  method?: ClaimDiskMethod;
  /** Why that method (what Auto picked and why). */
  why?: string;
}

export type ClaimDiskMethod = "CSI" | "Reflink" | "Copy";

/**
 * A disk of the VM that is a claim in Filesystem mode: the `disk.img` at the claim's root (as CDI lays it
 * out), stored as it is at backupFilesystemDiskPath.
 */
export interface ManifestFilesystemDisk {
  /** The volume's name in the VM spec (spec.template.spec.volumes[].name); one path component. */
  name: string;
  source: ClaimDiskSource;
  volumeMode: "Filesystem";
  /** As ManifestBlockDisk.method. */
  method?: ClaimDiskMethod;
  why?: string;
  /** The size of disk.img. */
  bytes: number;
  /** Lowercase hex sha256 of disk.img. */
  sha256: string;
  /** Permission bits and owner of disk.img on the claim. */
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface WorkloadManifest {
  /** 1 without disks on claims, 2 with them (see workloadManifestSchemaVersion). */
  schemaVersion: WorkloadManifestSchemaVersion;
  backup: { name: string; uid: string };
  /** uid may be empty when the planner did not know it. */
  workload: { namespace: string; name: string; uid: string };
  node: string;
  round: number;
  method: CaptureMethod;
  indication: Indication;
  consistency: Consistency;
  /** Why the indication is not GuestAgent, and any other caveat (an unfreeze that kept failing). */
  message?: string;
  /** RFC 3339 times; null when the guest was never frozen (windowMs is then 0). */
  freeze: { startedAt: string | null; endedAt: string | null; windowMs: number };
  /** Backup: files are under files/. Restore: they are still in the snapshot, see snapshot. */
  extractAt: ExtractAt;
  /** With extractAt Restore: the kept snapshot, a directory relative to the shared volume root. */
  snapshot?: { location: string };
  files: ManifestFile[];
  /**
   * Schema version 2 only, and there always (empty without Block-mode claims): the VM's Block-mode disks,
   * always stored at the location (whatever extractAt).
   */
  blockDisks?: ManifestBlockDisk[];
  /** Schema version 2 only: the VM's Filesystem-mode claims, always stored at the location. */
  filesystemDisks?: ManifestFilesystemDisk[];
  /** The VM's volumes that are not data, left out on purpose; absent when it has none. */
  skippedVolumes?: SkippedVolume[];
  /** The VM's definition (definition-file.ts); absent when none was captured (no VirtualMachine, older backups). */
  definition?: ManifestStoredFile<typeof DEFINITION_FILE>;
  /** The Secrets the VM references, stored with the backup's includeSecrets; absent otherwise. */
  secrets?: ManifestStoredFile<typeof SECRETS_FILE>;
  /** The sum of the bytes of the files, of the block disks (device sizes, holes included) and of the filesystem disks. */
  totalBytes: number;
  startedAt: string;
  completedAt: string;
}

/** A file of the VM's directory that is not a disk, with its size and checksum. */
export interface ManifestStoredFile<P extends string = string> {
  /** Relative to the VM's directory: always the one name of its kind. */
  path: P;
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
}

/** One VM captured by a node run (also one entry of the node manifest). */
export interface CapturedWorkload {
  namespace: string;
  name: string;
  uid: string;
  bytes: number;
  files: number;
  indication: Indication;
  consistency: Consistency;
  message?: string;
  freezeWindowMs: number;
  /** The VM's manifest, relative to the backup root: `<namespace>/<vm>/manifest.json`. */
  manifestPath: string;
  /** sha256 of the first file (NodeSnapshot status shows a prefix of it). */
  sha256?: string;
  /** Already complete from an earlier attempt of the same round; reported from its manifest, not redone. */
  reused: boolean;
  /** The VM's definition is in its backup. */
  definition: boolean;
  /** With includeSecrets: how many Secrets were stored with it. */
  secrets?: number;
}

/** Reasons use the FederatedBackup status.missing vocabulary. */
export type FailedReason =
  | "Migrated"
  | "NotRunning"
  | "NoSharedDisk"
  | "UnsafeFile"
  // A claim cut with Reflink whose filesystem could not clone its disk.img.
  | "ReflinkNotSupported"
  | "CaptureFailed";

/** One VM a node run did not capture. */
export interface FailedWorkload {
  namespace: string;
  name: string;
  reason: FailedReason;
  message: string;
}

export interface NodeManifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  backup: { name: string; uid: string };
  node: string;
  round: number;
  /** The method used on this node (with Auto, the one chosen). */
  method: CaptureMethod;
  startedAt: string;
  completedAt: string;
  captured: CapturedWorkload[];
  failed: FailedWorkload[];
}

/** Checks the shape of a parsed per-VM manifest; throws ManifestError("Invalid") naming the bad field. */
export function parseWorkloadManifest(value: unknown): WorkloadManifest {
  const v = new Validator(value, "manifest");
  const version = v.literalIn("schemaVersion", [MANIFEST_SCHEMA_VERSION, MANIFEST_SCHEMA_VERSION_BLOCK_DISKS]);
  const backup = v.child("backup");
  backup.string("name");
  backup.string("uid");
  const workload = v.child("workload");
  checkName("namespace", workload.string("namespace"));
  checkName("VM name", workload.string("name"));
  workload.stringOrEmpty("uid");
  v.string("node");
  checkRound(v.integer("round"));
  v.oneOf("method", ["Reflink", "Copy", "CSI"]);
  v.oneOf("indication", INDICATIONS);
  v.oneOf("consistency", CONSISTENCIES);
  v.optionalString("message");
  const freeze = v.child("freeze");
  freeze.nullableString("startedAt");
  freeze.nullableString("endedAt");
  freeze.integer("windowMs");
  const extractAt = v.oneOf("extractAt", ["Backup", "Restore"]);
  if (extractAt === "Restore") checkRelativePath(v.child("snapshot").string("location"));
  const files = v.array("files");
  let total = 0;
  const seen = new Set<string>();
  files.forEach((_, i) => {
    const file = v.child("files", i);
    const path = checkRelativePath(file.string("path"));
    if (seen.has(path)) throw new ManifestError("Invalid", `manifest lists ${path} twice`);
    seen.add(path);
    total += file.integer("bytes");
    if (!/^[0-9a-f]{64}$/.test(file.string("sha256"))) {
      throw new ManifestError("Invalid", `manifest files[${i}].sha256 is not a lowercase hex sha256`);
    }
    for (const key of ["mode", "uid", "gid"]) file.optionalInteger(key);
  });
  total += parseClaimDisks(v, version);
  if (v.has("skippedVolumes")) {
    v.array("skippedVolumes").forEach((_, i) => {
      const skipped = v.child("skippedVolumes", i);
      skipped.string("volume");
      skipped.string("type");
    });
  }
  parseStoredFile(v, "definition", DEFINITION_FILE);
  parseStoredFile(v, "secrets", SECRETS_FILE);
  if (v.integer("totalBytes") !== total) {
    throw new ManifestError(
      "Invalid",
      `manifest totalBytes is not the sum of the file, block disk and filesystem disk sizes (${total})`,
    );
  }
  v.string("startedAt");
  v.string("completedAt");
  return value as WorkloadManifest;
}

// An optional stored file of the VM's directory: its one name, a size, a sha256.
function parseStoredFile(v: Validator, key: string, path: string): void {
  if (!v.has(key)) return;
  const file = v.child(key);
  if (file.string("path") !== path) throw new ManifestError("Invalid", `manifest ${key}.path must be ${path}`);
  file.integer("bytes");
  if (!/^[0-9a-f]{64}$/.test(file.string("sha256"))) {
    throw new ManifestError("Invalid", `manifest ${key}.sha256 is not a lowercase hex sha256`);
  }
}

// The disks on claims (block and filesystem) of a manifest of schema `version`, checked; returns the sum of
// their sizes. A volume name and a claim name each name one disk of the VM, across both lists.
function parseClaimDisks(v: Validator, version: WorkloadManifestSchemaVersion): number {
  if (version === MANIFEST_SCHEMA_VERSION) {
    for (const key of ["blockDisks", "filesystemDisks"]) {
      if (v.has(key)) {
        throw new ManifestError(
          "Invalid",
          `manifest lists ${key} but has schemaVersion ${version}; disks on claims need ${MANIFEST_SCHEMA_VERSION_BLOCK_DISKS}`,
        );
      }
    }
    return 0;
  }
  // Volume and claim names, each with the kind of disk that has it.
  const names = new Map<string, string>();
  const claims = new Map<string, string>();
  const both = (a: string, b: string) => (a === b ? `${a}s` : "disks");
  // The fields a block disk and a filesystem disk share: name and source.
  const checkDisk = (disk: Validator, kind: "block disk" | "filesystem disk") => {
    const name = checkName("disk name", disk.string("name"));
    const before = names.get(name);
    if (before) throw new ManifestError("Invalid", `manifest lists ${kind === before ? kind : "disk"} ${name} twice`);
    names.set(name, kind);
    const source = disk.child("source");
    source.oneOf("kind", ["PersistentVolumeClaim", "DataVolume"]);
    // A DataVolume's claim has its name: one claim, whichever way the VM names it.
    const claim = checkName("claim name", source.string("claimName"));
    const other = claims.get(claim);
    if (other) throw new ManifestError("Invalid", `manifest lists claim ${claim} for two ${both(other, kind)}`);
    claims.set(claim, kind);
    if (source.has("accessModes") && !source.array("accessModes").every((m) => typeof m === "string")) {
      throw new ManifestError("Invalid", `manifest ${kind} ${name}: source.accessModes must be strings`);
    }
    source.optionalString("storageClassName");
    source.optionalInteger("sizeBytes");
    if (disk.has("method")) disk.oneOf("method", ["CSI", "Reflink", "Copy"]);
    if (disk.has("why")) disk.string("why");
  };
  let total = 0;
  v.array("blockDisks").forEach((value, i) => {
    const disk = v.child("blockDisks", i);
    checkDisk(disk, "block disk");
    disk.oneOf("volumeMode", ["Block"]);
    total += checkBlockLayout(value, `manifest.blockDisks[${i}]`).bytes;
  });
  if (v.has("filesystemDisks")) {
    v.array("filesystemDisks").forEach((_, i) => {
      const disk = v.child("filesystemDisks", i);
      checkDisk(disk, "filesystem disk");
      disk.oneOf("volumeMode", ["Filesystem"]);
      total += disk.integer("bytes");
      if (!/^[0-9a-f]{64}$/.test(disk.string("sha256"))) {
        throw new ManifestError("Invalid", `manifest.filesystemDisks[${i}].sha256 is not a lowercase hex sha256`);
      }
      for (const key of ["mode", "uid", "gid"]) disk.optionalInteger(key);
    });
  }
  return total;
}

/** Device sizes are whole 512-byte sectors, whatever the device's logical block size. */
export const SECTOR_BYTES = 512;
/** Chunks are whole pages, so that a restore never writes part of a page of the device's page cache. */
export const BLOCK_CHUNK_ALIGN = 4096;
export const MIN_BLOCK_CHUNK_BYTES = 4096;
export const MAX_BLOCK_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Checks a block layout (see BlockLayout) from untrusted input: size in whole sectors, chunk size, sha256,
 * and holes sorted, merged (never overlapping or touching), chunk-aligned, within the device, with the
 * stored size the device size less the holes. Throws ManifestError("Invalid") naming what is wrong.
 */
export function checkBlockLayout(value: unknown, where = "block layout"): BlockLayout {
  const v = new Validator(value, where);
  const bytes = v.integer("bytes");
  if (bytes % SECTOR_BYTES !== 0) {
    throw new ManifestError(
      "Invalid",
      `${where}.bytes (${bytes}) is not a whole number of ${SECTOR_BYTES}-byte sectors`,
    );
  }
  if (!/^[0-9a-f]{64}$/.test(v.string("sha256"))) {
    throw new ManifestError("Invalid", `${where}.sha256 is not a lowercase hex sha256`);
  }
  const chunk = v.integer("chunkBytes");
  if (chunk < MIN_BLOCK_CHUNK_BYTES || chunk > MAX_BLOCK_CHUNK_BYTES || chunk % BLOCK_CHUNK_ALIGN !== 0) {
    throw new ManifestError(
      "Invalid",
      `${where}.chunkBytes (${chunk}) must be a multiple of ${BLOCK_CHUNK_ALIGN} from ${MIN_BLOCK_CHUNK_BYTES} to ${MAX_BLOCK_CHUNK_BYTES}`,
    );
  }
  const holes = v.array("holes");
  let end = -1;
  let holeBytes = 0;
  holes.forEach((_, i) => {
    const hole = v.child("holes", i);
    const at = `${where}.holes[${i}]`;
    const offset = hole.integer("offset");
    const length = hole.integer("length");
    const bad = (why: string) => new ManifestError("Invalid", `${at} (offset ${offset}, length ${length}) ${why}`);
    if (length === 0) throw bad("is empty");
    if (offset % chunk !== 0) throw bad(`does not start on a chunk boundary (chunkBytes ${chunk})`);
    if (offset + length > bytes) throw bad(`ends past the end of the device (${bytes} bytes)`);
    if (length % chunk !== 0 && offset + length !== bytes) {
      throw bad(`does not end on a chunk boundary (chunkBytes ${chunk}) nor at the end of the device`);
    }
    if (offset < end) throw bad("overlaps the hole before it or is out of order (holes are sorted)");
    if (offset === end) throw bad("touches the hole before it (adjacent holes are merged into one)");
    end = offset + length;
    holeBytes += length;
  });
  const stored = v.integer("storedBytes");
  if (stored !== bytes - holeBytes) {
    throw new ManifestError(
      "Invalid",
      `${where}.storedBytes (${stored}) is not the device size less the holes (${bytes - holeBytes})`,
    );
  }
  return value as BlockLayout;
}

/** Checks the shape of a parsed node manifest; throws ManifestError("Invalid") naming the bad field. */
export function parseNodeManifest(value: unknown): NodeManifest {
  const v = new Validator(value, "node manifest");
  v.literal("schemaVersion", MANIFEST_SCHEMA_VERSION);
  v.object("backup");
  v.string("node");
  v.integer("round");
  v.oneOf("method", ["Reflink", "Copy", "CSI"]);
  v.array("captured");
  v.array("failed");
  return value as NodeManifest;
}

// ---- a small structural validator, so that manifests from disk are never trusted blindly ----

class Validator {
  private readonly record: Record<string, unknown>;
  constructor(
    value: unknown,
    private readonly where: string,
  ) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ManifestError("Invalid", `${where} is not a JSON object`);
    }
    this.record = value as Record<string, unknown>;
  }

  private fail(key: string, expected: string): never {
    throw new ManifestError("Invalid", `${this.where}.${key} must be ${expected}`);
  }

  child(key: string, index?: number): Validator {
    const value = this.record[key];
    if (index === undefined) return new Validator(value, `${this.where}.${key}`);
    if (!Array.isArray(value)) this.fail(key, "an array");
    return new Validator(value[index], `${this.where}.${key}[${index}]`);
  }

  object(key: string): void {
    this.child(key);
  }

  string(key: string): string {
    const value = this.record[key];
    if (typeof value !== "string" || value.length === 0) this.fail(key, "a non-empty string");
    return value;
  }

  stringOrEmpty(key: string): string {
    const value = this.record[key];
    if (typeof value !== "string") this.fail(key, "a string");
    return value;
  }

  optionalString(key: string): void {
    if (this.record[key] !== undefined && typeof this.record[key] !== "string") this.fail(key, "a string");
  }

  nullableString(key: string): void {
    if (this.record[key] !== null) this.string(key);
  }

  integer(key: string): number {
    const value = this.record[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      this.fail(key, "a non-negative integer");
    }
    return value;
  }

  optionalInteger(key: string): void {
    if (this.record[key] !== undefined) this.integer(key);
  }

  literal(key: string, expected: number): void {
    if (this.record[key] !== expected) this.fail(key, String(expected));
  }

  literalIn<T extends number>(key: string, allowed: readonly T[]): T {
    const value = this.record[key];
    if (typeof value !== "number" || !(allowed as readonly number[]).includes(value)) {
      this.fail(key, allowed.join(" or "));
    }
    return value as T;
  }

  has(key: string): boolean {
    return this.record[key] !== undefined;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    const value = this.record[key];
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
      this.fail(key, `one of ${allowed.join(", ")}`);
    }
    return value as T;
  }

  array(key: string): unknown[] {
    const value = this.record[key];
    if (!Array.isArray(value)) this.fail(key, "an array");
    return value;
  }
}

export { ManifestError, type ManifestErrorCode } from "./manifest-error.js";
export { DEFINITION_FILE, SECRETS_FILE } from "./layout.js";
