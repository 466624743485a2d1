// One node's share of a restore: `fedbackup agent restore` runs this in a Job on the node, once the
// operator has stopped the VMs. Each VM is restored on its own (restoreWorkload: all or nothing), so one
// VM's bad backup is reported and the others go on. A Job retried after a crash keeps the VMs an earlier
// attempt restored: writing them again would only repeat the same bytes, and cost the time of a full copy.
import { posix } from "node:path";
import { ManifestError, relativeManifestPath, relativePathProblem } from "./manifest.js";
import type { AllowedClaim, RenamedFile } from "./restore.js";
import { RestoreError, restoreWorkload } from "./restore.js";
import { isCode, unsafeCause, withRoot } from "./safe-fs.js";
import type { NodeRestoreStatusResult } from "../api/v1alpha1/index.js";
import type { AgentLog, VmRef } from "./types.js";
import { errorMessage, silentLog, vmKey } from "./types.js";
import type { ObjectStore } from "./backup-dir.js";

/**
 * One VM's result, as in the NodeRestore's status.results. `reason` when not restored: a RestoreErrorReason
 * (ForeignFile, UnsafeFile and ClaimPartlyWritten among them), MissingBackup, Running or RestoreFailed.
 * `files` and `bytes` count the claim disks too.
 */
export type NodeRestoreResult = NodeRestoreStatusResult;

export interface NodeRestoreWorkload {
  namespace: string;
  name: string;
  /** The backup's directory, relative to locationRoot. */
  backupPath: string;
  /**
   * The files this VM may be restored to, relative to the shared volume root (the NodeRestore's `files`,
   * computed by the operator): a backup that lists any other file fails the VM with ForeignFile.
   */
  files: readonly string[];
  /**
   * The claims this VM may be restored to (the NodeRestore's `claims`): a backup with a claim disk that is
   * not among them fails the VM with ForeignFile (VolumeModeMismatch for a claim now in another mode).
   */
  claims?: readonly AllowedClaim[];
  /** The captured VM whose backup is read, when it is not this VM (a copy under another name or namespace). */
  source?: VmRef;
  /** Backup files written at another path than their captured one (each `to` among files). */
  renamedFiles?: readonly RenamedFile[];
  /** Report the VM's captured definition, verified before any disk is written, in its result. */
  reportDefinition?: boolean;
}

export interface NodeRestoreInput {
  node: string;
  /** Local directory where the shared volume is mounted. */
  sharedRoot: string;
  /** Local directory where the backup location is mounted. */
  locationRoot: string;
  /** The location is this object store, not the claim mounted at locationRoot. */
  objectStore?: ObjectStore;
  /** Where the Job mounts each Filesystem-mode claim (<claimsRoot>/<claim>) and attaches each Block-mode one. */
  claimsRoot?: string;
  devicesRoot?: string;
  workloads: NodeRestoreWorkload[];
  /** The results of an earlier attempt: the VMs restored there are kept as they are. */
  previous?: readonly NodeRestoreResult[];
  /** Stops the run; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface NodeRestoreDeps {
  /** The node where the VM has a VirtualMachineInstance ("" for one not on a node yet), undefined without one. */
  runningOn(vm: VmRef): Promise<string | undefined>;
  /** Called after each VM this run restores or refuses, with every result so far (kept ones included). */
  report(results: NodeRestoreResult[]): Promise<void>;
  log?: AgentLog;
}

export async function runNodeRestore(input: NodeRestoreInput, deps: NodeRestoreDeps): Promise<NodeRestoreResult[]> {
  const log = deps.log ?? silentLog;
  const earlier = new Map((input.previous ?? []).filter((r) => r.restored).map((r) => [vmKey(r), r]));
  // Kept results are part of every report from the start, so that a run stopped before reaching a VM
  // does not drop the fact that an earlier attempt restored it.
  const slots = input.workloads.map((w) => earlier.get(vmKey(w)));
  const done = () => slots.filter((r) => r !== undefined);
  for (const [i, workload] of input.workloads.entries()) {
    if (slots[i]) {
      log.info("VM restored by an earlier attempt; not redone", { vm: vmKey(workload) });
      continue;
    }
    // Everything done so far has been reported after its VM, so an abort has nothing left to report.
    input.signal?.throwIfAborted();
    const result = await restoreOne(input, deps, workload, log);
    if (!result.restored)
      log.warn("VM not restored", { vm: vmKey(workload), reason: result.reason, message: result.message });
    slots[i] = result;
    await deps.report(done());
  }
  log.info("node restore done", {
    node: input.node,
    restored: done().filter((r) => r.restored).length,
    failed: done().filter((r) => !r.restored).length,
  });
  return done();
}

async function restoreOne(
  input: NodeRestoreInput,
  deps: NodeRestoreDeps,
  workload: NodeRestoreWorkload,
  log: AgentLog,
): Promise<NodeRestoreResult> {
  const vm = { namespace: workload.namespace, name: workload.name };
  const refuse = (reason: string, message: string): NodeRestoreResult => ({ ...vm, restored: false, reason, message });
  try {
    // Writing the disk under a running guest would corrupt it beyond what any backup can repair.
    const node = await deps.runningOn(vm);
    if (node !== undefined) {
      const where = node ? `on node ${node}` : "not yet scheduled on a node";
      return refuse("Running", `the VM has a running instance ${where}; its disks are not written while it runs`);
    }
    const problem = relativePathProblem(workload.backupPath);
    if (problem)
      return refuse("RestoreFailed", `invalid backup path ${JSON.stringify(workload.backupPath)}: ${problem}`);
    const restored = await restoreWorkload({
      ...vm,
      locationRoot: input.locationRoot,
      ...(input.objectStore ? { objectStore: input.objectStore } : {}),
      backupPath: workload.backupPath,
      sharedRoot: input.sharedRoot,
      allowedFiles: workload.files,
      allowedClaims: workload.claims ?? [],
      claimsRoot: input.claimsRoot,
      devicesRoot: input.devicesRoot,
      log,
      ...(workload.source ? { source: workload.source } : {}),
      ...(workload.renamedFiles ? { renamedFiles: workload.renamedFiles } : {}),
      ...(workload.reportDefinition ? { reportDefinition: true } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    const { files, bytes, definition } = restored;
    // The definition as JSON data, as status.results[] carries it.
    return {
      ...vm,
      restored: true,
      files,
      bytes,
      verified: true,
      ...(definition ? { definition: { ...definition } } : {}),
    };
  } catch (err) {
    if (input.signal?.aborted) throw err;
    if (isMissingBackup(err)) {
      return refuse("MissingBackup", await missingBackupMessage(input, workload));
    }
    if (err instanceof RestoreError) return { ...refuse(err.reason, err.message), verified: false };
    const unsafe = unsafeCause(err);
    if (unsafe) return { ...refuse("UnsafeFile", unsafe.message), verified: false };
    return refuse("RestoreFailed", errorMessage(err));
  }
}

// A manifest (or the backup's directory) that is not there; not a missing file the manifest lists.
const isMissingBackup = (err: unknown): boolean =>
  err instanceof RestoreError &&
  err.reason === "InvalidManifest" &&
  err.cause instanceof ManifestError &&
  err.cause.code === "NotFound";

// Tells a backup that is gone as a whole (deleted, wrong location) from one that lacks this VM.
// (An object store has no directories: there, only the manifest is missing.)
async function missingBackupMessage(input: NodeRestoreInput, workload: NodeRestoreWorkload): Promise<string> {
  const captured = workload.source ?? workload;
  const vm = workload.source ? `${vmKey(captured)} (restored as ${vmKey(workload)})` : vmKey(workload);
  try {
    if (!input.objectStore)
      await withRoot(input.locationRoot, async (location) => (await location.openDir(workload.backupPath)).close());
  } catch (err) {
    if (isCode(err, "ENOENT"))
      return `no backup of ${vm}: the backup directory ${workload.backupPath} does not exist at the location`;
  }
  const manifest = posix.join(workload.backupPath, relativeManifestPath(captured.namespace, captured.name));
  return `no backup of ${vm}: ${manifest} does not exist at the location`;
}
