// Puts one VM's disk files back from a backup, all or nothing.
//
// Order matters more than speed here, because the target is the VM's only current disk:
// 0. refuse a manifest that lists a file the VM may not be restored to (ForeignFile): the operator names
//    the files a VM may be written to (the disks its VirtualMachine uses now and no other VM uses), and a
//    manifest at the location is not trusted to say so;
// 1. verify every backup file (size and sha256) before touching anything: a corrupt, truncated or
//    missing backup aborts with the disks as they were;
// 2. check every target before writing anything: each directory on the way a plain directory, the file
//    (and a `.fedbackup-prev` left by an interrupted restore) absent or a regular file with one link;
// 3. copy each file into a temporary file beside its target, hashing again on the way (from the very
//    descriptor that was verified) and giving it the current file's mode and owner;
// 4. swap: current file -> <target>.fedbackup-prev, temporary file -> target, for every file; if a swap
//    fails, the previous files are put back;
// 5. only when every file is swapped, delete the previous files.
// A restore killed during step 4 leaves .fedbackup-prev files; the next restore of the VM puts them back
// (target missing) or drops them (target present, i.e. the swap had finished) before it starts.
//
// The location and the shared volume are writable by tenants, so everything is reached through safe-fs.ts
// below their mount points: a backup file, manifest or directory replaced by a symlink, a FIFO, a device
// or a hard link fails the VM (UnsafeFile) before anything is written, and every write acts on a directory
// descriptor opened without following any symlink, so it lands in that directory and nowhere else.
import type { FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { isWorkloadSnapshotPath } from "../planning/shared-volume-layout.js";
import { isTempName, tempNameFor } from "./atomic-files.js";
import { copyAndHash, sha256OfFile } from "./copy-and-hash.js";
import type { FileSource, ManifestFile, WorkloadManifest } from "./manifest.js";
import { ManifestError, checkRelativePath, manifestFileSource, readWorkloadManifest } from "./manifest.js";
import type { SafeDir } from "./safe-fs.js";
import { isCode, refuseUnlessPlainFile, unsafeCause, withRoot } from "./safe-fs.js";
import type { AgentLog } from "./types.js";
import { errorMessage, silentLog } from "./types.js";

export type RestoreErrorReason =
  | "ChecksumMismatch"
  | "MissingFile"
  | "SizeMismatch"
  | "InvalidManifest"
  /** The manifest lists a file that is not among the files the VM may be restored to. */
  | "ForeignFile"
  /** A backup file or a target is not a plain file below plain directories (see safe-fs.ts). */
  | "UnsafeFile"
  /** The backup holds disks on claims, which restores do not write yet: nothing was written. */
  | "ClaimDisksNotRestored";

/** A restore refused because the backup cannot be trusted; the VM's disks were not touched. */
export class RestoreError extends Error {
  override readonly name = "RestoreError";
  constructor(
    readonly reason: RestoreErrorReason,
    message: string,
    /** The file concerned, relative to the shared volume root. */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RestoreRequest {
  /** Local directory where the backup location is mounted (trusted; nothing below it is). */
  locationRoot: string;
  /** The backup's directory, relative to locationRoot. */
  backupPath: string;
  namespace: string;
  name: string;
  /** Local directory where the shared volume is mounted: the files are restored to their paths below it. */
  sharedRoot: string;
  /**
   * The files this VM may be restored to, relative to the shared volume root (the NodeRestore's
   * `files`). A manifest that lists any other file fails the VM with ForeignFile before anything is read
   * or written; an empty list allows nothing.
   */
  allowedFiles: readonly string[];
  signal?: AbortSignal;
  log?: AgentLog;
}

export interface RestoreResult {
  files: number;
  bytes: number;
  verified: true;
}

/** Suffix of the current file while it is being replaced. */
export const PREVIOUS_SUFFIX = ".fedbackup-prev";

interface Planned {
  file: ManifestFile;
  source: FileSource;
  /** The backup file, open from its verification until it is copied: the copy reads what was verified. */
  sourceHandle?: FileHandle;
  /** The target's directory (relative to the shared volume root, "" for the root) and name in it. */
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

export async function restoreWorkload(req: RestoreRequest): Promise<RestoreResult> {
  return withRoot(req.locationRoot, (location) =>
    withRoot(req.sharedRoot, (shared) => restoreIn(location, shared, req, req.log ?? silentLog)),
  );
}

async function restoreIn(location: SafeDir, shared: SafeDir, req: RestoreRequest, log: AgentLog) {
  const backup = await openBackup(location, req);
  const planned: Planned[] = [];
  try {
    const manifest = await loadManifest(backup, req);
    checkAllowed(manifest, req);
    for (const file of manifest.files) {
      const dirPath = posix.dirname(file.path);
      const name = posix.basename(file.path);
      planned.push({
        file,
        source: manifestFileSource(manifest, file.path),
        dirPath: dirPath === "." ? "" : dirPath,
        name,
        previous: `${name}${PREVIOUS_SUFFIX}`,
      });
    }

    // 1. Verify the whole backup first.
    for (const item of planned) {
      req.signal?.throwIfAborted();
      await verifyBackupFile(item, item.source.root === "backup" ? backup : shared, req.signal);
    }
    // 2. Look at every target before the first write.
    for (const item of planned) await checkTarget(shared, item);
    return await writeAll(shared, planned, req, log);
  } finally {
    const opened = planned.flatMap((item) => [item.sourceHandle, item.dir]);
    await Promise.allSettled(opened.flatMap((handle) => (handle ? [handle.close()] : [])));
    await backup.close();
  }
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

async function loadManifest(backup: SafeDir, req: RestoreRequest): Promise<WorkloadManifest> {
  let manifest: WorkloadManifest;
  try {
    manifest = await readWorkloadManifest(backup, req.namespace, req.name);
  } catch (err) {
    if (err instanceof ManifestError) {
      throw new RestoreError("InvalidManifest", `cannot restore ${vmOf(req)}: ${err.message}`, undefined, {
        cause: err,
      });
    }
    throw refusal(err, `cannot read the manifest of ${vmOf(req)}`);
  }
  if (manifest.workload.namespace !== req.namespace || manifest.workload.name !== req.name) {
    throw new RestoreError(
      "InvalidManifest",
      `the manifest of ${vmOf(req)} describes ${manifest.workload.namespace}/${manifest.workload.name}`,
    );
  }
  // Files kept in a snapshot on the shared volume are read only from a snapshot of this very VM: an edited
  // manifest must not make the restore read another VM's files.
  if (manifest.extractAt === "Restore" && !isWorkloadSnapshotPath(manifest.snapshot?.location ?? "", req)) {
    throw new RestoreError(
      "InvalidManifest",
      `the manifest of ${vmOf(req)} points to ${JSON.stringify(manifest.snapshot?.location)}, which is not a kept ` +
        `snapshot of ${vmOf(req)}`,
    );
  }
  // Restoring only the VM's files would leave its claim disks as they are and still report it restored.
  const onClaims = [...(manifest.blockDisks ?? []), ...(manifest.filesystemDisks ?? [])];
  if (onClaims.length > 0) {
    throw new RestoreError(
      "ClaimDisksNotRestored",
      `the backup of ${vmOf(req)} holds disks on claims (${onClaims.map((d) => d.source.claimName).join(", ")}), ` +
        `which restores do not write yet; nothing was written`,
    );
  }
  return manifest;
}

function checkAllowed(manifest: WorkloadManifest, req: RestoreRequest): void {
  const allowed = new Set(req.allowedFiles);
  const foreign = manifest.files.find((file) => !allowed.has(file.path));
  if (foreign) {
    throw new RestoreError(
      "ForeignFile",
      `the backup of ${vmOf(req)} lists ${foreign.path}, which is not a file ${vmOf(req)} may be restored to ` +
        `(a disk its VirtualMachine uses now and no other VM uses); nothing was written`,
      foreign.path,
    );
  }
}

async function verifyBackupFile(item: Planned, root: SafeDir, signal: AbortSignal | undefined): Promise<void> {
  const { file } = item;
  try {
    item.sourceHandle = await root.openFile(item.source.path);
  } catch (err) {
    if (isCode(err, "ENOENT")) {
      throw new RestoreError(
        "MissingFile",
        `backup file for ${file.path} is missing (${root.relative(item.source.path)})`,
        file.path,
        { cause: err },
      );
    }
    throw refusal(err, `backup file for ${file.path} is not safe to read`, file.path);
  }
  const size = (await item.sourceHandle.stat()).size;
  if (size !== file.bytes) {
    throw new RestoreError(
      "SizeMismatch",
      `backup file for ${file.path} has ${size} bytes, the manifest lists ${file.bytes}: it is truncated or was modified`,
      file.path,
    );
  }
  const { bytes, sha256 } = await sha256OfFile(item.sourceHandle, signal ? { signal } : {});
  if (bytes !== file.bytes) {
    throw new RestoreError(
      "SizeMismatch",
      `backup file for ${file.path} changed size while it was verified`,
      file.path,
    );
  }
  if (sha256 !== file.sha256) {
    throw new RestoreError(
      "ChecksumMismatch",
      `backup file for ${file.path} is corrupt: sha256 ${sha256}, the manifest lists ${file.sha256}`,
      file.path,
    );
  }
}

// Read-only: every directory on the way must be a plain directory (or missing: it is created later), the
// target and a previous file absent or a regular file with one link.
async function checkTarget(shared: SafeDir, item: Planned): Promise<void> {
  for (const rel of [item.file.path, `${item.file.path}${PREVIOUS_SUFFIX}`]) {
    try {
      const info = await shared.entryStat(rel);
      if (info) refuseUnlessPlainFile(info, rel);
    } catch (err) {
      throw refusal(err, `cannot restore ${item.file.path} on the shared volume`, item.file.path);
    }
  }
}

async function writeAll(shared: SafeDir, planned: Planned[], req: RestoreRequest, log: AgentLog) {
  const copyOpts = req.signal ? { signal: req.signal } : {};
  // The first writes: missing directories, created component by component without following anything.
  for (const item of planned) {
    try {
      item.dir = await shared.openDir(item.dirPath, { create: true });
    } catch (err) {
      throw refusal(err, `cannot restore ${item.file.path} on the shared volume`, item.file.path);
    }
  }

  // Leftovers of a restore killed midway, before they could be confused with this one's.
  for (const item of planned) {
    try {
      await recoverInterrupted(item, log);
    } catch (err) {
      throw refusal(err, `cannot restore ${item.file.path} on the shared volume`, item.file.path);
    }
  }

  // 3. Copy into temporary files beside the targets.
  try {
    for (const item of planned) {
      req.signal?.throwIfAborted();
      const dir = item.dir!;
      item.temp = tempNameFor(item.name);
      // Readable by root only until it has the target's mode and owner.
      const temp = await dir.createFile(item.temp, 0o600);
      try {
        const copied = await copyAndHash(item.sourceHandle!, temp, copyOpts);
        if (copied.bytes !== item.file.bytes || copied.sha256 !== item.file.sha256) {
          throw new RestoreError(
            "ChecksumMismatch",
            `backup file ${item.file.path} changed while it was restored: sha256 ${copied.sha256} (${copied.bytes} bytes), ` +
              `the manifest lists ${item.file.sha256} (${item.file.bytes} bytes)`,
            item.file.path,
          );
        }
        await matchOwnership(item, temp);
        await temp.sync();
      } finally {
        await temp.close();
      }
    }
  } catch (err) {
    for (const item of planned) if (item.temp) await item.dir!.unlink(item.temp).catch(() => false);
    throw refusal(err, `cannot restore ${vmOf(req)}`);
  }

  // 4. Swap every file; on failure put the previous ones back.
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

  // 5. Every file is in place: the previous versions can go.
  for (const item of planned) if (item.movedAside) await item.dir!.unlink(item.previous);
  for (const item of planned) await item.dir!.sync();
  const bytes = planned.reduce((sum, item) => sum + item.file.bytes, 0);
  log.info("VM disks restored", { vm: vmOf(req), files: planned.length, bytes });
  return { files: planned.length, bytes, verified: true as const };
}

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
  let mode = item.file.mode;
  let uid = item.file.uid;
  let gid = item.file.gid;
  const current = await item.dir!.entryStat(item.name);
  if (current) {
    refuseUnlessPlainFile(current, item.file.path);
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
