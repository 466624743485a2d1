// Puts one VM's disks back from a backup, all or nothing as far as disks allow: its files on the shared
// volume, the disk.img of its Filesystem-mode claims and the devices of its Block-mode claims
// (restore-claims.ts says what is particular to claims).
//
// Order matters more than speed here, because the target is the VM's only current disk:
// 0. refuse a manifest that lists a file or a claim disk the VM may not be restored to (ForeignFile, or
//    VolumeModeMismatch for a claim now in another mode): the operator names the files and claims a VM may
//    be written to (those its VirtualMachine uses now and no other VM uses), and a manifest at the location
//    is not trusted to say so. A copy of a VM (restored under another name or namespace) reads the backup of
//    the VM it copies (`source`), writes some files at other paths than their captured ones
//    (`renamedFiles`) and its claim disks to other claims (AllowedClaim.capturedClaimName): the targets are
//    what must be allowed. With reportDefinition, the VM's captured definition is read and verified against
//    the manifest here too (DefinitionCorrupt otherwise), before any disk is;
// 1. verify every backup file (size and sha256) before touching anything: a corrupt, truncated or
//    missing backup aborts with the disks as they were (a block disk's data file: its size here, its
//    sha256 with the holes in step 2's read of it, before anything is written either);
// 2. check every target before writing anything: each directory on the way a plain directory (or missing:
//    created in step 3 like the captured path's directory), the file
//    (and a `.fedbackup-prev` left by an interrupted restore) absent or a regular file with one link; each
//    device opened exclusively, a block device at least as large as the backup's (ClaimTooSmall), and
//    its data verified;
// 3. copy each file into a temporary file beside its target, hashing again on the way (from the very
//    descriptor that was verified) and giving it the current file's mode and owner;
// 4. write each device and read it back: only now, once everything else is known to be restorable;
// 5. swap: current file -> <target>.fedbackup-prev, temporary file -> target, for every file; if a swap
//    fails, the previous files are put back;
// 6. only when every file is swapped, delete the previous files.
// A restore killed during step 5 leaves .fedbackup-prev files; the next restore of the VM puts them back
// (target missing) or drops them (target present, i.e. the swap had finished) before it starts.
// A device has no previous version to go back to: a write or read-back that fails in step 4 leaves it
// partly written, and cannot be undone. The temporary files are then removed and no file is swapped, and
// the VM fails with ClaimPartlyWritten, which says so: it must not be started before a restore succeeds.
//
// The location, the shared volume and the claims are writable by tenants, so everything is reached through
// safe-fs.ts below their mount points: a backup file, manifest or directory replaced by a symlink, a FIFO,
// a device or a hard link fails the VM (UnsafeFile) before anything is written, and every write acts on a
// directory descriptor opened without following any symlink, so it lands in that directory and nowhere else.
import type { BigIntStats } from "node:fs";
import { fchmod, fchown } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { promisify } from "node:util";
import type { VmDefinition } from "../planning/vm-definition.js";
import { isWorkloadSnapshotPath } from "../planning/shared-volume-layout.js";
import type { LocationDir } from "../storage/location-dir.js";
import type { PositionalSource } from "../storage/positional.js";
import { isTempName, tempNameFor } from "./atomic-files.js";
import { withBackupDir, type ObjectStore } from "./backup-dir.js";
import { FsLocationDir } from "./fs-location-dir.js";
import { copyAndHash, sha256OfFile } from "./copy-and-hash.js";
import { readVerifiedDefinition } from "./definition-file.js";
import type { ManifestFile, ManifestFilesystemDisk, WorkloadManifest } from "./manifest.js";
import {
  ManifestError,
  backupBlockDiskPath,
  backupFilesystemDiskPath,
  checkRelativePath,
  manifestFileSource,
  readWorkloadManifest,
} from "./manifest.js";
import type { AllowedClaim, PlannedBlockDisk } from "./restore-claims.js";
import {
  checkAllowedClaims,
  claimOf,
  closeBlockDisks,
  openClaimMount,
  prepareBlockDisks,
  writeBlockDisks,
} from "./restore-claims.js";
import { RestoreError } from "./restore-error.js";
import type { RenamedFile } from "./restore-targets.js";
import { restoreTargets } from "./restore-targets.js";
import { SafeDir, isCode, refuseUnlessPlainFile, unsafeCause, withRoot } from "./safe-fs.js";
import type { AgentLog, VmRef } from "./types.js";
import { errorMessage, silentLog } from "./types.js";

export { RestoreError } from "./restore-error.js";
export type { RestoreErrorReason } from "./restore-error.js";
export type { AllowedClaim } from "./restore-claims.js";
export type { RenamedFile } from "./restore-targets.js";

const fchmodAsync = promisify(fchmod);
const fchownAsync = promisify(fchown);

export interface RestoreRequest {
  /** Local directory where the backup location is mounted (trusted; nothing below it is). */
  locationRoot: string;
  /** The location is this object store, not the claim mounted at locationRoot. */
  objectStore?: ObjectStore;
  /** The backup's directory, relative to locationRoot. */
  backupPath: string;
  namespace: string;
  name: string;
  /**
   * Local directory where the shared volume is mounted: the files are restored to their paths below it.
   * Opened only for a backup that lists files.
   */
  sharedRoot: string;
  /**
   * The files this VM may be restored to, relative to the shared volume root (the NodeRestore's
   * `files`). A manifest that lists any other file fails the VM with ForeignFile before anything is read
   * or written; an empty list allows nothing.
   */
  allowedFiles: readonly string[];
  /**
   * The claims this VM may be restored to (the NodeRestore's `claims`): a manifest with a claim disk that
   * is not one of them (same volume, captured claim and mode) fails the VM before anything is read or written.
   */
  allowedClaims?: readonly AllowedClaim[];
  /**
   * The captured VM whose backup is read, when it is not this VM (a copy restored under another name or
   * namespace): its manifest, files and disks, verified as for any restore, written to this VM's targets.
   */
  source?: VmRef;
  /**
   * Files of the backup written at another path than their captured one (each `to` among allowedFiles);
   * the others are written at their captured path.
   */
  renamedFiles?: readonly RenamedFile[];
  /**
   * Read the VM's captured definition, verified against the manifest, before any disk is written (a
   * corrupt one fails the VM with DefinitionCorrupt, nothing written), and return it.
   */
  reportDefinition?: boolean;
  /** Where each Filesystem-mode claim is mounted, as <claimsRoot>/<claim> (needed when the backup has one). */
  claimsRoot?: string;
  /** Where each Block-mode claim is attached, as the device <devicesRoot>/<claim> (needed when the backup has one). */
  devicesRoot?: string;
  signal?: AbortSignal;
  log?: AgentLog;
}

export interface RestoreResult {
  /** Disks written: files, claims' disk.img files and claims' devices. */
  files: number;
  /** Their sizes (a device's: the size of the device in the backup). */
  bytes: number;
  verified: true;
  /** With reportDefinition, the captured definition; absent when the backup holds none. */
  definition?: VmDefinition;
}

/** Suffix of the current file while it is being replaced. */
export const PREVIOUS_SUFFIX = ".fedbackup-prev";

/** What a restored file must be: a file of the manifest, or a Filesystem-mode claim's disk.img. */
type Expected = Pick<ManifestFile, "bytes" | "sha256" | "mode" | "uid" | "gid">;

interface Planned {
  /** The file, for messages: its path on the shared volume, or the claim whose disk.img it is. */
  what: string;
  /** The file for RestoreError.path. */
  path: string;
  expected: Expected;
  /**
   * The directory of the captured path on the shared volume (a renamed file's original one): a directory
   * missing on the way to the target is created with its mode and owner.
   */
  capturedDir?: string;
  /** The backup file: below the backup's directory, or below the shared volume root (a kept snapshot). */
  sourceDir: BackupFiles;
  sourcePath: string;
  /** The backup file, open from its verification until it is copied: the copy reads what was verified. */
  sourceHandle?: PositionalSource;
  /** The root the target is below (the shared volume, or the claim's mount), its directory and name. */
  root: SafeDir;
  dirPath: string;
  name: string;
  previous: string;
  /** The target's directory, open from the first write on: every write goes through it. */
  dir?: SafeDir;
  temp?: string;
  /** Set once target has been renamed to previous. */
  movedAside?: boolean;
  /** Set once temp has been renamed to target. */
  swapped?: boolean;
}

/** Where a backup file is read from: the backup's directory, or the shared volume (a kept snapshot). */
type BackupFiles = Pick<LocationDir, "openFile" | "relative"> & { readonly remote?: boolean };

export async function restoreWorkload(req: RestoreRequest): Promise<RestoreResult> {
  const log = req.log ?? silentLog;
  if (req.objectStore) return withBackupDir(req, req.backupPath, false, (backup) => restoreIn(backup, req, log));
  return withRoot(req.locationRoot, async (location) => {
    const dir = await openBackup(location, req);
    try {
      return await restoreIn(new FsLocationDir(dir), req, log);
    } finally {
      await dir.close();
    }
  });
}

async function restoreIn(backup: LocationDir, req: RestoreRequest, log: AgentLog) {
  // Everything opened for this VM, closed whatever happens.
  const roots: SafeDir[] = [];
  const planned: Planned[] = [];
  const devices: PlannedBlockDisk[] = [];
  const openRoot = async (open: () => Promise<SafeDir>) => {
    const root = await open();
    roots.push(root);
    return root;
  };
  try {
    const manifest = await loadManifest(backup, req);
    const targets = restoreTargets(
      manifest.files.map((file) => file.path),
      req.renamedFiles ?? [],
      req.allowedFiles,
      vmOf(req),
    );
    const claimTargets = checkAllowedClaims(manifest, req.allowedClaims ?? [], vmOf(req));
    // Before any disk is read in full or written: a definition that does not match leaves the VM untouched.
    const definition = req.reportDefinition ? await readDefinition(backup, manifest, req) : undefined;
    // Without files, nothing is read or written on the shared volume: a VM on claims only needs none.
    if (manifest.files.length > 0) {
      const shared = await openRoot(() => SafeDir.openRoot(req.sharedRoot));
      for (const [i, file] of manifest.files.entries())
        planned.push(filePlan(manifest, file, targets[i]!, backup, shared));
    }
    for (const disk of manifest.filesystemDisks ?? []) {
      const claimName = claimTargets.get(disk)!;
      const mount = await openRoot(() => openClaimMount(req.claimsRoot, disk, claimName)).catch((err: unknown) => {
        throw refusal(err, `cannot restore ${claimOf(disk, claimName)}`, claimName);
      });
      planned.push(claimDiskPlan(req, disk, claimName, backup, mount));
    }
    devices.push(...(manifest.blockDisks ?? []).map((disk) => ({ disk, claimName: claimTargets.get(disk)! })));

    // 1. Verify the whole backup first.
    for (const item of planned) {
      req.signal?.throwIfAborted();
      await verifyBackupFile(item, req.signal);
    }
    for (const item of devices) await openBlockData(backup, req, item);
    // 2. Look at every target before the first write; the devices' data is verified on the way.
    for (const item of planned) await checkTarget(item);
    await prepareBlockDisks(devices, req.devicesRoot, req.signal);
    const restored = await writeAll(planned, devices, req, log);
    return definition ? { ...restored, definition } : restored;
  } finally {
    const opened = planned.flatMap((item) => [item.sourceHandle, item.dir]);
    await Promise.allSettled(opened.flatMap((handle) => (handle ? [handle.close()] : [])));
    await closeBlockDisks(devices);
    await Promise.allSettled(roots.map((root) => root.close()));
  }
}

// A file of the backup, written at `target` (its captured path unless renamed).
function filePlan(
  manifest: WorkloadManifest,
  file: ManifestFile,
  target: string,
  backup: LocationDir,
  shared: SafeDir,
): Planned {
  const source = manifestFileSource(manifest, file.path);
  const dirPath = posix.dirname(target);
  const capturedDir = posix.dirname(file.path);
  const name = posix.basename(target);
  return {
    what: target,
    path: target,
    expected: file,
    ...(capturedDir === "." ? {} : { capturedDir }),
    sourceDir: source.root === "backup" ? backup : shared,
    sourcePath: source.path,
    root: shared,
    dirPath: dirPath === "." ? "" : dirPath,
    name,
    previous: `${name}${PREVIOUS_SUFFIX}`,
  };
}

// A Filesystem-mode claim's disk.img: at the root of the claim, as CDI lays it out and backups read it.
function claimDiskPlan(
  req: RestoreRequest,
  disk: ManifestFilesystemDisk,
  claimName: string,
  backup: LocationDir,
  mount: SafeDir,
): Planned {
  const name = "disk.img";
  const captured = capturedOf(req);
  return {
    what: `the disk.img of ${claimOf(disk, claimName)}`,
    path: `${claimName}/${name}`,
    expected: disk,
    sourceDir: backup,
    sourcePath: backupFilesystemDiskPath(captured.namespace, captured.name, disk.name),
    root: mount,
    dirPath: "",
    name,
    previous: `${name}${PREVIOUS_SUFFIX}`,
  };
}

async function openBackup(location: SafeDir, req: RestoreRequest): Promise<SafeDir> {
  try {
    return await location.openDir(checkRelativePath(req.backupPath));
  } catch (err) {
    if (isCode(err, "ENOENT")) {
      const message = `the backup directory ${req.backupPath} does not exist at the location`;
      throw new RestoreError("InvalidManifest", `cannot restore ${vmOf(req)}: ${message}`, undefined, {
        cause: new ManifestError("NotFound", message, { cause: err }),
      });
    }
    throw refusal(err, `cannot restore ${vmOf(req)} from the location`);
  }
}

// The manifest of the captured VM (this VM, or the source of a copy).
async function loadManifest(backup: LocationDir, req: RestoreRequest): Promise<WorkloadManifest> {
  const captured = capturedOf(req);
  const of = capturedKey(req);
  let manifest: WorkloadManifest;
  try {
    manifest = await readWorkloadManifest(backup, captured.namespace, captured.name);
  } catch (err) {
    if (err instanceof ManifestError) {
      throw new RestoreError("InvalidManifest", `cannot restore ${vmOf(req)}: ${err.message}`, undefined, {
        cause: err,
      });
    }
    throw refusal(err, `cannot read the manifest of ${of}`);
  }
  if (manifest.workload.namespace !== captured.namespace || manifest.workload.name !== captured.name) {
    throw new RestoreError(
      "InvalidManifest",
      `the manifest of ${of} describes ${manifest.workload.namespace}/${manifest.workload.name}`,
    );
  }
  // Files kept in a snapshot on the shared volume are read only from a snapshot of the captured VM: an
  // edited manifest must not make the restore read another VM's files.
  if (manifest.extractAt === "Restore" && !isWorkloadSnapshotPath(manifest.snapshot?.location ?? "", captured)) {
    throw new RestoreError(
      "InvalidManifest",
      `the manifest of ${of} points to ${JSON.stringify(manifest.snapshot?.location)}, which is not a kept ` +
        `snapshot of ${of}`,
    );
  }
  return manifest;
}

// The captured definition, verified against the manifest: DefinitionCorrupt when it does not match.
async function readDefinition(
  backup: LocationDir,
  manifest: WorkloadManifest,
  req: RestoreRequest,
): Promise<VmDefinition | undefined> {
  const captured = capturedOf(req);
  try {
    return await readVerifiedDefinition(backup, captured.namespace, captured.name, manifest);
  } catch (err) {
    const unsafe = unsafeCause(err);
    if (unsafe) throw refusal(err, `the definition of ${capturedKey(req)} is not safe to read`);
    throw new RestoreError(
      "DefinitionCorrupt",
      `the captured definition of ${capturedKey(req)} does not match its manifest: ${errorMessage(err)}; ` +
        `nothing was written`,
      undefined,
      { cause: err },
    );
  }
}

async function verifyBackupFile(item: Planned, signal: AbortSignal | undefined): Promise<void> {
  const { expected, what } = item;
  item.sourceHandle = await openBackupFile(item.sourceDir, item.sourcePath, what, item.path, expected.bytes);
  // An object store's file is verified once, as it is copied into the temporary file beside its target
  // (writeAll): before any target changes, without downloading it twice.
  if (item.sourceDir.remote) return;
  const { bytes, sha256 } = await sha256OfFile(item.sourceHandle, signal ? { signal } : {});
  if (bytes !== expected.bytes) {
    throw new RestoreError("SizeMismatch", `backup file for ${what} changed size while it was verified`, item.path);
  }
  if (sha256 !== expected.sha256) {
    throw new RestoreError(
      "ChecksumMismatch",
      `backup file for ${what} is corrupt: sha256 ${sha256}, the manifest lists ${expected.sha256}`,
      item.path,
    );
  }
}

// A block disk's data file, open and of the size the manifest lists: its sha256 is verified with the holes
// when its device is prepared (prepareBlockDisks), in the one read made of it before anything is written.
async function openBlockData(backup: LocationDir, req: RestoreRequest, item: PlannedBlockDisk): Promise<void> {
  const { disk } = item;
  const captured = capturedOf(req);
  const path = backupBlockDiskPath(captured.namespace, captured.name, disk.name);
  item.data = await openBackupFile(
    backup,
    path,
    `the device of ${claimOf(disk, item.claimName)}`,
    item.claimName,
    disk.storedBytes,
  );
}

// The backup file `path` below `dir`, opened through safe-fs and checked to have `bytes`: MissingFile,
// UnsafeFile or SizeMismatch (naming `what`, and `errorPath` as the error's path) otherwise.
async function openBackupFile(
  dir: BackupFiles,
  path: string,
  what: string,
  errorPath: string,
  bytes: number,
): Promise<PositionalSource> {
  let handle: PositionalSource;
  try {
    handle = await dir.openFile(path);
  } catch (err) {
    if (isCode(err, "ENOENT")) {
      throw new RestoreError("MissingFile", `backup file for ${what} is missing (${dir.relative(path)})`, errorPath, {
        cause: err,
      });
    }
    throw refusal(err, `backup file for ${what} is not safe to read`, errorPath);
  }
  const size = (await handle.stat()).size;
  if (size !== bytes) {
    await handle.close();
    throw new RestoreError(
      "SizeMismatch",
      `backup file for ${what} has ${size} bytes, the manifest lists ${bytes}: it is truncated or was modified`,
      errorPath,
    );
  }
  return handle;
}

// Read-only: every directory on the way must be a plain directory (or missing: it is created later), the
// target and a previous file absent or a regular file with one link.
async function checkTarget(item: Planned): Promise<void> {
  const target = item.dirPath === "" ? item.name : `${item.dirPath}/${item.name}`;
  for (const rel of [target, `${target}${PREVIOUS_SUFFIX}`]) {
    try {
      const info = await item.root.entryStat(rel);
      if (info) refuseUnlessPlainFile(info, item.root.relative(rel));
    } catch (err) {
      throw refusal(err, cannotRestore(item), item.path);
    }
  }
}

async function writeAll(planned: Planned[], devices: PlannedBlockDisk[], req: RestoreRequest, log: AgentLog) {
  const copyOpts = req.signal ? { signal: req.signal } : {};
  // The first writes: missing directories, created component by component without following anything.
  for (const item of planned) {
    try {
      item.dir = await openTargetDir(item);
    } catch (err) {
      throw refusal(err, cannotRestore(item), item.path);
    }
  }

  // Leftovers of a restore killed midway, before they could be confused with this one's.
  for (const item of planned) {
    try {
      await recoverInterrupted(item, log);
    } catch (err) {
      throw refusal(err, cannotRestore(item), item.path);
    }
  }

  // 3. Copy into temporary files beside the targets; 4. then write the devices.
  try {
    for (const item of planned) {
      req.signal?.throwIfAborted();
      const dir = item.dir!;
      item.temp = tempNameFor(item.name);
      // Readable by root only until it has the target's mode and owner.
      const temp = await dir.createFile(item.temp, 0o600);
      try {
        const copied = await copyAndHash(item.sourceHandle!, temp, copyOpts);
        const { expected } = item;
        if (copied.bytes !== expected.bytes || copied.sha256 !== expected.sha256) {
          throw new RestoreError(
            "ChecksumMismatch",
            `backup file for ${item.what} changed while it was restored: sha256 ${copied.sha256} (${copied.bytes} bytes), ` +
              `the manifest lists ${expected.sha256} (${expected.bytes} bytes)`,
            item.path,
          );
        }
        await matchOwnership(item, temp);
        await temp.sync();
      } finally {
        await temp.close();
      }
    }
    req.signal?.throwIfAborted();
    await writeBlockDisks(devices, vmOf(req), log);
  } catch (err) {
    for (const item of planned) if (item.temp) await item.dir!.unlink(item.temp).catch(() => false);
    throw refusal(err, `cannot restore ${vmOf(req)}`);
  }

  // 5. Swap every file; on failure put the previous ones back.
  try {
    for (const item of planned) {
      const dir = item.dir!;
      try {
        await dir.rename(item.name, item.previous);
        item.movedAside = true;
      } catch (err) {
        if (!isCode(err, "ENOENT")) throw err;
      }
      await dir.rename(item.temp!, item.name);
      item.swapped = true;
    }
    for (const item of planned) await item.dir!.sync();
  } catch (err) {
    log.error("restore failed while swapping files; putting the previous files back", { error: errorMessage(err) });
    await rollBack(planned);
    for (const item of planned) await item.dir!.sync().catch(() => {});
    throw err;
  }

  // 6. Every file is in place: the previous versions can go.
  for (const item of planned) if (item.movedAside) await item.dir!.unlink(item.previous);
  for (const item of planned) await item.dir!.sync();
  const files = planned.length + devices.length;
  const bytes =
    planned.reduce((sum, item) => sum + item.expected.bytes, 0) + devices.reduce((sum, d) => sum + d.disk.bytes, 0);
  log.info("VM disks restored", { vm: vmOf(req), files, bytes });
  return { files, bytes, verified: true as const };
}

// The target's directory. Its missing directories (a copy's, or a disk's whose directory was removed) are
// created one by one below the root without following anything, each with the mode and owner of the
// directory of the captured path when that is a plain directory of the shared volume (the original beside
// which a copy is written), so that the VM reaches its disk as it did; else with the default mode.
async function openTargetDir(item: Planned): Promise<SafeDir> {
  const names = item.dirPath === "" ? [] : item.dirPath.split("/");
  let template: BigIntStats | undefined;
  let lookedUp = false;
  for (let depth = 1; depth <= names.length; depth++) {
    const rel = names.slice(0, depth).join("/");
    if (await item.root.entryStat(rel)) continue;
    if (!lookedUp) {
      template = await capturedDirStat(item);
      lookedUp = true;
    }
    const created = await item.root.openDir(rel, { create: true, mode: template ? 0o700 : 0o777 });
    try {
      if (template) await matchDirOwnership(created, template);
    } finally {
      await created.close();
    }
  }
  return item.root.openDir(item.dirPath);
}

// The directory of the captured path, if it is a plain directory reached through plain directories.
async function capturedDirStat(item: Planned): Promise<BigIntStats | undefined> {
  if (item.capturedDir === undefined) return undefined;
  const info = await item.root.entryStat(item.capturedDir).catch(() => undefined);
  return info?.isDirectory() ? info : undefined;
}

// As matchOwnership, for a directory the restore created: owner (as root), then the permission bits only.
async function matchDirOwnership(dir: SafeDir, template: BigIntStats): Promise<void> {
  if (process.getuid?.() === 0) await fchownAsync(dir.fd, Number(template.uid), Number(template.gid));
  await fchmodAsync(dir.fd, Number(template.mode) & 0o777);
}

const cannotRestore = (item: Planned): string =>
  item.what === item.path ? `cannot restore ${item.what} on the shared volume` : `cannot restore ${item.what}`;

// A restore killed midway leaves temporary copies (possibly disk-sized: removed) and, during the swap,
// <target>.fedbackup-prev. Without a target, that is the VM's disk (moved aside, not yet replaced): put it
// back. With a target, the swap had completed: drop it. Both were checked to be plain files (checkTarget).
async function recoverInterrupted(item: Planned, log: AgentLog): Promise<void> {
  const dir = item.dir!;
  const tempPrefix = `.${item.name}.`;
  for (const name of await dir.list()) {
    if (name.startsWith(tempPrefix) && isTempName(name)) {
      log.warn("removing a temporary file of an interrupted restore", { path: dir.relative(name) });
      // unlink removes a name, never what a symlink points to; a directory of that name stays.
      await dir.unlink(name).catch((err: unknown) => {
        log.warn("could not remove it", { path: dir.relative(name), error: errorMessage(err) });
      });
    }
  }
  const previous = await dir.entryStat(item.previous);
  if (!previous) return;
  refuseUnlessPlainFile(previous, dir.relative(item.previous));
  if (await dir.entryStat(item.name)) {
    log.warn("removing the previous file of an earlier, completed restore", { path: dir.relative(item.previous) });
    await dir.unlink(item.previous);
  } else {
    log.warn("putting back a disk file an interrupted restore had moved aside", { path: dir.relative(item.name) });
    await dir.rename(item.previous, item.name);
  }
  await dir.sync();
}

// The restored file must be usable by the VM exactly like the one it replaces (KubeVirt's qemu runs as an
// unprivileged user): copy the current file's mode and owner, or the ones recorded at backup time. Only
// the permission bits: setuid, setgid and sticky are never set (a manifest may have been edited to ask).
async function matchOwnership(item: Planned, temp: FileHandle): Promise<void> {
  let { mode, uid, gid } = item.expected;
  const current = await item.dir!.entryStat(item.name);
  if (current) {
    refuseUnlessPlainFile(current, item.path);
    mode = Number(current.mode);
    uid = Number(current.uid);
    gid = Number(current.gid);
  }
  if (uid !== undefined && gid !== undefined && process.getuid?.() === 0) await temp.chown(uid, gid);
  if (mode !== undefined) await temp.chmod(mode & 0o777);
}

async function rollBack(planned: Planned[]): Promise<void> {
  for (const item of [...planned].reverse()) {
    const dir = item.dir!;
    try {
      if (item.movedAside) await dir.rename(item.previous, item.name);
      else if (item.swapped) await dir.unlink(item.name);
    } catch {
      // Keep going: every other file still deserves its rollback. The .fedbackup-prev file stays and the
      // next restore attempt puts it back (recoverInterrupted).
    }
    if (item.temp && !item.swapped) await dir.unlink(item.temp).catch(() => false);
  }
}

// A path safe-fs refused becomes UnsafeFile (naming the path); any other error is returned as it is.
function refusal(err: unknown, context: string, path?: string): unknown {
  if (err instanceof RestoreError) return err;
  const unsafe = unsafeCause(err);
  if (!unsafe) return err;
  return new RestoreError("UnsafeFile", `${context}: ${unsafe.message}`, path ?? unsafe.path, { cause: err });
}

const vmOf = (req: RestoreRequest): string => `${req.namespace}/${req.name}`;
/** The VM whose backup is read. */
const capturedOf = (req: RestoreRequest): VmRef => req.source ?? { namespace: req.namespace, name: req.name };
/** The captured VM, for messages: `prod/a`, or `prod/a (restored as prod/a-copy)` for a copy. */
function capturedKey(req: RestoreRequest): string {
  const captured = capturedOf(req);
  const key = `${captured.namespace}/${captured.name}`;
  return key === vmOf(req) ? key : `${key} (restored as ${vmOf(req)})`;
}
