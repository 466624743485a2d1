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
//
// Disks on claims (PersistentVolumeClaims and DataVolumes of the VM's namespace, which the step's Job mounts,
// see src/api/labels.ts) are captured as the step's spec decided for each: CSI claims are cut by the
// snapshot Job (csi.ts) and read here by the extract Job from claims restored from their snapshots, mounted
// where the claims would be (PlannedClaim.readFrom), the freeze reports coming from the snapshot Job; Copy
// claims are copied inside the VM's freeze window, right
// after its files are, each claim is copied straight to the location with its sha256 in the same pass
// (there is no snapshot of a claim to extract from later): a Filesystem-mode claim's disk.img (opened
// through safe-fs.ts below the claims' mount directory, like a file of the shared volume) to
// <vm>/claims/<volume>/disk.img, a Block-mode claim's device with block-device.ts to <vm>/devices/<volume>.data
// (zero chunks are holes, listed in the manifest and not stored). The window stays bounded by maxFreeze: a
// copy that outlasts it goes on with the guest thawed and the manifest says FreezeBudgetExceeded. Each copy
// is written to a temporary name and renamed once complete, and the manifest (which lists them) comes last,
// so a Job retried after a crash redoes the VM from scratch. Reflink claims (Filesystem mode) are cloned
// inside the freeze window instead (claim-reflink.ts: a clone of disk.img in the claim's root, which the Job
// mounts read-write for it), then extracted from the clone after the thaw exactly as Copy extracts
// disk.img, and the clone is removed; a clone that fails because the filesystem cannot clone fails the VM
// with ReflinkNotSupported. With the Reflink method for the shared volume, whose window covers the whole
// node and must stay short, a VM with claims not all cut with Reflink fails (CaptureFailed) instead of
// having them copied in that window. Each claim disk of the manifest says which method captured it and why.
//
// Each VM's definition (its VirtualMachine, standalone DataVolumes, referenced Secret and ConfigMap names;
// definition-capture.ts) is read from the API server before any freeze, and with the step's includeSecrets
// its Secrets too; they are written to definition.json and secrets.json (definition-file.ts) after its
// disks and before its manifest, which lists them. A VMI without a VirtualMachine is captured without a
// definition; the node manifest and the step's status say which VMs have one.
import { constants } from "node:fs";
import { posix } from "node:path";
import { isInSharedVolumeTop } from "../planning/shared-volume-layout.js";
import type { LocationDir } from "../storage/location-dir.js";
import { withBackupDir, type ObjectStore } from "./backup-dir.js";
import { BlockDeviceError, extractBlockDevice, openBlockDevice } from "./block-device.js";
import type { ClaimCloneSource } from "./claim-reflink.js";
import { ClaimCloneError, claimClonePath, cloneClaimDisk, discardClaimClone } from "./claim-reflink.js";
import { copyAndHash, sha256OfFile } from "./copy-and-hash.js";
import type { CapturedDefinition, VmObjectReader } from "./definition-capture.js";
import { captureDefinition } from "./definition-capture.js";
import { readVerifiedSecrets, removeDefinitionFiles, writeDefinition, writeSecrets } from "./definition-file.js";
import type {
  CaptureMethod,
  CapturedWorkload,
  ClaimDiskMethod,
  ClaimDiskSource,
  Consistency,
  ExtractAt,
  FailedReason,
  FailedWorkload,
  Indication,
  ManifestBlockDisk,
  ManifestFile,
  ManifestFilesystemDisk,
  NodeManifest,
  SkippedVolume,
  WorkloadManifest,
} from "./manifest.js";
import {
  MANIFEST_SCHEMA_VERSION,
  backupBlockDiskPath,
  backupFilePath,
  backupFilesystemDiskPath,
  checkManifestComplete,
  checkName,
  checkRelativePath,
  nodeManifestPath,
  relativePathProblem,
  workloadDir,
  workloadManifestPath,
  workloadManifestSchemaVersion,
  writeNodeManifest,
  writeWorkloadManifest,
} from "./manifest.js";
import type { Freezer, IsActiveOnNode, VmFreezeReport } from "./quiesce.js";
import { withFrozen } from "./quiesce.js";
import type {
  CaptureOutcome,
  SnapshotContext,
  SnapshotMethodChoice,
  SnapshotProvider,
  WorkloadSnapshot,
} from "./snapshot.js";
import { CopySnapshotProvider, chooseSnapshotProvider, removeEmptyRunDir } from "./snapshot.js";
import { isCode, unsafeCause, withFile, withRoot } from "./safe-fs.js";
import type { AgentLog, Clock, VmRef } from "./types.js";
import { errorMessage, vmKey } from "./types.js";

const { O_RDONLY } = constants;

export interface PlannedWorkload {
  namespace: string;
  name: string;
  uid: string;
  /** Disk image files, relative to the shared volume root. */
  files: string[];
  /** Disks on claims of the VM's namespace (see NodeSnapshot spec.workloads[].claims). */
  claims?: PlannedClaim[];
  /** Its volumes that are not data, named in its manifest. */
  skippedVolumes?: SkippedVolume[];
  /** The standalone DataVolumes the step lets the agent read for its definition. */
  dataVolumes?: string[];
  /** With includeSecrets, the Secrets the step lets the agent read and store. */
  secrets?: string[];
}

/** A disk of the VM that is a claim: mounted at <claimsRoot>/<claimName> or attached at <devicesRoot>/<claimName>. */
export interface PlannedClaim {
  /** The volume's name in the VM spec; names the disk in the manifest and at the location. */
  volume: string;
  claimName: string;
  /** How the VM names the claim (default PersistentVolumeClaim). */
  sourceKind?: "PersistentVolumeClaim" | "DataVolume";
  volumeMode: "Filesystem" | "Block";
  /** How the claim was cut, as the step's spec decided (default Copy); recorded in the manifest. */
  snapshotMethod?: "CSI" | "Reflink" | "Copy";
  /** Why that method, recorded in the manifest. */
  why?: string;
  /**
   * The name the disk is found under at claimsRoot or devicesRoot when it is not claimName's: the claim
   * restored from the claim's VolumeSnapshot, which a CSI step's extract Job reads (see csi.ts).
   */
  readFrom?: string;
  /** The claim's shape when the step was planned, recorded in the manifest's source. */
  accessModes?: string[];
  storageClassName?: string;
  sizeBytes?: number;
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
  /**
   * Local directory where each Filesystem-mode claim of the step is mounted, at <claimsRoot>/<claimName>
   * (trusted; nothing below it is). Needed only when a VM has such a claim.
   */
  claimsRoot?: string;
  /** Local directory where each Block-mode claim is attached as the device <devicesRoot>/<claimName> (trusted). */
  devicesRoot?: string;
  /** This backup's directory at the location, relative to locationRoot (created if missing). */
  backupPath: string;
  /** Store the Secrets each VM references (its `secrets`) in its secrets.json. */
  includeSecrets?: boolean;
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
  /** Reads each VM's VirtualMachine (and DataVolumes, Secrets) for its definition; without it none is recorded. */
  vmObjects?: VmObjectReader;
  /** The location is this object store, not the claim mounted at plan.locationRoot. */
  objectStore?: ObjectStore;
  /**
   * A pipelined step (the operator starts it ahead): `wait` resolves when its turn to cut has come, before the
   * first freeze; `cutMade` reports that every cut is made and every VM thawed, so that the operator hands the
   * turn on while this step extracts. Only point-in-time methods call cutMade; with Copy the turn ends with
   * the step.
   */
  turn?: { wait(): Promise<void>; cutMade(): Promise<void> };
}

export interface NodeBackupResult {
  /** The method used (with Auto, the one chosen). */
  method: CaptureMethod;
  captured: CapturedWorkload[];
  failed: FailedWorkload[];
  /** The node manifest, relative to the backup root. */
  nodeManifestPath: string;
}

/** One freeze window's outcome, extracted after every window of a pipelined step (settleGroup). */
interface GroupCut {
  group: Pending[];
  byKey: Map<string, Pending>;
  frozen: Awaited<ReturnType<typeof withFrozen<CaptureWindow>>>;
}

interface CaptureWindow {
  captures: CaptureOutcome[];
  claims: Map<string, ClaimCapture>;
}

interface Pending {
  workload: PlannedWorkload;
  vm: VmRef;
  startedAt: number;
  /** Read before any freeze (definition-capture.ts). */
  definition?: CapturedDefinition;
}

const claimsOf = (item: Pending): readonly PlannedClaim[] => item.workload.claims ?? [];

/** A VM's disks on claims, copied to the location (not yet listed by a manifest). */
interface CapturedClaims {
  blockDisks: ManifestBlockDisk[];
  filesystemDisks: ManifestFilesystemDisk[];
  /** Reflink claims cloned in the window, extracted after the thaw (extractClaimClones) into filesystemDisks. */
  clones: Array<{
    claim: PlannedClaim;
    /** The manifest's source, method and why of the disk, as captureClaims records them. */
    source: ManifestFilesystemDisk["source"];
    how: { method: ClaimDiskMethod; why?: string };
    image: ClaimCloneSource;
  }>;
}

type ClaimCapture = ({ ok: true } & CapturedClaims) | { ok: false; error: Error };

export async function runNodeBackup(plan: NodeBackupPlan, deps: NodeBackupDeps): Promise<NodeBackupResult> {
  checkPlan(plan);
  return withBackupDir(
    { locationRoot: plan.locationRoot, objectStore: deps.objectStore },
    plan.backupPath,
    true,
    (backup) => runIn(backup, plan, deps),
  );
}

// The run, with the backup's directory at the location open as `backup`.
async function runIn(backup: LocationDir, plan: NodeBackupPlan, deps: NodeBackupDeps): Promise<NodeBackupResult> {
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
      captured.push(capturedFromManifest(done.manifest, true, await storedSecretsCount(backup, done.manifest)));
      continue;
    }
    pending.push({
      workload: { ...workload, files: [...new Set(workload.files)], claims: workload.claims ?? [] },
      vm,
      startedAt: 0,
    });
  }

  // 2. The snapshot method. Without any file on the shared volume to capture (VMs on claims only), nothing
  //    is done there, so that a step works without it: Auto is Copy, the method of claims. With a VM on
  //    claims in the step, Auto is Copy too: claims are captured with Copy only so far, and Auto must not
  //    pick a method under which they fail.
  const usesShared = pending.some((item) => item.workload.files.length > 0);
  const onClaims = pending.some((item) => claimsOf(item).length > 0);
  let provider: SnapshotProvider;
  if (deps.snapshotProvider) {
    provider = deps.snapshotProvider;
  } else if ((!usesShared || onClaims) && plan.method === "Auto") {
    provider = new CopySnapshotProvider();
    if (onClaims)
      log.info("snapshot method chosen", { method: provider.method, detail: "VMs of this step have disks on claims" });
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

  // 3. Before any freeze: remove snapshot leftovers of an interrupted attempt, and fail VMs whose files or
  //    claims are missing, so that no guest is frozen for a capture that cannot succeed.
  const ready: Pending[] = [];
  for (const item of pending) {
    deps.signal?.throwIfAborted();
    item.startedAt = clock.now();
    // Claims are copied in the freeze window (Copy) or read from claims restored from their snapshots
    // (the extract Job of the CSI method, whose freeze was the snapshot Job's).
    // In the node-wide window of Reflink, only clones (no copies) of claims are made.
    const claimsFit =
      provider.method === "Copy" ||
      deps.frozenReports ||
      (provider.method === "Reflink" && claimsOf(item).every((c) => c.snapshotMethod === "Reflink"));
    if (claimsOf(item).length > 0 && !claimsFit) {
      fail(
        item.vm,
        "CaptureFailed",
        `with the ${provider.method} method of this step, claims are captured only when each is cut with Reflink`,
      );
      continue;
    }
    try {
      if (item.workload.files.length > 0) await provider.discard(item.vm, ctx);
      // The clone an interrupted attempt left in a claim goes before a new one is made.
      if (!deps.frozenReports) await discardClones(plan, item);
      const problem =
        (await sourceProblem(plan.sharedRoot, item.workload.files)) ?? (await claimSourceProblem(plan, claimsOf(item)));
      if (problem) fail(item.vm, problem.reason, problem.message);
      else ready.push(item);
    } catch (err) {
      fail(item.vm, reasonOf(err), `could not prepare the capture: ${errorMessage(err)}`);
    }
  }
  // The definitions, read from the API server before any freeze (an API error fails the run, as others do).
  if (deps.vmObjects) {
    for (const item of ready) {
      deps.signal?.throwIfAborted();
      item.definition = await captureDefinition(deps.vmObjects, definitionRequest(item), plan.includeSecrets ?? false);
      // Names only: never a Secret's data.
      if (item.definition.notes.length > 0)
        log.info("VM definition", { vm: vmKey(item.vm), notes: item.definition.notes });
    }
  }

  // 4. Freeze, capture, thaw; then extract. One window for the node or one per VM (see SnapshotProvider).
  //    A pipelined step cuts only in its turn, and with point-in-time snapshots makes every cut before it
  //    extracts anything, so that it can hand the turn on first; a Copy "snapshot" is the copy itself (and as
  //    big), so Copy keeps capturing and extracting one window at a time, and its turn ends with the step.
  const groups = provider.freezeScope === "Node" ? (ready.length > 0 ? [ready] : []) : ready.map((item) => [item]);
  const cutGroup = async (group: Pending[]): Promise<GroupCut> => {
    deps.signal?.throwIfAborted();
    const byKey = new Map(group.map((item) => [vmKey(item.vm), item]));
    const targetsOf = (vms: readonly VmRef[]) =>
      vms.map((vm) => ({ ...vm, files: byKey.get(vmKey(vm))?.workload.files ?? [] }));
    // The files, then (in the same window) the claims of each VM whose files were captured.
    const captureAll = async (vms: readonly VmRef[], signal: AbortSignal | undefined) => {
      const withFiles = vms.filter((vm) => (byKey.get(vmKey(vm))?.workload.files.length ?? 0) > 0);
      const captures = [
        ...(withFiles.length > 0
          ? await provider.capture(targetsOf(withFiles), signal ? { ...ctx, signal } : ctx)
          : []),
        ...vms.filter((vm) => !withFiles.includes(vm)).map((vm) => noFiles(provider, vm, plan.sharedRoot)),
      ];
      const claims = new Map<string, ClaimCapture>();
      for (const outcome of captures) {
        const item = byKey.get(vmKey(outcome.vm));
        if (!outcome.ok || !item || claimsOf(item).length === 0) continue;
        claims.set(vmKey(item.vm), await captureClaims(backup, plan, item, signal));
      }
      return { captures, claims };
    };
    const frozen = deps.frozenReports
      ? await alreadyFrozen(group, deps.frozenReports, (vms) => captureAll(vms, deps.signal))
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
          (session) => captureAll(session.vms, session.signal),
        );
    return { group, byKey, frozen };
  };
  const settleGroup = async ({ group, byKey, frozen }: GroupCut): Promise<void> => {
    const outcomes = new Map(frozen.value.captures.map((outcome) => [vmKey(outcome.vm), outcome]));
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
      const claims = frozen.value.claims.get(vmKey(item.vm));
      if (claims && !claims.ok) {
        fail(item.vm, reasonOf(claims.error), describeClaimError(claims.error));
        await release(provider, outcome.snapshot, ctx).catch(() => {});
        continue;
      }
      try {
        if (claims) await extractClaimClones(backup, plan, item, claims, deps.signal);
      } catch (err) {
        deps.signal?.throwIfAborted();
        fail(item.vm, reasonOf(err), describeClaimError(err instanceof Error ? err : new Error(String(err))));
        await removeCapturedData(backup, item.vm);
        await release(provider, outcome.snapshot, ctx).catch(() => {});
        continue;
      }
      try {
        captured.push(
          await extract(backup, plan, deps, ctx, provider, extractAt, item, report, outcome.snapshot, claims),
        );
      } catch (err) {
        deps.signal?.throwIfAborted();
        fail(item.vm, reasonOf(err), `extracting the snapshot failed: ${errorMessage(err)}`);
        await removeCapturedData(backup, item.vm);
        await release(provider, outcome.snapshot, ctx).catch(() => {});
      }
    }
    // Whatever happened to each VM (extracted, failed, not frozen), no clone stays in its claims.
    if (!deps.frozenReports) {
      for (const item of group) {
        await discardClones(plan, item).catch((err: unknown) =>
          log.warn("could not remove a claim's clone", { vm: vmKey(item.vm), error: errorMessage(err) }),
        );
      }
    }
  };
  if (groups.length > 0 && deps.turn && !deps.frozenReports) await deps.turn.wait();
  if (provider.pointInTime && deps.turn && !deps.frozenReports) {
    const cuts: GroupCut[] = [];
    for (const group of groups) cuts.push(await cutGroup(group));
    await deps.turn.cutMade();
    for (const cut of cuts) await settleGroup(cut);
  } else {
    for (const group of groups) await settleGroup(await cutGroup(group));
  }

  if (!deps.snapshotProvider && usesShared) await removeEmptyRunDir(ctx);

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

// The capture of a VM without files on the shared volume (its disks are claims): nothing to snapshot.
function noFiles(provider: SnapshotProvider, vm: VmRef, root: string): CaptureOutcome {
  return { vm, ok: true, snapshot: { method: provider.method, vm, location: "", root, dir: "", files: [] } };
}

// Deletes a snapshot; one of noFiles, which is nothing, is left alone.
async function release(provider: SnapshotProvider, snapshot: WorkloadSnapshot, ctx: SnapshotContext): Promise<void> {
  if (snapshot.location === "" && snapshot.files.length === 0) return;
  await provider.release(snapshot, ctx);
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
  backup: LocationDir,
  plan: NodeBackupPlan,
  deps: NodeBackupDeps,
  ctx: SnapshotContext,
  provider: SnapshotProvider,
  extractAt: ExtractAt,
  item: Pending,
  report: Extract<VmFreezeReport, { captured: true }>,
  snapshot: WorkloadSnapshot,
  claims: CapturedClaims | undefined,
): Promise<CapturedWorkload> {
  const { vm } = item;
  // A VM with claims forgot its earlier capture in the window, before its claims were written.
  if (!claims) await forgetEarlierCapture(backup, vm);
  const files: ManifestFile[] = [];
  const copyOpts = deps.signal ? { signal: deps.signal } : {};
  for (const file of snapshot.files) {
    // The snapshot is read through a descriptor opened safely below its mount point, like the VM's files.
    const result = await withRoot(snapshot.root, (root) =>
      withFile(root, posix.join(snapshot.dir, checkRelativePath(file.path)), async (source) => {
        if (extractAt === "Backup") {
          const target = backupFilePath(vm.namespace, vm.name, file.path);
          return backup.commit(target, (sink) => copyAndHash(source, sink, copyOpts));
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
  const blockDisks = claims?.blockDisks;
  const filesystemDisks = claims && claims.filesystemDisks.length > 0 ? claims.filesystemDisks : undefined;
  const manifest: WorkloadManifest = {
    schemaVersion: workloadManifestSchemaVersion(blockDisks, filesystemDisks),
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
    ...(blockDisks ? { blockDisks } : {}),
    ...(filesystemDisks ? { filesystemDisks } : {}),
    ...(item.workload.skippedVolumes?.length
      ? { skippedVolumes: item.workload.skippedVolumes.map((s) => ({ volume: s.volume, type: s.type })) }
      : {}),
    totalBytes: [...files, ...(blockDisks ?? []), ...(filesystemDisks ?? [])].reduce((sum, d) => sum + d.bytes, 0),
    startedAt: iso(item.startedAt),
    completedAt: iso(deps.clock.now()),
  };
  if (message) manifest.message = message;
  if (extractAt === "Restore") manifest.snapshot = { location: snapshot.location };
  // The definition and Secrets, durable before the manifest that lists them.
  const captured = item.definition;
  if (captured?.definition) manifest.definition = await writeDefinition(backup, captured.definition);
  if (captured?.definition && captured.secrets) {
    manifest.secrets = await writeSecrets(backup, vm.namespace, vm.name, captured.secrets);
  }
  // The commit point of this VM: everything above is durable before the manifest appears.
  await writeWorkloadManifest(backup, manifest);
  if (extractAt === "Backup") {
    await release(provider, snapshot, ctx);
  }
  deps.log.info("VM captured", {
    vm: vmKey(vm),
    method: manifest.method,
    indication: manifest.indication,
    consistency,
    freezeWindowMs: manifest.freeze.windowMs,
    bytes: manifest.totalBytes,
  });
  return capturedFromManifest(manifest, false, captured?.secrets?.secrets.length);
}

// Copies the VM's claims to the location, in the freeze window (see the top of this file). The earlier
// capture of the VM goes first: its files were just captured again. Never throws for the VM's own failure
// (an unsafe or missing disk, a failed read or write): everything written for it is removed and the error
// returned; an abort is rethrown.
async function captureClaims(
  backup: LocationDir,
  plan: NodeBackupPlan,
  item: Pending,
  signal: AbortSignal | undefined,
): Promise<ClaimCapture> {
  const { vm } = item;
  const opts = signal ? { signal } : {};
  const out: CapturedClaims = { blockDisks: [], filesystemDisks: [], clones: [] };
  try {
    await forgetEarlierCapture(backup, vm);
    for (const claim of claimsOf(item)) {
      signal?.throwIfAborted();
      const source: ClaimDiskSource = {
        kind: claim.sourceKind ?? "PersistentVolumeClaim",
        claimName: claim.claimName,
        ...(claim.accessModes?.length ? { accessModes: [...claim.accessModes] } : {}),
        ...(claim.storageClassName ? { storageClassName: claim.storageClassName } : {}),
        ...(claim.sizeBytes !== undefined ? { sizeBytes: claim.sizeBytes } : {}),
      };
      const how = { method: claim.snapshotMethod ?? "Copy", ...(claim.why ? { why: claim.why } : {}) };
      try {
        if (claim.volumeMode === "Filesystem" && claim.snapshotMethod === "Reflink") {
          // Only the clone in the window; it is extracted after the thaw (extractClaimClones).
          const cloned = await cloneClaimDisk(
            rootOf(plan.claimsRoot, "claimsRoot"),
            claim.readFrom ?? claim.claimName,
            plan.backup.uid,
          );
          out.clones.push({ claim, source, how, image: cloned });
        } else if (claim.volumeMode === "Filesystem") {
          const target = backupFilesystemDiskPath(vm.namespace, vm.name, claim.volume);
          const disk = await withRoot(rootOf(plan.claimsRoot, "claimsRoot"), (claims) =>
            withFile(claims, claimDiskImage(claim), async (image) => {
              const info = await image.stat();
              const copied = await backup.commit(target, (sink) => copyAndHash(image, sink, opts));
              return { ...copied, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
            }),
          );
          out.filesystemDisks.push({ name: claim.volume, source, volumeMode: "Filesystem", ...how, ...disk });
        } else {
          const target = backupBlockDiskPath(vm.namespace, vm.name, claim.volume);
          const device = posix.join(rootOf(plan.devicesRoot, "devicesRoot"), claim.readFrom ?? claim.claimName);
          const layout = await backup.commit(target, (sink) => extractBlockDevice(device, sink, opts));
          out.blockDisks.push({ name: claim.volume, source, volumeMode: "Block", ...how, ...layout });
        }
      } catch (err) {
        throw new ClaimError(claim, err);
      }
    }
    return { ok: true, ...out };
  } catch (err) {
    if (signal?.aborted) throw err;
    await removeCapturedData(backup, vm);
    return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

// Extracts the VM's Reflink clones (captureClaims) to the location after the thaw, as captureClaims copies a
// disk.img, each with its sha256, into `claims.filesystemDisks`, in the order of the VM's claims. A failure
// throws a ClaimError; the caller removes what was written and the clones.
async function extractClaimClones(
  backup: LocationDir,
  plan: NodeBackupPlan,
  item: Pending,
  claims: CapturedClaims,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (claims.clones.length === 0) return;
  const opts = signal ? { signal } : {};
  const { vm } = item;
  for (const { claim, source, how, image } of claims.clones) {
    signal?.throwIfAborted();
    try {
      const target = backupFilesystemDiskPath(vm.namespace, vm.name, claim.volume);
      const copied = await withRoot(rootOf(plan.claimsRoot, "claimsRoot"), (root) =>
        withFile(root, claimClonePath(claim.readFrom ?? claim.claimName, plan.backup.uid), (clone) =>
          backup.commit(target, (sink) => copyAndHash(clone, sink, opts)),
        ),
      );
      claims.filesystemDisks.push({
        name: claim.volume,
        source,
        volumeMode: "Filesystem",
        ...how,
        ...copied,
        ...image,
      });
    } catch (err) {
      throw new ClaimError(claim, err);
    }
  }
  const order = new Map(claimsOf(item).map((c, i) => [c.volume, i]));
  claims.filesystemDisks.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
}

// Removes the clones of the VM's Reflink claims, left by this run or an interrupted one.
async function discardClones(plan: NodeBackupPlan, item: Pending): Promise<void> {
  for (const claim of claimsOf(item)) {
    if (claim.volumeMode !== "Filesystem" || claim.snapshotMethod !== "Reflink") continue;
    await discardClaimClone(rootOf(plan.claimsRoot, "claimsRoot"), claim.readFrom ?? claim.claimName, plan.backup.uid);
  }
}

/** A claim that could not be read or copied; `cause` says why. */
class ClaimError extends Error {
  override readonly name = "ClaimError";
  constructor(
    readonly claim: PlannedClaim,
    cause: unknown,
  ) {
    super(`claim ${claim.claimName} (volume ${claim.volume}, ${claim.volumeMode} mode): ${describeClaimCause(cause)}`, {
      cause,
    });
  }
}

function describeClaimCause(err: unknown): string {
  if (err instanceof ClaimCloneError) return err.message;
  const unsafe = unsafeCause(err);
  if (unsafe) return `unsafe file on the claim: ${unsafe.message}`;
  if (err instanceof BlockDeviceError) return err.message;
  if (isCode(err, "ENOENT")) return "no disk.img at the root of the claim (or the claim is not mounted)";
  return errorMessage(err);
}

function describeClaimError(err: Error): string {
  return err instanceof ClaimError
    ? `copying a claim failed: ${err.message}`
    : `copying the claims failed: ${err.message}`;
}

// The disk.img of a Filesystem-mode claim, relative to claimsRoot: through the claim's directory, so that
// a claim directory swapped for a symlink is refused like the file.
const claimDiskImage = (claim: PlannedClaim): string =>
  posix.join(checkName("claim name", claim.readFrom ?? claim.claimName), "disk.img");

function rootOf(root: string | undefined, what: string): string {
  if (root === undefined) throw new Error(`the plan has no ${what} to find the claims in`);
  return root;
}

const inconsistentNote =
  "the files were copied byte by byte while the guest was not frozen, so they are not a point-in-time image";

export function consistencyOf(indication: Indication, pointInTime: boolean): Consistency {
  if (indication === "GuestAgent") return "ApplicationConsistent";
  return pointInTime ? "CrashConsistent" : "Inconsistent";
}

// What the step lets the agent read for the VM's definition.
const definitionRequest = (item: Pending) => ({
  ...item.vm,
  ...(item.workload.dataVolumes ? { dataVolumes: item.workload.dataVolumes } : {}),
  ...(item.workload.secrets ? { secrets: item.workload.secrets } : {}),
});

// How many Secrets a complete manifest of an earlier attempt stored (undefined without them, or unreadable:
// the count is a report, the capture stays complete).
async function storedSecretsCount(backup: LocationDir, manifest: WorkloadManifest): Promise<number | undefined> {
  if (!manifest.secrets) return undefined;
  const { namespace, name } = manifest.workload;
  return (await readVerifiedSecrets(backup, namespace, name, manifest).catch(() => undefined))?.secrets.length;
}

/** `secrets`: how many Secrets the VM's secrets.json holds, when it has one. */
function capturedFromManifest(manifest: WorkloadManifest, reused: boolean, secrets?: number): CapturedWorkload {
  const entry: CapturedWorkload = {
    namespace: manifest.workload.namespace,
    name: manifest.workload.name,
    uid: manifest.workload.uid,
    bytes: manifest.totalBytes,
    // Every disk: the files and the claims.
    files: manifest.files.length + (manifest.blockDisks?.length ?? 0) + (manifest.filesystemDisks?.length ?? 0),
    indication: manifest.indication,
    consistency: manifest.consistency,
    freezeWindowMs: manifest.freeze.windowMs,
    manifestPath: workloadManifestPath(manifest.workload.namespace, manifest.workload.name),
    reused,
    definition: manifest.definition !== undefined,
  };
  if (manifest.secrets && secrets !== undefined) entry.secrets = secrets;
  if (manifest.message !== undefined) entry.message = manifest.message;
  const first = manifest.files[0] ?? manifest.filesystemDisks?.[0] ?? manifest.blockDisks?.[0];
  if (first) entry.sha256 = first.sha256;
  return entry;
}

// Old and new files must never mix under one manifest: before the first new file is written, the old
// manifest goes (durably, so that it cannot reappear next to half-written files after a crash), then the
// old files and the temporary files of an interrupted attempt. This happens only once a new capture
// exists, so a VM that cannot be captured now keeps its capture from an earlier round.
async function forgetEarlierCapture(backup: LocationDir, vm: VmRef): Promise<void> {
  await backup.remove(workloadManifestPath(vm.namespace, vm.name));
  for (const dir of dataDirs(vm)) await backup.removeTree(dir);
  await removeDefinitionFiles(backup, vm.namespace, vm.name);
}

// Where a VM's data is at the location: files/, and claims/ and devices/ for its disks on claims.
const dataDirs = (vm: VmRef): string[] =>
  ["files", "claims", "devices"].map((dir) => posix.join(workloadDir(vm.namespace, vm.name), dir));

// After a failed capture (no manifest was written): what it wrote goes, so that nothing unlisted stays.
async function removeCapturedData(backup: LocationDir, vm: VmRef): Promise<void> {
  for (const dir of dataDirs(vm)) await backup.removeTree(dir).catch(() => {});
  await removeDefinitionFiles(backup, vm.namespace, vm.name).catch(() => {});
}

// A path that safe-fs refused (a symlink, a hard link, a FIFO or device, a directory swapped meanwhile)
// fails the VM with UnsafeFile; every other failure is CaptureFailed.
function reasonOf(err: unknown): FailedReason {
  if (err instanceof ClaimError && err.cause instanceof ClaimCloneError && err.cause.unsupported)
    return "ReflinkNotSupported";
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
  const claims = workload.claims ?? [];
  if (workload.files.length === 0 && claims.length === 0) {
    return { reason: "NoSharedDisk", message: "it has no disk file on the shared volume and no disk on a claim" };
  }
  const volumes = new Set<string>();
  const claimNames = new Set<string>();
  for (const claim of claims) {
    try {
      checkName("disk name", claim.volume);
      checkName("claim name", claim.claimName);
      if (claim.readFrom !== undefined) checkName("claim name", claim.readFrom);
    } catch (err) {
      return { reason: "CaptureFailed", message: errorMessage(err) };
    }
    if (!["Filesystem", "Block"].includes(claim.volumeMode)) {
      return { reason: "CaptureFailed", message: `claim ${claim.claimName} has volume mode ${claim.volumeMode}` };
    }
    if (claim.sourceKind !== undefined && !["PersistentVolumeClaim", "DataVolume"].includes(claim.sourceKind)) {
      return { reason: "CaptureFailed", message: `claim ${claim.claimName} has source kind ${claim.sourceKind}` };
    }
    if (volumes.has(claim.volume))
      return { reason: "CaptureFailed", message: `volume ${claim.volume} is listed twice` };
    if (claimNames.has(claim.claimName)) {
      return { reason: "CaptureFailed", message: `claim ${claim.claimName} is listed for two volumes` };
    }
    volumes.add(claim.volume);
    claimNames.add(claim.claimName);
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
  if (files.length === 0) return undefined;
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

// Before any freeze: each claim's disk must be there and safe to read (the copy checks again, as it opens it).
async function claimSourceProblem(
  plan: NodeBackupPlan,
  claims: readonly PlannedClaim[],
): Promise<{ reason: FailedReason; message: string } | undefined> {
  for (const claim of claims) {
    try {
      if (claim.volumeMode === "Filesystem") {
        await withRoot(rootOf(plan.claimsRoot, "claimsRoot"), async (root) => {
          await (await root.openFile(claimDiskImage(claim))).close();
        });
      } else {
        await (
          await openBlockDevice(
            posix.join(rootOf(plan.devicesRoot, "devicesRoot"), claim.readFrom ?? claim.claimName),
            O_RDONLY,
          )
        ).close();
      }
    } catch (err) {
      const problem = new ClaimError(claim, err);
      return { reason: reasonOf(err), message: `cannot capture ${problem.message}` };
    }
  }
  return undefined;
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
