// The CSI snapshot method (spec.snapshot.method CSI): the cut point is a VolumeSnapshot of the whole shared
// claim, and the files are read from a claim restored from it. A step takes two Jobs on its node:
//
//   1. the step's Job (`agent backup --step NS/NAME`): freezes the node's VMs, creates the
//      snapshot.storage.k8s.io/v1 VolumeSnapshot `<step>` of the shared claim (owned by the NodeSnapshot,
//      class from the spec), waits until its status.creationTime is set (the cut point; the freeze is still
//      bounded by maxFreeze), thaws, and reports the snapshot's name and the per-VM freeze windows and
//      indications in the step's status.volumeSnapshot (and the VMs it could not capture in status.failed).
//   2. the operator then creates the PVC `<step>-snapshot` restored from it and the Job `<step>-extract`
//      (`agent backup --step NS/NAME --from-snapshot`, that claim mounted as the shared volume): it extracts
//      the files with sha256 and writes the manifests as any other method does, freezing nothing, and reports
//      `captured`. Then the operator deletes the restored claim and (unless extractAt Restore) the snapshot.
//
// Every name derives from the step's, and each Job derives what to do from what exists: a retried snapshot
// Job deletes the VolumeSnapshot of an interrupted attempt (its freeze windows are unknown) and takes a new
// one; a retried extract Job skips the VMs whose manifests are complete.
import { rfc3339 } from "../api/timestamps.js";
import type { NodeSnapshot, NodeSnapshotStatusVolumeSnapshot } from "../api/v1alpha1/index.js";
import type { KubeClient } from "../k8s/client.js";
import { isNotFound } from "../k8s/errors.js";
import { Resources } from "../k8s/resources.js";
import type { KubeObject } from "../k8s/types.js";
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
  /** Absent when no VM was left to capture (nothing was snapshotted). */
  volumeSnapshot?: NodeSnapshotStatusVolumeSnapshot;
  failed: FailedWorkload[];
}

const iso = (ms: number | null): string | undefined => (ms === null ? undefined : rfc3339(ms));

/** Step 1 of the CSI method: freeze, VolumeSnapshot of the shared claim until its cut point, thaw. */
export async function takeVolumeSnapshot(
  step: NodeSnapshot & KubeObject,
  timing: { freezeTimeoutMs: number; maxFreezeMs: number },
  deps: CsiSnapshotDeps,
): Promise<CsiSnapshotResult> {
  const { client, log } = deps;
  const ns = step.metadata.namespace!;
  const name = step.metadata.name!;
  const failed: FailedWorkload[] = [];
  const vms: VmRef[] = [];
  for (const w of step.spec.workloads ?? []) {
    if (w.files.length === 0)
      failed.push({ ...ref(w), reason: "NoSharedDisk", message: "it has no disk file on the shared volume" });
    else vms.push(ref(w));
  }

  // Before any freeze: an earlier attempt's snapshot has no known freeze window, so it goes.
  await deleteAndWait(client, ns, name, deps.pollMs ?? 200);
  if (vms.length === 0) return { failed };

  let cut: string | undefined;
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
      await client.create(Resources.VolumeSnapshot, {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshot",
        metadata: {
          name,
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
              // deletes the snapshot itself when the step releases its Lease; the collector removes a leftover.
              blockOwnerDeletion: false,
            },
          ],
        },
        spec: {
          volumeSnapshotClassName: step.spec.snapshot.volumeSnapshotClassName,
          source: { persistentVolumeClaimName: sharedClaimOf(step) },
        },
      } as KubeObject);
      // The cut point is when the snapshot controller sets creationTime (readyToUse may come much later).
      // The wait is not bounded here: maxFreeze thaws the guests meanwhile (FreezeBudgetExceeded), and the
      // Job's activeDeadlineSeconds (nodeTimeout) ends a snapshot that never comes.
      for (;;) {
        session.signal.throwIfAborted();
        const vs = await client.get<VolumeSnapshotObject>(Resources.VolumeSnapshot, ns, name);
        if (vs.status?.creationTime) {
          cut = vs.status.creationTime;
          return;
        }
        if (vs.status?.error?.message) throw new Error(`VolumeSnapshot ${name}: ${vs.status.error.message}`);
        await new Promise((r) => setTimeout(r, deps.pollMs ?? 200));
      }
    },
  );
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
  if (!cut) return { failed };
  log.info("VolumeSnapshot taken", { volumeSnapshot: name, creationTime: cut, vms: workloads.length });
  return { volumeSnapshot: { name, creationTime: cut, workloads }, failed };
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

async function deleteAndWait(client: KubeClient, ns: string, name: string, pollMs: number): Promise<void> {
  try {
    await client.delete(Resources.VolumeSnapshot, ns, name);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  for (let i = 0; i < 600; i++) {
    try {
      await client.get(Resources.VolumeSnapshot, ns, name);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`the VolumeSnapshot ${name} of an earlier attempt is still being deleted`);
}

/** The CSI method snapshots the shared volume: a step without one has no files to snapshot. */
function sharedClaimOf(step: NodeSnapshot): string {
  if (!step.spec.sharedVolume) throw new Error(`step ${step.metadata.name} names no shared volume to snapshot`);
  return step.spec.sharedVolume.claimName;
}
