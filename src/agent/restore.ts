// Puts one VM's disk files back from a backup, all or nothing.
//
// Order matters more than speed here, because the target is the VM's only current disk:
// 1. verify every backup file (size and sha256) before touching anything: a corrupt, truncated or
//    missing backup aborts with the disks as they were;
// 2. copy each file into a temporary file beside its target, hashing again on the way (the backup could
//    change between verification and copy) and giving it the current file's mode and owner;
// 3. swap: current file -> <target>.fedbackup-prev, temporary file -> target, for every file; if a swap
//    fails, the previous files are put back;
// 4. only when every file is swapped, delete the previous files.
// A restore killed during step 3 leaves .fedbackup-prev files; the next restore of the VM puts them back
// (target missing) or drops them (target present, i.e. the swap had finished) before it starts.
import { chmod, chown, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir, fsyncFile, isErrno, isTempName, mkdirDurable, tempPathFor } from "./atomic-files.js";
import { copyAndHash, sha256OfFile } from "./copy-and-hash.js";
import type { ManifestFile, WorkloadManifest } from "./manifest.js";
import { ManifestError, manifestFileLocation, readWorkloadManifest } from "./manifest.js";
import type { AgentLog } from "./types.js";
import { errorMessage, silentLog } from "./types.js";

export type RestoreErrorReason = "ChecksumMismatch" | "MissingFile" | "SizeMismatch" | "InvalidManifest";

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
  /** Local directory of the backup at the location. */
  backupRoot: string;
  namespace: string;
  name: string;
  /** Local directory where the shared volume is mounted: the files are restored to their paths below it. */
  sharedRoot: string;
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
  source: string;
  target: string;
  previous: string;
  temp?: string;
  /** Set once target has been renamed to previous. */
  movedAside?: boolean;
  /** Set once temp has been renamed to target. */
  swapped?: boolean;
}

export async function restoreWorkload(req: RestoreRequest): Promise<RestoreResult> {
  const log = req.log ?? silentLog;
  const copyOpts = req.signal ? { signal: req.signal } : {};
  const manifest = await loadManifest(req);
  const planned: Planned[] = manifest.files.map((file) => {
    const target = join(req.sharedRoot, file.path);
    return {
      file,
      source: manifestFileLocation(req.backupRoot, manifest, file.path, req.sharedRoot),
      target,
      previous: `${target}${PREVIOUS_SUFFIX}`,
    };
  });

  // 1. Verify the whole backup first.
  for (const item of planned) {
    req.signal?.throwIfAborted();
    await verifyBackupFile(item, req.signal);
  }

  // Leftovers of a restore killed midway, before they could be confused with this one's.
  for (const item of planned) await recoverInterrupted(item, log);

  // 2. Copy into temporary files beside the targets.
  try {
    for (const item of planned) {
      req.signal?.throwIfAborted();
      await mkdirDurable(dirname(item.target));
      const temp = tempPathFor(item.target);
      item.temp = temp;
      const copied = await copyAndHash(item.source, temp, copyOpts);
      if (copied.bytes !== item.file.bytes || copied.sha256 !== item.file.sha256) {
        throw new RestoreError(
          "ChecksumMismatch",
          `backup file ${item.file.path} changed while it was restored: sha256 ${copied.sha256} (${copied.bytes} bytes), ` +
            `the manifest lists ${item.file.sha256} (${item.file.bytes} bytes)`,
          item.file.path,
        );
      }
      await matchOwnership(item, temp);
      await fsyncFile(temp);
    }
  } catch (err) {
    await Promise.all(planned.map((item) => (item.temp ? rm(item.temp, { force: true }) : Promise.resolve())));
    throw err;
  }

  // 3. Swap every file; on failure put the previous ones back.
  const dirs = [...new Set(planned.map((item) => dirname(item.target)))];
  try {
    for (const item of planned) {
      try {
        await rename(item.target, item.previous);
        item.movedAside = true;
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err;
      }
      await rename(item.temp as string, item.target);
      item.swapped = true;
    }
    for (const dir of dirs) await fsyncDir(dir);
  } catch (err) {
    log.error("restore failed while swapping files; putting the previous files back", { error: errorMessage(err) });
    await rollBack(planned);
    for (const dir of dirs) await fsyncDir(dir).catch(() => {});
    throw err;
  }

  // 4. Every file is in place: the previous versions can go.
  for (const item of planned) if (item.movedAside) await rm(item.previous, { force: true });
  for (const dir of dirs) await fsyncDir(dir);
  const bytes = planned.reduce((sum, item) => sum + item.file.bytes, 0);
  log.info("VM disks restored", { vm: `${req.namespace}/${req.name}`, files: planned.length, bytes });
  return { files: planned.length, bytes, verified: true };
}

async function loadManifest(req: RestoreRequest): Promise<WorkloadManifest> {
  let manifest: WorkloadManifest;
  try {
    manifest = await readWorkloadManifest(req.backupRoot, req.namespace, req.name);
  } catch (err) {
    if (err instanceof ManifestError) {
      throw new RestoreError(
        "InvalidManifest",
        `cannot restore ${req.namespace}/${req.name}: ${err.message}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  if (manifest.workload.namespace !== req.namespace || manifest.workload.name !== req.name) {
    throw new RestoreError(
      "InvalidManifest",
      `the manifest of ${req.namespace}/${req.name} describes ${manifest.workload.namespace}/${manifest.workload.name}`,
    );
  }
  return manifest;
}

async function verifyBackupFile(item: Planned, signal: AbortSignal | undefined): Promise<void> {
  const { file } = item;
  let size: number;
  try {
    const info = await stat(item.source);
    if (!info.isFile())
      throw new RestoreError("MissingFile", `backup file for ${file.path} is not a regular file`, file.path);
    size = info.size;
  } catch (err) {
    if (isErrno(err, "ENOENT")) {
      throw new RestoreError("MissingFile", `backup file for ${file.path} is missing (${item.source})`, file.path, {
        cause: err,
      });
    }
    throw err;
  }
  if (size !== file.bytes) {
    throw new RestoreError(
      "SizeMismatch",
      `backup file for ${file.path} has ${size} bytes, the manifest lists ${file.bytes}: it is truncated or was modified`,
      file.path,
    );
  }
  const { bytes, sha256 } = await sha256OfFile(item.source, signal ? { signal } : {});
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

// A restore killed midway leaves temporary copies (possibly disk-sized: removed) and, during the swap,
// <target>.fedbackup-prev. Without a target, that is the VM's disk (moved aside, not yet replaced): put it
// back. With a target, the swap had completed: drop it.
async function recoverInterrupted(item: Planned, log: AgentLog): Promise<void> {
  const dir = dirname(item.target);
  const tempPrefix = `.${basename(item.target)}.`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const name of entries) {
    if (name.startsWith(tempPrefix) && isTempName(name)) {
      log.warn("removing a temporary file of an interrupted restore", { path: join(dir, name) });
      await rm(join(dir, name), { force: true });
    }
  }
  try {
    await stat(item.previous);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return;
    throw err;
  }
  try {
    await stat(item.target);
    log.warn("removing the previous file of an earlier, completed restore", { path: item.previous });
    await rm(item.previous, { force: true });
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
    log.warn("putting back a disk file an interrupted restore had moved aside", { path: item.target });
    await rename(item.previous, item.target);
  }
  await fsyncDir(dirname(item.target));
}

// The restored file must be usable by the VM exactly like the one it replaces (KubeVirt's qemu runs as an
// unprivileged user): copy the current file's mode and owner, or the ones recorded at backup time.
async function matchOwnership(item: Planned, temp: string): Promise<void> {
  let mode = item.file.mode;
  let uid = item.file.uid;
  let gid = item.file.gid;
  try {
    const current = await stat(item.target);
    mode = current.mode & 0o7777;
    uid = current.uid;
    gid = current.gid;
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
  }
  if (uid !== undefined && gid !== undefined && process.getuid?.() === 0) await chown(temp, uid, gid);
  if (mode !== undefined) await chmod(temp, mode);
}

async function rollBack(planned: Planned[]): Promise<void> {
  for (const item of [...planned].reverse()) {
    try {
      if (item.movedAside) await rename(item.previous, item.target);
      else if (item.swapped) await rm(item.target, { force: true });
    } catch {
      // Keep going: every other file still deserves its rollback. The .fedbackup-prev file stays and the
      // next restore attempt puts it back (recoverInterrupted).
    }
    if (item.temp && !item.swapped) await rm(item.temp, { force: true }).catch(() => {});
  }
}
