// Point-in-time captures of a VM's disk files on the shared filesystem, taken while the guest is frozen.
//
// The freeze window should be as short as possible, so a capture does only what must happen while the
// guest is frozen; hashing and writing to the backup location (which may be slow and remote) come later,
// from the snapshot, with the guest running again.
//
// Reflink: a copy-on-write clone of each file (FICLONE, XFS/Btrfs/...). Metadata only: milliseconds even
//   for huge images, and each clone is one instant in time, so the capture is at least crash-consistent.
// Copy: a plain byte copy. Takes as long as the data, so the freeze does too (withFrozen bounds it with
//   maxFreeze); a copy made while the guest runs is not a point in time.
// CSI: a VolumeSnapshot, written elsewhere (it needs the Kubernetes API) against the same interface.
//
// File-based snapshots live on the shared volume itself (a reflink cannot cross filesystems), where
// src/planning/shared-volume-layout.ts puts them:
//   <sharedRoot>/.fedbackup/snapshots/<backupNamespace>/<backupName>-<backupUid>/<node>-r<round>/<namespace>/<vm>/<path>
// The per-VM directory keeps two VMs that list the same file (a shared ISO, a shareable disk) apart, and
// lets one VM's leftovers be removed without touching the others.
//
// Tenants can write the shared volume, so the VM's files are opened through safe-fs.ts (no symlink
// followed, regular files with one link only) and the copy is made from that open descriptor; the snapshot
// directories are created the same way, readable by root only, and removed without following anything.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { copyFile } from "node:fs/promises";
import { posix } from "node:path";
import type { BackupKey } from "../planning/shared-volume-layout.js";
import { backupSnapshotsPath, snapshotRunPath, workloadSnapshotPath } from "../planning/shared-volume-layout.js";
import { copySparse } from "./copy-and-hash.js";
import type { CaptureMethod } from "./manifest.js";
import { checkRelativePath } from "./manifest.js";
import type { SafeDir } from "./safe-fs.js";
import { descriptorPath, isCode, unsafeCause, withDir, withFile, withRoot } from "./safe-fs.js";
import type { AgentLog, VmRef } from "./types.js";
import { errorMessage } from "./types.js";

/** Snapshots hold copies of tenants' disks: only root may enter their directories or read the copies. */
const SNAPSHOT_DIR_MODE = 0o700;
const SNAPSHOT_FILE_MODE = 0o600;

export interface SnapshotTarget extends VmRef {
  /** Relative to the shared volume root. */
  files: readonly string[];
}

export interface SnapshotContext {
  /** The FederatedBackup: its namespace, name and uid key its snapshot directory. */
  backup: BackupKey;
  node: string;
  round: number;
  /** Local directory where the shared volume is mounted. */
  sharedRoot: string;
  /** Aborted when the agent is told to stop. */
  signal?: AbortSignal;
  log?: AgentLog;
}

export interface SnapshotFile {
  path: string;
  bytes: number;
  /** Known when the provider hashed the data while capturing it (none of the built-in ones does). */
  sha256?: string;
  /** Of the source file, for restores into a directory where the file no longer exists. */
  mode: number;
  uid: number;
  gid: number;
}

export interface WorkloadSnapshot {
  method: CaptureMethod;
  vm: VmRef;
  /**
   * Where the snapshot is, as recorded in the manifest when extraction is deferred to the restore:
   * for file-based providers a directory relative to the shared volume root.
   */
  location: string;
  /** The local mount point the snapshot's files are read below (opened as a trusted root). */
  root: string;
  /** The snapshot's directory relative to `root` ("" for root itself): each file is at `<dir>/<path>`. */
  dir: string;
  files: SnapshotFile[];
}

export type CaptureOutcome =
  { vm: VmRef; ok: true; snapshot: WorkloadSnapshot } | { vm: VmRef; ok: false; error: Error };

export interface SnapshotProvider {
  readonly method: CaptureMethod;
  /**
   * Node: all VMs of the node are captured inside one freeze window (captures are cheap and point-in-time,
   * and a CSI snapshot covers the whole volume anyway). Workload: one window per VM, so that a long copy of
   * one VM does not keep the others frozen.
   */
  readonly freezeScope: "Node" | "Workload";
  /** Whether each file is captured at one instant even when the guest is not frozen. */
  readonly pointInTime: boolean;
  /** Removes whatever an earlier, interrupted attempt left for this VM. Idempotent; called before the freeze. */
  discard(vm: VmRef, ctx: SnapshotContext): Promise<void>;
  /** Captures the targets' files; called inside the freeze window. One outcome per target, never throws for one VM. */
  capture(targets: readonly SnapshotTarget[], ctx: SnapshotContext): Promise<CaptureOutcome[]>;
  /** Deletes a snapshot once its files are extracted. */
  release(snapshot: WorkloadSnapshot, ctx: SnapshotContext): Promise<void>;
}

/** Directory of this node run's snapshots, relative to the shared volume root. */
export function snapshotRunLocation(ctx: SnapshotContext): string {
  return snapshotRunPath(ctx.backup, ctx.node, ctx.round);
}

/** Directory of one VM's snapshot, relative to the shared volume root. */
export function snapshotLocation(ctx: SnapshotContext, vm: VmRef): string {
  return workloadSnapshotPath(ctx.backup, ctx.node, ctx.round, vm);
}

export interface ReflinkProbe {
  supported: boolean;
  /** Why not, when not supported (the errno and message of the failed clone). */
  detail?: string;
}

/**
 * Whether copy-on-write clones work in `dir` (relative to `root`, created if missing): clones a small
 * temporary file and removes both copies. Never throws for an unsupported filesystem; it does throw if
 * `dir` cannot be created or written, or is not a plain directory (see safe-fs.ts).
 */
export async function probeReflink(root: string, dir: string): Promise<ReflinkProbe> {
  return withRoot(root, (shared) =>
    withDir(shared, dir, { create: true, mode: SNAPSHOT_DIR_MODE }, async (probeDir) => {
      const source = `.fedbackup-reflink-probe-${randomBytes(6).toString("hex")}`;
      const clone = `${source}.clone`;
      try {
        const handle = await probeDir.createFile(source);
        try {
          // Some filesystems only share whole blocks: one block of real data is a fair test.
          await handle.writeFile(randomBytes(4096));
          await cloneInto(handle, probeDir, clone);
        } finally {
          await handle.close();
        }
        return { supported: true };
      } catch (err) {
        if (isCode(err, "EACCES") || isCode(err, "EROFS") || isCode(err, "ENOSPC")) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        return { supported: false, detail: `${code ?? "error"}: ${errorMessage(err)}` };
      } finally {
        await Promise.all([probeDir.unlink(source).catch(() => false), probeDir.unlink(clone).catch(() => false)]);
      }
    }),
  );
}

/**
 * A copy-on-write clone of the open file `source` as the new file `name` of `dir`. Both are named through
 * /proc/self/fd, so the clone is of exactly the file that was opened and lands exactly in `dir`; EXCL
 * creates the clone with O_CREAT|O_EXCL, so nothing already there (a planted symlink) is followed.
 */
export async function cloneInto(source: FileHandle, dir: SafeDir, name: string): Promise<void> {
  await copyFile(
    descriptorPath(source.fd),
    dir.entryPath(name),
    constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL,
  );
}

/** Copy-on-write clones; needs reflink support on the shared filesystem. */
export class ReflinkSnapshotProvider implements SnapshotProvider {
  readonly method = "Reflink";
  readonly freezeScope = "Node";
  readonly pointInTime = true;

  discard(vm: VmRef, ctx: SnapshotContext): Promise<void> {
    return discardVmSnapshot(vm, ctx);
  }

  capture(targets: readonly SnapshotTarget[], ctx: SnapshotContext): Promise<CaptureOutcome[]> {
    // Clones are metadata operations: run the VMs concurrently so the shared window ends sooner.
    return Promise.all(targets.map((target) => captureFiles("Reflink", target, ctx, cloneInto)));
  }

  release(snapshot: WorkloadSnapshot, ctx: SnapshotContext): Promise<void> {
    return discardVmSnapshot(snapshot.vm, ctx);
  }
}

/**
 * Full copies into the snapshot directory. Not hashed: the copy runs inside the freeze window and the
 * hash is its slowest stage; the extraction hashes the copy anyway. Sparse regions stay holes.
 */
export class CopySnapshotProvider implements SnapshotProvider {
  readonly method = "Copy";
  readonly freezeScope = "Workload";
  readonly pointInTime = false;

  discard(vm: VmRef, ctx: SnapshotContext): Promise<void> {
    return discardVmSnapshot(vm, ctx);
  }

  async capture(targets: readonly SnapshotTarget[], ctx: SnapshotContext): Promise<CaptureOutcome[]> {
    // One after the other: concurrent copies compete for the same disk and CPU and finish no sooner.
    const outcomes: CaptureOutcome[] = [];
    for (const target of targets) {
      outcomes.push(
        await captureFiles("Copy", target, ctx, async (source, dir, name) => {
          const copy = await dir.createFile(name, SNAPSHOT_FILE_MODE);
          try {
            await copySparse(source, copy, ctx.signal ? { signal: ctx.signal } : {});
          } finally {
            await copy.close();
          }
        }),
      );
    }
    return outcomes;
  }

  release(snapshot: WorkloadSnapshot, ctx: SnapshotContext): Promise<void> {
    return discardVmSnapshot(snapshot.vm, ctx);
  }
}

export type SnapshotMethodChoice = "Auto" | "Reflink" | "Copy";

export interface ProviderChoice {
  provider: SnapshotProvider;
  /** The probe behind an Auto choice. */
  probe?: ReflinkProbe;
}

/**
 * The provider for a method; Auto probes the snapshot directory (on the shared volume) and takes Reflink
 * when clones work there, Copy otherwise.
 */
export async function chooseSnapshotProvider(
  method: SnapshotMethodChoice,
  ctx: SnapshotContext,
): Promise<ProviderChoice> {
  if (method === "Reflink") return { provider: new ReflinkSnapshotProvider() };
  if (method === "Copy") return { provider: new CopySnapshotProvider() };
  const probe = await probeReflink(ctx.sharedRoot, snapshotRunLocation(ctx));
  return { provider: probe.supported ? new ReflinkSnapshotProvider() : new CopySnapshotProvider(), probe };
}

// Captures one VM's files into its snapshot directory with `capture(source, dir, name)`: `source` is the
// VM's file, opened safely (an unsafe one fails the VM with its UnsafePathError), `dir` the directory of
// the copy and `name` its name there. Any failure fails the VM (and removes its partial snapshot).
async function captureFiles(
  method: CaptureMethod,
  target: SnapshotTarget,
  ctx: SnapshotContext,
  capture: (source: FileHandle, dir: SafeDir, name: string) => Promise<void>,
): Promise<CaptureOutcome> {
  const vm: VmRef = { namespace: target.namespace, name: target.name };
  const location = snapshotLocation(ctx, vm);
  try {
    const files = await withRoot(ctx.sharedRoot, async (shared) => {
      const out: SnapshotFile[] = [];
      for (const path of target.files) {
        ctx.signal?.throwIfAborted();
        out.push(await captureFile(method, shared, checkRelativePath(path), location, capture));
      }
      return out;
    });
    return { vm, ok: true, snapshot: { method, vm, location, root: ctx.sharedRoot, dir: location, files } };
  } catch (err) {
    await discardVmSnapshot(vm, ctx).catch(() => {});
    return { vm, ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

async function captureFile(
  method: CaptureMethod,
  shared: SafeDir,
  path: string,
  location: string,
  capture: (source: FileHandle, dir: SafeDir, name: string) => Promise<void>,
): Promise<SnapshotFile> {
  const failed = (err: unknown) =>
    unsafeCause(err) ?? new Error(`${method} of ${path} failed: ${describeFsError(err, path)}`, { cause: err });
  let source: FileHandle;
  try {
    source = await shared.openFile(path);
  } catch (err) {
    throw failed(err);
  }
  try {
    const info = await source.stat();
    const name = posix.basename(path);
    return await withDir(
      shared,
      posix.join(location, posix.dirname(path)),
      { create: true, mode: SNAPSHOT_DIR_MODE },
      async (dir) => {
        try {
          await capture(source, dir, name);
        } catch (err) {
          throw failed(err);
        }
        const bytes = await withFile(dir, name, async (copy) => (await copy.stat()).size);
        return { path, bytes, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
      },
    );
  } finally {
    await source.close();
  }
}

/** Whether a failed clone says the filesystem cannot clone (rather than, say, that it is full or read-only). */
export function isReflinkUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "EXDEV" || code === "EOPNOTSUPP" || code === "ENOTSUP" || code === "EINVAL" || code === "ENOSYS";
}

/** A filesystem error of a capture of `path`, in words (reflink's own errnos explained). */
export function describeFsError(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `the source file ${path} does not exist`;
  if (code === "EXDEV")
    return "the file is on another filesystem than the snapshot directory (reflink cannot cross filesystems)";
  if (code === "EOPNOTSUPP" || code === "ENOTSUP" || code === "EINVAL") {
    return `the filesystem does not support reflink clones (${code})`;
  }
  return errorMessage(err);
}

/**
 * Removes this run's snapshot directory (and the backup's) if nothing is left in them, e.g. after an Auto
 * probe in a run that had nothing to capture. Kept snapshots (extractAt Restore) keep them in place.
 */
export async function removeEmptyRunDir(ctx: SnapshotContext): Promise<void> {
  await withRoot(ctx.sharedRoot, (shared) => removeEmptyDirs(shared, emptyWithTheRun(ctx)));
}

async function discardVmSnapshot(vm: VmRef, ctx: SnapshotContext): Promise<void> {
  const location = snapshotLocation(ctx, vm);
  await withRoot(ctx.sharedRoot, async (shared) => {
    await shared.removeTree(location);
    // Remove the directories above it once empty (the namespace, the run, the backup); a non-empty one
    // belongs to another VM or node and stays.
    await removeEmptyDirs(shared, [posix.dirname(location), ...emptyWithTheRun(ctx)]);
  });
}

// The run's directory, the backup's and the backup namespace's: removed when empty, innermost first.
function emptyWithTheRun(ctx: SnapshotContext): string[] {
  const backupDir = backupSnapshotsPath(ctx.backup);
  return [snapshotRunLocation(ctx), backupDir, posix.dirname(backupDir)];
}

async function removeEmptyDirs(shared: SafeDir, dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    if (!(await shared.removeEmptyDir(dir).catch(() => false))) return;
  }
}
