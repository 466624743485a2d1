// One node's share of a backup: `fedbackup agent backup` runs this in a Job on the node.
//
// For the VMs of the plan that are active on this node: freeze, snapshot, thaw (the short part), then
// extract each file from its snapshot into the backup location with its sha256, and commit the VM's
// manifest last. The run is idempotent per round: a Job retried after a crash skips the VMs whose manifest
// is already complete and redoes the others from scratch. One VM's failure (a missing file, a failed
// clone, a full disk while extracting) is reported and the others go on.
//
// The shared volume and the location are writable by tenants: every file of either is reached through
// safe-fs.ts below its mount point. A VM whose file is a symlink, a hard link, a FIFO or a device (or
// lies behind a symlinked directory) is failed with UnsafeFile, naming the path, and nothing of what the
// path leads to is read or written.
import { posix } from "node:path";
import { isInSharedVolumeTop } from "../planning/shared-volume-layout.js";
import { commitAtomic, removeDurably } from "./atomic-files.js";
import { copyAndHash, sha256OfFile } from "./copy-and-hash.js";
import type {
  CaptureMethod,
  CapturedWorkload,
  Consistency,
  ExtractAt,
  FailedReason,
  FailedWorkload,
  Indication,
  ManifestFile,
  NodeManifest,
  WorkloadManifest,
} from "./manifest.js";
import {
  MANIFEST_SCHEMA_VERSION,
  backupFilePath,
  checkManifestComplete,
  checkName,
  checkRelativePath,
  nodeManifestPath,
  relativePathProblem,
  workloadDir,
  workloadManifestPath,
  writeNodeManifest,
  writeWorkloadManifest,
} from "./manifest.js";
import type { Freezer, IsActiveOnNode, VmFreezeReport } from "./quiesce.js";
import { withFrozen } from "./quiesce.js";
import type { SnapshotContext, SnapshotMethodChoice, SnapshotProvider, WorkloadSnapshot } from "./snapshot.js";
import { chooseSnapshotProvider, removeEmptyRunDir } from "./snapshot.js";
import type { SafeDir } from "./safe-fs.js";
import { isCode, unsafeCause, withDir, withFile, withRoot } from "./safe-fs.js";
import type { AgentLog, Clock, VmRef } from "./types.js";
import { errorMessage, vmKey } from "./types.js";

export interface PlannedWorkload {
  namespace: string;
  name: string;
  uid: string;
  /** Disk image files, relative to the shared volume root. */
  files: string[];
}

export interface NodeBackupPlan {
  /** The FederatedBackup (its namespace, name and uid key its snapshots on the shared volume). */
  backup: { namespace: string; name: string; uid: string };
  node: string;
  round: number;
  method: SnapshotMethodChoice;
  quiesce: "GuestAgent" | "None";
  freezeTimeoutMs: number;
  maxFreezeMs: number;
  extractAt: ExtractAt;
  /** Local directory where the shared volume is mounted (trusted; nothing below it is). */
  sharedRoot: string;
  /** Local directory where the backup location is mounted (trusted; nothing below it is). */
  locationRoot: string;
  /** This backup's directory at the location, relative to locationRoot (created if missing). */
  backupPath: string;
  workloads: PlannedWorkload[];
}

export interface NodeBackupDeps {
  freezer: Freezer;
  isActiveOnNode: IsActiveOnNode;
  clock: Clock;
  log: AgentLog;
  /** Replaces the provider plan.method would choose (the CSI provider plugs in here). */
  snapshotProvider?: SnapshotProvider;
  /** Stops the run between files and chunks. */
  signal?: AbortSignal;
  /** Signals that end a freeze window (thaw, then re-raise); default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /**
   * The freeze already happened elsewhere (the CSI method's snapshot Job, see csi.ts): one report per VM
   * in the snapshot. Nothing is frozen here; the provider reads the snapshot and the reports go into the
   * manifests. VMs without a report are not captured.
   */
  frozenReports?: ReadonlyMap<string, VmFreezeReport>;
}

export interface NodeBackupResult {
  /** The method used (with Auto, the one chosen). */
  method: CaptureMethod;
  captured: CapturedWorkload[];
  failed: FailedWorkload[];
  /** The node manifest, relative to the backup root. */
  nodeManifestPath: string;
}

interface Pending {
  workload: PlannedWorkload;
  vm: VmRef;
  startedAt: number;
}

export async function runNodeBackup(plan: NodeBackupPlan, deps: NodeBackupDeps): Promise<NodeBackupResult> {
  checkPlan(plan);
  return withRoot(plan.locationRoot, (location) =>
    withDir(location, plan.backupPath, { create: true }, (backup) => runIn(backup, plan, deps)),
  );
}

// The run, with the backup's directory at the location open as `backup`.
async function runIn(backup: SafeDir, plan: NodeBackupPlan, deps: NodeBackupDeps): Promise<NodeBackupResult> {
  const { clock, log } = deps;
  const startedAt = clock.now();
  const captured: CapturedWorkload[] = [];
  const failed: FailedWorkload[] = [];
  const fail = (vm: VmRef, reason: FailedReason, message: string) => {
    log.warn("VM not captured", { vm: vmKey(vm), reason, message });
    failed.push({ namespace: vm.namespace, name: vm.name, reason, message });
  };
  const ctx: SnapshotContext = {
    backup: plan.backup,
    node: plan.node,
    round: plan.round,
    sharedRoot: plan.sharedRoot,
    log,
  };
  if (deps.signal) ctx.signal = deps.signal;

  // 1. Which VMs still need work: valid, not already complete for this round.
  const pending: Pending[] = [];
  const seen = new Set<string>();
  for (const workload of plan.workloads) {
    const vm = { namespace: workload.namespace, name: workload.name };
    if (seen.has(vmKey(vm))) continue;
    seen.add(vmKey(vm));
    const problem = workloadProblem(workload);
    if (problem) {
      fail(vm, problem.reason, problem.message);
      continue;
    }
    const done = await checkManifestComplete(backup, vm.namespace, vm.name, {
      backupUid: plan.backup.uid,
      round: plan.round,
      workloadUid: workload.uid,
      sharedRoot: plan.sharedRoot,
    });
    if (done.complete) {
      log.info("VM already captured in this round; not redone", { vm: vmKey(vm) });
      captured.push(capturedFromManifest(done.manifest, true));
      continue;
    }
    pending.push({ workload: { ...workload, files: [...new Set(workload.files)] }, vm, startedAt: 0 });
  }

  // 2. The snapshot method.
  let provider: SnapshotProvider;
  if (deps.snapshotProvider) {
    provider = deps.snapshotProvider;
  } else {
    const choice = await chooseSnapshotProvider(plan.method, ctx);
    provider = choice.provider;
    if (choice.probe) {
      log.info("snapshot method chosen", {
        method: provider.method,
        reflink: choice.probe.supported,
        detail: choice.probe.detail,
      });
    }
  }
  let extractAt = plan.extractAt;
  if (extractAt === "Restore" && !provider.pointInTime) {
    // A Copy "snapshot" is a full copy: keeping it until a restore would only double the space used
    // on the shared volume for nothing (the FederatedBackup CRD forbids Copy with extractAt Restore).
    log.warn("extractAt Restore needs real snapshots; extracting now", { method: provider.method });
    extractAt = "Backup";
  }

  // 3. Before any freeze: remove snapshot leftovers of an interrupted attempt, and fail VMs whose files are
  //    missing, so that no guest is frozen for a capture that cannot succeed.
  const ready: Pending[] = [];
  for (const item of pending) {
    deps.signal?.throwIfAborted();
    item.startedAt = clock.now();
    try {
      await provider.discard(item.vm, ctx);
      const problem = await sourceProblem(plan.sharedRoot, item.workload.files);
      if (problem) fail(item.vm, problem.reason, problem.message);
      else ready.push(item);
    } catch (err) {
      fail(item.vm, reasonOf(err), `could not prepare the capture: ${errorMessage(err)}`);
    }
  }

  // 4. Freeze, capture, thaw; then extract. One window for the node or one per VM (see SnapshotProvider).
  const groups = provider.freezeScope === "Node" ? (ready.length > 0 ? [ready] : []) : ready.map((item) => [item]);
  for (const group of groups) {
    deps.signal?.throwIfAborted();
    const byKey = new Map(group.map((item) => [vmKey(item.vm), item]));
    const targetsOf = (vms: readonly VmRef[]) =>
      vms.map((vm) => ({ ...vm, files: byKey.get(vmKey(vm))?.workload.files ?? [] }));
    const frozen = deps.frozenReports
      ? await alreadyFrozen(group, deps.frozenReports, (vms) => provider.capture(targetsOf(vms), ctx))
      : await withFrozen(
          group.map((item) => item.vm),
          deps.freezer,
          {
            quiesce: plan.quiesce,
            freezeTimeoutMs: plan.freezeTimeoutMs,
            maxFreezeMs: plan.maxFreezeMs,
            clock,
            isActiveOnNode: deps.isActiveOnNode,
            log,
            ...(deps.signals ? { signals: deps.signals } : {}),
          },
          (session) => provider.capture(targetsOf(session.vms), { ...ctx, signal: session.signal }),
        );
    const outcomes = new Map(frozen.value.map((outcome) => [vmKey(outcome.vm), outcome]));
    for (const report of frozen.reports) {
      const item = byKey.get(vmKey(report.vm));
      if (!item) continue;
      if (!report.captured) {
        fail(item.vm, report.reason, report.message);
        continue;
      }
      if (report.thawError) log.error("guest may still be frozen", { vm: vmKey(item.vm), error: report.thawError });
      const outcome = outcomes.get(vmKey(item.vm));
      if (!outcome || !outcome.ok) {
        if (!outcome) fail(item.vm, "CaptureFailed", "the snapshot provider returned nothing");
        else fail(item.vm, reasonOf(outcome.error), describeCaptureError(outcome.error));
        continue;
      }
      try {
        captured.push(await extract(backup, plan, deps, ctx, provider, extractAt, item, report, outcome.snapshot));
      } catch (err) {
        deps.signal?.throwIfAborted();
        fail(item.vm, reasonOf(err), `extracting the snapshot failed: ${errorMessage(err)}`);
        await backup.removeTree(filesDir(item.vm)).catch(() => {});
        await provider.release(outcome.snapshot, ctx).catch(() => {});
      }
    }
  }

  if (!deps.snapshotProvider) await removeEmptyRunDir(ctx);

  // 5. The node manifest: what this run captured and could not capture.
  const completedAt = clock.now();
  const nodeManifest: NodeManifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backup: { name: plan.backup.name, uid: plan.backup.uid },
    node: plan.node,
    round: plan.round,
    method: provider.method,
    startedAt: iso(startedAt),
    completedAt: iso(completedAt),
    captured,
    failed,
  };
  await writeNodeManifest(backup, nodeManifest);
  log.info("node backup done", {
    node: plan.node,
    round: plan.round,
    captured: captured.length,
    failed: failed.length,
  });
  return {
    method: provider.method,
    captured,
    failed,
    nodeManifestPath: nodeManifestPath(plan.node, plan.round),
  };
}

// The window of withFrozen without the freeze: the reports come from the run that froze the guests.
async function alreadyFrozen<T>(
  group: readonly Pending[],
  reports: ReadonlyMap<string, VmFreezeReport>,
  capture: (vms: readonly VmRef[]) => Promise<T>,
): Promise<{ value: T; reports: VmFreezeReport[] }> {
  const out = group.map(
    (item): VmFreezeReport =>
      reports.get(vmKey(item.vm)) ?? {
        vm: item.vm,
        captured: false,
        reason: "CaptureFailed",
        message: "it is not in the snapshot's report",
      },
  );
  const value = await capture(out.filter((r) => r.captured).map((r) => r.vm));
  return { value, reports: out };
}

// Extracts one VM's snapshot into <vm>/files (or, with extractAt Restore, only hashes it), then commits its
// manifest, then deletes the snapshot. Throws on failure; the caller cleans up.
async function extract(
  backup: SafeDir,
  plan: NodeBackupPlan,
  deps: NodeBackupDeps,
  ctx: SnapshotContext,
  provider: SnapshotProvider,
  extractAt: ExtractAt,
  item: Pending,
  report: Extract<VmFreezeReport, { captured: true }>,
  snapshot: WorkloadSnapshot,
): Promise<CapturedWorkload> {
  const { vm } = item;
  await forgetEarlierCapture(backup, vm);
  const files: ManifestFile[] = [];
  const copyOpts = deps.signal ? { signal: deps.signal } : {};
  for (const file of snapshot.files) {
    // The snapshot is read through a descriptor opened safely below its mount point, like the VM's files.
    const result = await withRoot(snapshot.root, (root) =>
      withFile(root, posix.join(snapshot.dir, checkRelativePath(file.path)), async (source) => {
        if (extractAt === "Backup") {
          const target = backupFilePath(vm.namespace, vm.name, file.path);
          return withDir(backup, posix.dirname(target), { create: true }, (dir) =>
            commitAtomic(dir, posix.basename(target), (temp) => copyAndHash(source, temp, copyOpts)),
          );
        }
        if (file.sha256 !== undefined) return { bytes: file.bytes, sha256: file.sha256 };
        return sha256OfFile(source, copyOpts);
      }),
    );
    if (result.bytes !== file.bytes || (file.sha256 !== undefined && file.sha256 !== result.sha256)) {
      throw new Error(`the snapshot of ${file.path} changed while it was extracted (${result.bytes} bytes read)`);
    }
    files.push({
      path: file.path,
      bytes: result.bytes,
      sha256: result.sha256,
      mode: file.mode,
      uid: file.uid,
      gid: file.gid,
    });
  }

  const consistency = consistencyOf(report.indication, provider.pointInTime);
  const messages = [report.message, consistency === "Inconsistent" ? inconsistentNote : undefined];
  if (report.thawError)
    messages.push(`unfreeze failed (${report.thawError}); KubeVirt's unfreezeTimeout thaws the guest`);
  const message = messages.filter((m) => m !== undefined).join("; ");
  const manifest: WorkloadManifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    backup: { name: plan.backup.name, uid: plan.backup.uid },
    workload: { namespace: vm.namespace, name: vm.name, uid: item.workload.uid },
    node: plan.node,
    round: plan.round,
    method: snapshot.method,
    indication: report.indication,
    consistency,
    freeze: {
      startedAt: report.freeze.startedAt === null ? null : iso(report.freeze.startedAt),
      endedAt: report.freeze.endedAt === null ? null : iso(report.freeze.endedAt),
      windowMs: Math.round(report.freeze.windowMs),
    },
    extractAt,
    files,
    totalBytes: files.reduce((sum, f) => sum + f.bytes, 0),
    startedAt: iso(item.startedAt),
    completedAt: iso(deps.clock.now()),
  };
  if (message) manifest.message = message;
  if (extractAt === "Restore") manifest.snapshot = { location: snapshot.location };
  // The commit point of this VM: everything above is durable before the manifest appears.
  await writeWorkloadManifest(backup, manifest);
  if (extractAt === "Backup") {
    await provider.release(snapshot, ctx);
  }
  deps.log.info("VM captured", {
    vm: vmKey(vm),
    method: manifest.method,
    indication: manifest.indication,
    consistency,
    freezeWindowMs: manifest.freeze.windowMs,
    bytes: manifest.totalBytes,
  });
  return capturedFromManifest(manifest, false);
}

const inconsistentNote =
  "the files were copied byte by byte while the guest was not frozen, so they are not a point-in-time image";

export function consistencyOf(indication: Indication, pointInTime: boolean): Consistency {
  if (indication === "GuestAgent") return "ApplicationConsistent";
  return pointInTime ? "CrashConsistent" : "Inconsistent";
}

function capturedFromManifest(manifest: WorkloadManifest, reused: boolean): CapturedWorkload {
  const entry: CapturedWorkload = {
    namespace: manifest.workload.namespace,
    name: manifest.workload.name,
    uid: manifest.workload.uid,
    bytes: manifest.totalBytes,
    files: manifest.files.length,
    indication: manifest.indication,
    consistency: manifest.consistency,
    freezeWindowMs: manifest.freeze.windowMs,
    manifestPath: workloadManifestPath(manifest.workload.namespace, manifest.workload.name),
    reused,
  };
  if (manifest.message !== undefined) entry.message = manifest.message;
  if (manifest.files[0]) entry.sha256 = manifest.files[0].sha256;
  return entry;
}

// Old and new files must never mix under one manifest: before the first new file is written, the old
// manifest goes (durably, so that it cannot reappear next to half-written files after a crash), then the
// old files and the temporary files of an interrupted attempt. This happens only once a new capture
// exists, so a VM that cannot be captured now keeps its capture from an earlier round.
async function forgetEarlierCapture(backup: SafeDir, vm: VmRef): Promise<void> {
  await removeDurably(backup, workloadManifestPath(vm.namespace, vm.name));
  await backup.removeTree(filesDir(vm));
}

const filesDir = (vm: VmRef): string => posix.join(workloadDir(vm.namespace, vm.name), "files");

// A path that safe-fs refused (a symlink, a hard link, a FIFO or device, a directory swapped meanwhile)
// fails the VM with UnsafeFile; every other failure is CaptureFailed.
function reasonOf(err: unknown): FailedReason {
  return unsafeCause(err) ? "UnsafeFile" : "CaptureFailed";
}

function describeCaptureError(err: Error): string {
  const unsafe = unsafeCause(err);
  return unsafe ? `unsafe file on the shared volume: ${unsafe.message}` : err.message;
}

function workloadProblem(workload: PlannedWorkload): { reason: FailedReason; message: string } | undefined {
  for (const [kind, value] of [
    ["namespace", workload.namespace],
    ["name", workload.name],
  ] as const) {
    try {
      checkName(kind, value);
    } catch (err) {
      return { reason: "CaptureFailed", message: errorMessage(err) };
    }
  }
  if (workload.files.length === 0) {
    return { reason: "NoSharedDisk", message: "it has no disk file on the shared volume" };
  }
  for (const path of workload.files) {
    const problem = relativePathProblem(path);
    if (problem) return { reason: "CaptureFailed", message: `invalid disk path ${JSON.stringify(path)}: ${problem}` };
    if (isInSharedVolumeTop(path)) {
      return { reason: "CaptureFailed", message: `disk path ${path} is inside fedbackup's own snapshot directory` };
    }
  }
  return undefined;
}

// Before any freeze: each file must exist and be safe to read (the capture checks again, as it opens it).
async function sourceProblem(
  sharedRoot: string,
  files: readonly string[],
): Promise<{ reason: FailedReason; message: string } | undefined> {
  return withRoot(sharedRoot, async (shared) => {
    for (const path of files) {
      try {
        await (await shared.openFile(path)).close();
      } catch (err) {
        const unsafe = unsafeCause(err);
        if (unsafe) return { reason: "UnsafeFile", message: `unsafe file on the shared volume: ${unsafe.message}` };
        if (isCode(err, "ENOENT")) {
          return { reason: "CaptureFailed", message: `disk file ${path} does not exist on the shared volume` };
        }
        return { reason: "CaptureFailed", message: `cannot read disk file ${path}: ${errorMessage(err)}` };
      }
    }
    return undefined;
  });
}

function checkPlan(plan: NodeBackupPlan): void {
  checkName("backup namespace", plan.backup.namespace);
  checkName("backup name", plan.backup.name);
  checkRelativePath(plan.backupPath);
  checkName("node name", plan.node);
  if (!plan.backup.uid) throw new Error("plan.backup.uid is empty");
  if (!Number.isSafeInteger(plan.round) || plan.round < 0) throw new Error(`invalid round ${plan.round}`);
  for (const key of ["freezeTimeoutMs", "maxFreezeMs"] as const) {
    if (!(plan[key] > 0)) throw new Error(`plan.${key} must be positive, got ${plan[key]}`);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
