// The CSI snapshot method: the cut point is a VolumeSnapshot, and the disks are read from a claim restored
// from it. Two things are cut this way: the whole shared claim (spec.snapshot.method CSI), and each claim of
// a VM that the step's spec says is cut with CSI (spec.workloads[].claims[].snapshotMethod, which Auto picks
// where a VolumeSnapshotClass exists for the claim's driver). A step takes two Jobs on its node:
//
//   1. the step's Job (`agent backup --step NS/NAME`): freezes the VMs to cut, creates the
//      snapshot.storage.k8s.io/v1 VolumeSnapshots (`<step>` of the shared claim, claimSnapshotName(step, claim)
//      of each CSI claim of a frozen VM; owned by the NodeSnapshot), waits until each has its
//      status.creationTime (the cut point; the freeze is still bounded by maxFreeze), thaws, and reports
//      them and the per-VM freeze windows and indications in the step's status.volumeSnapshot and
//      status.claimSnapshots (and the VMs it could not capture in status.failed). The same Job captures the
//      step's other VMs (claims resolved to Copy, files with Auto) as any step does.
//   2. the operator then creates the claims restored from them (`<step>-snapshot`, restoredClaimSnapshotName
//      of each claim snapshot) and the Job `<step>-extract` (`agent backup --step NS/NAME --from-snapshot`,
//      the restored shared claim mounted as the shared volume, each restored claim where step 1's Job found
//      the claim's disk): it extracts the files and the claims' disks with sha256 and writes the manifests as
//      any other method does, freezing nothing, and reports `captured`. Then the operator deletes the
//      restored claims and the snapshots (the shared one is kept with extractAt Restore).
//
// A VM whose CSI claims are all on a driver with a VolumeGroupSnapshotClass (claims[].groupSnapshot) is cut
// in one VolumeGroupSnapshot instead, its disks at one instant (csi-group.ts); its members are recorded in
// status.claimSnapshots like the single ones, and the operator deletes the group after the extraction.
//
// Every name derives from the step's, and each Job derives what to do from what exists: a retried snapshot
// Job deletes the VolumeSnapshots (and VolumeGroupSnapshots, taking their claims' labels off) of an
// interrupted attempt (their freeze windows are unknown) and takes new ones; a retried extract Job skips the
// VMs whose manifests are complete.
import { rfc3339 } from "../api/timestamps.js";
import type {
  NodeSnapshot,
  NodeSnapshotStatusClaimSnapshot,
  NodeSnapshotStatusVolumeSnapshot,
} from "../api/v1alpha1/index.js";
import type { KubeClient } from "../k8s/client.js";
import { deleteAndWait } from "./delete-and-wait.js";
import { Resources } from "../k8s/resources.js";
import { claimSnapshotName } from "../planning/claim-snapshot-names.js";
import type { KubeObject } from "../k8s/types.js";
import type { GroupCut } from "./csi-group.js";
import { createGroupSnapshot, groupCutOf, groupCutPoint, groupMembers, labelClaims } from "./csi-group.js";
import type { FailedWorkload, Indication } from "./manifest.js";
import { checkRelativePath } from "./manifest.js";
import type { Freezer, IsActiveOnNode, VmFreezeReport } from "./quiesce.js";
import { withFrozen } from "./quiesce.js";
import { withFile, withRoot } from "./safe-fs.js";
import type { CaptureOutcome, SnapshotFile, SnapshotProvider, SnapshotTarget } from "./snapshot.js";
import type { AgentLog, Clock, VmRef } from "./types.js";
import { errorMessage, vmKey } from "./types.js";

interface VolumeSnapshotObject extends KubeObject {
  status?: { creationTime?: string; readyToUse?: boolean; error?: { message?: string } };
}

export interface CsiSnapshotDeps {
  client: KubeClient;
  freezer: Freezer;
  isActiveOnNode: IsActiveOnNode;
  clock: Clock;
  log: AgentLog;
  /** How often to read the VolumeSnapshot while waiting for its cut point (default 200 ms). */
  pollMs?: number;
}

export interface CsiSnapshotResult {
  /** Absent when no VM was left to capture (nothing was snapshotted); `name` only with the shared claim's. */
  volumeSnapshot?: NodeSnapshotStatusVolumeSnapshot;
  /** The VolumeSnapshots of the frozen VMs' CSI claims. */
  claimSnapshots: NodeSnapshotStatusClaimSnapshot[];
  failed: FailedWorkload[];
}

type StepWorkload = NonNullable<NodeSnapshot["spec"]["workloads"]>[number];

/** Whether a VM of the step is cut by step 1 (see the top): with method CSI all are, else those on CSI claims. */
export function isCutWithCsi(step: NodeSnapshot, w: StepWorkload): boolean {
  return step.spec.snapshot.method === "CSI" || (w.claims ?? []).some((c) => c.snapshotMethod === "CSI");
}

const iso = (ms: number | null): string | undefined => (ms === null ? undefined : rfc3339(ms));

/**
 * Step 1 of the CSI method: freeze, VolumeSnapshots (the shared claim's with method CSI, each CSI claim's)
 * until their cut points, thaw. Only the VMs isCutWithCsi picks; with method CSI, a VM without any disk is
 * NoSharedDisk.
 */
export async function takeVolumeSnapshot(
  step: NodeSnapshot & KubeObject,
  timing: { freezeTimeoutMs: number; maxFreezeMs: number },
  deps: CsiSnapshotDeps,
): Promise<CsiSnapshotResult> {
  const { client, log } = deps;
  const ns = step.metadata.namespace!;
  const name = step.metadata.name!;
  const sharedMethod = step.spec.snapshot.method === "CSI";
  const failed: FailedWorkload[] = [];
  const vms: VmRef[] = [];
  const byVm = new Map<string, StepWorkload>();
  for (const w of step.spec.workloads ?? []) {
    if (!isCutWithCsi(step, w)) continue;
    if (w.files.length === 0 && !(w.claims ?? []).length)
      failed.push({ ...ref(w), reason: "NoSharedDisk", message: "it has no disk file on the shared volume" });
    else {
      vms.push(ref(w));
      byVm.set(vmKey(w), w);
    }
  }
  // With method CSI every claim is cut with CSI (the operator left out the VMs whose claims cannot be).
  const claimCuts = (w: StepWorkload) =>
    (w.claims ?? [])
      .filter((c) => sharedMethod || c.snapshotMethod === "CSI")
      .map((c) => ({ ...c, volumeSnapshot: claimSnapshotName(name, c.claimName) }));

  const groups = new Map<string, GroupCut>();
  for (const [key, w] of byVm) {
    const group = groupCutOf(name, w, claimCuts(w));
    if (group) groups.set(key, group);
  }

  // Before any freeze: an earlier attempt's snapshots have no known freeze window, so they go.
  const pollMs = deps.pollMs ?? 200;
  if (sharedMethod) await deleteAndWait(client, Resources.VolumeSnapshot, ns, name, pollMs);
  for (const [key, w] of byVm) {
    const group = groups.get(key);
    if (group) {
      await deleteAndWait(client, Resources.VolumeGroupSnapshot, ns, group.name, pollMs);
      await labelClaims(client, ns, group, false);
    } else
      for (const c of claimCuts(w)) await deleteAndWait(client, Resources.VolumeSnapshot, ns, c.volumeSnapshot, pollMs);
  }
  if (vms.length === 0) return { failed, claimSnapshots: [] };

  let cut: string | undefined;
  let sharedTaken = false;
  const claimSnapshots: NodeSnapshotStatusClaimSnapshot[] = [];
  /** The groups created, with their cut points. */
  const groupsTaken: Array<{ group: GroupCut; creationTime: string }> = [];
  const labelled: GroupCut[] = [];
  const create = (snapshotName: string, claimName: string, className: string | undefined) =>
    client.create(Resources.VolumeSnapshot, {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: {
        name: snapshotName,
        namespace: ns,
        labels: { ...step.metadata.labels },
        ownerReferences: [
          {
            apiVersion: step.apiVersion,
            kind: step.kind,
            name,
            uid: step.metadata.uid!,
            controller: true,
            // Not blocking: that would need update on the step's finalizers (the API server's
            // OwnerReferencesPermissionEnforcement), a right the agent has no other use for. The operator
            // deletes the snapshots itself when the step is over; the collector removes a leftover.
            blockOwnerDeletion: false,
          },
        ],
      },
      spec: {
        ...(className ? { volumeSnapshotClassName: className } : {}),
        source: { persistentVolumeClaimName: claimName },
      },
    } as KubeObject);
  // The group label comes off whatever happens (a retried Job would take it off too, before its freeze).
  const unlabel = async () => {
    for (const group of labelled) await labelClaims(client, ns, group, false);
  };
  const frozen = await withFrozen(
    vms,
    deps.freezer,
    {
      quiesce: step.spec.snapshot.quiesce,
      freezeTimeoutMs: timing.freezeTimeoutMs,
      maxFreezeMs: timing.maxFreezeMs,
      clock: deps.clock,
      isActiveOnNode: deps.isActiveOnNode,
      log,
    },
    async (session) => {
      if (session.vms.length === 0) return;
      const frozenVms = session.vms.map((vm) => byVm.get(vmKey(vm))!);
      // Every snapshot first, then the waits: the cuts are as close together as the API allows.
      const pending: Array<{ name: string; entry?: NodeSnapshotStatusClaimSnapshot }> = [];
      const sharedClaim = step.spec.sharedVolume?.claimName;
      if (sharedMethod && sharedClaim && frozenVms.some((w) => w.files.length > 0)) {
        await create(name, sharedClaim, step.spec.snapshot.volumeSnapshotClassName);
        sharedTaken = true;
        pending.push({ name });
      }
      const pendingGroups: GroupCut[] = [];
      for (const w of frozenVms) {
        const group = groups.get(vmKey(w));
        if (group) {
          labelled.push(group);
          await labelClaims(client, ns, group, true);
          await createGroupSnapshot(client, step, group);
          pendingGroups.push(group);
          continue;
        }
        for (const c of claimCuts(w)) {
          await create(
            c.volumeSnapshot,
            c.claimName,
            c.volumeSnapshotClassName ?? step.spec.snapshot.volumeSnapshotClassName,
          );
          pending.push({
            name: c.volumeSnapshot,
            entry: {
              ...ref(w),
              volume: c.volume,
              claimName: c.claimName,
              volumeMode: c.volumeMode,
              volumeSnapshot: c.volumeSnapshot,
            },
          });
        }
      }
      // The cut point is when the snapshot controller sets creationTime (readyToUse may come much later).
      // The wait is not bounded here: maxFreeze thaws the guests meanwhile (FreezeBudgetExceeded), and the
      // Job's activeDeadlineSeconds (nodeTimeout) ends a snapshot that never comes.
      let last: string | undefined;
      for (const group of pendingGroups) {
        for (;;) {
          session.signal.throwIfAborted();
          const at = await groupCutPoint(client, ns, group.name);
          if (at) {
            groupsTaken.push({ group, creationTime: at });
            if (!last || Date.parse(at) > Date.parse(last)) last = at;
            break;
          }
          await new Promise((r) => setTimeout(r, pollMs));
        }
      }
      for (const p of pending) {
        for (;;) {
          session.signal.throwIfAborted();
          const vs = await client.get<VolumeSnapshotObject>(Resources.VolumeSnapshot, ns, p.name);
          const at = vs.status?.creationTime;
          if (at) {
            if (p.entry) claimSnapshots.push({ ...p.entry, creationTime: at });
            if (!last || Date.parse(at) > Date.parse(last)) last = at;
            break;
          }
          if (vs.status?.error?.message) throw new Error(`VolumeSnapshot ${p.name}: ${vs.status.error.message}`);
          await new Promise((r) => setTimeout(r, pollMs));
        }
      }
      cut = last;
    },
  ).catch(async (err: unknown) => {
    await unlabel();
    throw err;
  });
  // After the thaw: the members of each group, then the labels off (the selector has been read by then).
  try {
    for (const { group, creationTime } of groupsTaken)
      claimSnapshots.push(...(await groupMembers(client, ns, group, creationTime, pollMs)));
  } finally {
    await unlabel();
  }
  const workloads: NonNullable<NodeSnapshotStatusVolumeSnapshot["workloads"]> = [];
  for (const report of frozen.reports) {
    if (!report.captured) {
      failed.push({ ...report.vm, reason: report.reason, message: report.message });
      continue;
    }
    const startedAt = iso(report.freeze.startedAt);
    const endedAt = iso(report.freeze.endedAt);
    workloads.push({
      ...report.vm,
      indication: report.indication,
      freezeWindowMs: Math.round(report.freeze.windowMs),
      ...(report.message ? { message: report.message } : {}),
      ...(startedAt ? { freezeStartedAt: startedAt } : {}),
      ...(endedAt ? { freezeEndedAt: endedAt } : {}),
      ...(report.thawError ? { thawError: report.thawError } : {}),
    });
  }
  if (!cut) return { failed, claimSnapshots: [] };
  log.info("VolumeSnapshots taken", {
    ...(sharedTaken ? { volumeSnapshot: name } : {}),
    claimSnapshots: claimSnapshots.length,
    ...(groupsTaken.length > 0 ? { volumeGroupSnapshots: groupsTaken.length } : {}),
    creationTime: cut,
    vms: workloads.length,
  });
  return {
    volumeSnapshot: { ...(sharedTaken ? { name } : {}), creationTime: cut, workloads },
    claimSnapshots,
    failed,
  };
}

/** Step 2 of the CSI method: the freeze reports of step 1, as runNodeBackup takes them. */
export function freezeReportsOf(vs: NodeSnapshotStatusVolumeSnapshot): Map<string, VmFreezeReport> {
  const out = new Map<string, VmFreezeReport>();
  for (const w of vs.workloads ?? []) {
    const startedAt = w.freezeStartedAt ? Date.parse(w.freezeStartedAt) : null;
    const endedAt = w.freezeEndedAt ? Date.parse(w.freezeEndedAt) : null;
    out.set(vmKey(w), {
      vm: ref(w),
      captured: true,
      indication: (w.indication ?? "GuestAgent") as Indication,
      freeze: { startedAt, endedAt, windowMs: w.freezeWindowMs ?? 0 },
      ...(w.message ? { message: w.message } : {}),
      ...(w.thawError ? { thawError: w.thawError } : {}),
    });
  }
  return out;
}

/**
 * Reads the files from the claim restored from the VolumeSnapshot, mounted as the shared volume: the
 * "capture" is already done, so capture only describes the files and discard/release have nothing to do
 * (the operator deletes the restored claim and the snapshot). The restored claim is a copy of what tenants
 * wrote: its files are opened through safe-fs.ts, and an unsafe one fails its VM (UnsafeFile).
 */
export class RestoredVolumeSnapshotProvider implements SnapshotProvider {
  readonly method = "CSI";
  readonly freezeScope = "Node";
  readonly pointInTime = true;

  constructor(
    private readonly volumeSnapshot: { namespace: string; name: string },
    private readonly root: string,
  ) {}

  discard(): Promise<void> {
    return Promise.resolve();
  }

  async capture(targets: readonly SnapshotTarget[]): Promise<CaptureOutcome[]> {
    const location = `VolumeSnapshot/${this.volumeSnapshot.namespace}/${this.volumeSnapshot.name}`;
    const out: CaptureOutcome[] = [];
    for (const target of targets) {
      const vm = ref(target);
      try {
        const files = await withRoot(this.root, async (root) => {
          const described: SnapshotFile[] = [];
          for (const path of target.files) {
            const info = await withFile(root, checkRelativePath(path), (file) => file.stat());
            described.push({ path, bytes: info.size, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid });
          }
          return described;
        });
        out.push({ vm, ok: true, snapshot: { method: "CSI", vm, location, root: this.root, dir: "", files } });
      } catch (err) {
        out.push({
          vm,
          ok: false,
          error: new Error(`reading the snapshot failed: ${errorMessage(err)}`, { cause: err }),
        });
      }
    }
    return out;
  }

  release(): Promise<void> {
    return Promise.resolve();
  }
}

const ref = (w: VmRef): VmRef => ({ namespace: w.namespace, name: w.name });
