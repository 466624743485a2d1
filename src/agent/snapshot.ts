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
// File-based snapshots live on the shared volume itself (a reflink cannot cross filesystems):
//   <sharedRoot>/.fedbackup/snapshots/<backup>/<node>-r<round>/<namespace>/<vm>/<path>
// The per-VM directory keeps two VMs that list the same file (a shared ISO, a shareable disk) apart, and
// lets one VM's leftovers be removed without touching the others.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, mkdir, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { copySparse } from "./copy-and-hash.js";
import type { CaptureMethod } from "./manifest.js";
import { checkName, checkRelativePath } from "./manifest.js";
import type { AgentLog, VmRef } from "./types.js";
import { errorMessage } from "./types.js";

export interface SnapshotTarget extends VmRef {
  /** Relative to the shared volume root. */
  files: readonly string[];
}

export interface SnapshotContext {
  backup: { name: string; uid: string };
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
  /** Local directory from which the snapshot's files can be read, each at its `path`. */
  localRoot: string;
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

/** The directory, under the shared volume root, that snapshots of every backup live in. */
export const SNAPSHOTS_TOP = ".fedbackup";

/** Directory of this node run's snapshots, relative to the shared volume root. */
export function snapshotRunLocation(backupName: string, node: string, round: number): string {
  return posix.join(
    SNAPSHOTS_TOP,
    "snapshots",
    checkName("backup name", backupName),
    `${checkName("node", node)}-r${round}`,
  );
}

/** Directory of one VM's snapshot, relative to the shared volume root. */
export function snapshotLocation(ctx: SnapshotContext, vm: VmRef): string {
  return posix.join(
    snapshotRunLocation(ctx.backup.name, ctx.node, ctx.round),
    checkName("namespace", vm.namespace),
    checkName("VM name", vm.name),
  );
}

export interface ReflinkProbe {
  supported: boolean;
  /** Why not, when not supported (the errno and message of the failed clone). */
  detail?: string;
}

/**
 * Whether copy-on-write clones work in `dir`: clones a small temporary file and removes both copies.
 * Never throws for an unsupported filesystem; it does throw if `dir` cannot be created or written.
 */
export async function probeReflink(dir: string): Promise<ReflinkProbe> {
  await mkdir(dir, { recursive: true });
  const suffix = randomBytes(6).toString("hex");
  const source = join(dir, `.fedbackup-reflink-probe-${suffix}`);
  const clone = `${source}.clone`;
  try {
    // Some filesystems only share whole blocks: one block of real data is a fair test.
    await writeFile(source, randomBytes(4096), { flag: "wx" });
    await copyFile(source, clone, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
    return { supported: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EROFS" || code === "ENOSPC") throw err;
    return { supported: false, detail: `${code ?? "error"}: ${errorMessage(err)}` };
  } finally {
    await Promise.all([rm(source, { force: true }), rm(clone, { force: true })]);
  }
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
    return Promise.all(
      targets.map((target) =>
        captureFiles("Reflink", target, ctx, async (source, destination) => {
          await copyFile(source, destination, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
          return undefined;
        }),
      ),
    );
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
        await captureFiles("Copy", target, ctx, async (source, destination) => {
          await copySparse(source, destination, ctx.signal ? { signal: ctx.signal } : {});
          return undefined;
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
  const probe = await probeReflink(join(ctx.sharedRoot, snapshotRunLocation(ctx.backup.name, ctx.node, ctx.round)));
  return { provider: probe.supported ? new ReflinkSnapshotProvider() : new CopySnapshotProvider(), probe };
}

// Captures one VM's files into its snapshot directory with `capture(source, destination)`, which returns
// the sha256 when it computed one. Any failure fails the VM (and removes its partial snapshot).
async function captureFiles(
  method: CaptureMethod,
  target: SnapshotTarget,
  ctx: SnapshotContext,
  capture: (source: string, destination: string) => Promise<string | undefined>,
): Promise<CaptureOutcome> {
  const vm: VmRef = { namespace: target.namespace, name: target.name };
  const location = snapshotLocation(ctx, vm);
  const localRoot = join(ctx.sharedRoot, location);
  try {
    const files: SnapshotFile[] = [];
    for (const path of target.files) {
      ctx.signal?.throwIfAborted();
      const source = join(ctx.sharedRoot, checkRelativePath(path));
      const destination = join(localRoot, path);
      await mkdir(dirname(destination), { recursive: true });
      let sha256: string | undefined;
      try {
        sha256 = await capture(source, destination);
      } catch (err) {
        throw new Error(`${method} of ${path} failed: ${describeFsError(err, source)}`, { cause: err });
      }
      const [sourceInfo, copyInfo] = await Promise.all([stat(source), stat(destination)]);
      const file: SnapshotFile = {
        path,
        bytes: copyInfo.size,
        mode: sourceInfo.mode & 0o7777,
        uid: sourceInfo.uid,
        gid: sourceInfo.gid,
      };
      if (sha256 !== undefined) file.sha256 = sha256;
      files.push(file);
    }
    return { vm, ok: true, snapshot: { method, vm, location, localRoot, files } };
  } catch (err) {
    await discardVmSnapshot(vm, ctx).catch(() => {});
    return { vm, ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

function describeFsError(err: unknown, source: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `the source file ${source} does not exist`;
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
  const runDir = join(ctx.sharedRoot, snapshotRunLocation(ctx.backup.name, ctx.node, ctx.round));
  for (const dir of [runDir, dirname(runDir)]) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
  }
}

async function discardVmSnapshot(vm: VmRef, ctx: SnapshotContext): Promise<void> {
  const runDir = join(ctx.sharedRoot, snapshotRunLocation(ctx.backup.name, ctx.node, ctx.round));
  await rm(join(ctx.sharedRoot, snapshotLocation(ctx, vm)), { recursive: true, force: true });
  // Remove the directories above it once empty (the namespace, the run, the backup); a non-empty one
  // belongs to another VM or node and stays.
  for (const dir of [join(runDir, vm.namespace), runDir, dirname(runDir)]) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
  }
}
