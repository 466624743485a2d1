// The group path of the CSI method for claims: a VM whose CSI claims all have a VolumeGroupSnapshotClass
// (spec.workloads[].claims[].groupSnapshot, decided by the operator) is cut in one VolumeGroupSnapshot
// (groupsnapshot.storage.k8s.io/v1beta2), so its disks are cut at one instant by the storage, not only
// within one freeze window. A VolumeGroupSnapshot selects claims by label only: the step's Job labels the
// VM's claims with a value unique to the step and the VM (groupSnapshotName), creates the group selecting
// that label inside the freeze, waits for the group's cut point (status.creationTime), thaws, and then
// finds the member VolumeSnapshots the snapshot controller made: v1beta2 lists them nowhere in the group's
// status, they are the VolumeSnapshots of the namespace owned by the group, one per claim
// (spec.source.persistentVolumeClaimName). They are recorded in status.claimSnapshots as single snapshots
// are, so the operator restores and extracts them the same way. The labels come off once the members are
// known (the selector is read when the group is cut; a label removed earlier could drop a claim).
//
// A member cannot be deleted on its own while its group exists (the snapshot controller keeps it, finalizer
// snapshot.storage.kubernetes.io/volumesnapshot-in-group-protection): deleting the group deletes its
// members. So a retried Job deletes an earlier attempt's group (not its members), and the operator deletes
// the groups after the extraction.
import type { NodeSnapshot, NodeSnapshotStatusClaimSnapshot } from "../api/v1alpha1/index.js";
import type { KubeClient } from "../k8s/client.js";
import { isNotFound } from "../k8s/errors.js";
import { Resources } from "../k8s/resources.js";
import type { KubeObject } from "../k8s/types.js";
import { GROUP_SNAPSHOT_LABEL, groupSnapshotName } from "../planning/group-snapshot-names.js";
import { vmGroupSnapshotClass } from "../planning/vm-group-cut.js";
import type { VmRef } from "./types.js";

type StepWorkload = NonNullable<NodeSnapshot["spec"]["workloads"]>[number];
type StepClaim = NonNullable<StepWorkload["claims"]>[number];

interface GroupSnapshotObject extends KubeObject {
  status?: { creationTime?: string; readyToUse?: boolean; error?: { message?: string } };
}
interface MemberObject extends KubeObject {
  spec?: { source?: { persistentVolumeClaimName?: string } };
  status?: { creationTime?: string };
}

/** One VM's claims cut in one VolumeGroupSnapshot. */
export interface GroupCut {
  vm: VmRef;
  /** The VolumeGroupSnapshot's name, also the value of its claims' label. */
  name: string;
  className: string;
  claims: StepClaim[];
}

/**
 * The group cut of a VM whose claims cut with CSI (`csiClaims`) are all marked groupSnapshot, with one
 * class; undefined otherwise (the VM's claims are cut one VolumeSnapshot each).
 */
export function groupCutOf(step: string, w: StepWorkload, csiClaims: readonly StepClaim[]): GroupCut | undefined {
  const className = vmGroupSnapshotClass(csiClaims);
  if (!className) return undefined;
  const vm = { namespace: w.namespace, name: w.name };
  return { vm, name: groupSnapshotName(step, vm), className, claims: [...csiClaims] };
}

/** Puts (value) or takes off (null) the group's label on its claims; a claim that is gone is skipped. */
export async function labelClaims(client: KubeClient, ns: string, cut: GroupCut, on: boolean): Promise<void> {
  for (const c of cut.claims) {
    try {
      await client.patch(Resources.PersistentVolumeClaim, ns, c.claimName, {
        metadata: { labels: { [GROUP_SNAPSHOT_LABEL]: on ? cut.name : null } },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** Creates the VolumeGroupSnapshot, owned by the step as the single snapshots are (see csi.ts). */
export function createGroupSnapshot(client: KubeClient, step: NodeSnapshot & KubeObject, cut: GroupCut) {
  return client.create(Resources.VolumeGroupSnapshot, {
    apiVersion: "groupsnapshot.storage.k8s.io/v1beta2",
    kind: "VolumeGroupSnapshot",
    metadata: {
      name: cut.name,
      namespace: step.metadata.namespace!,
      labels: { ...step.metadata.labels },
      ownerReferences: [
        {
          apiVersion: step.apiVersion,
          kind: step.kind,
          name: step.metadata.name!,
          uid: step.metadata.uid!,
          controller: true,
          blockOwnerDeletion: false,
        },
      ],
    },
    spec: {
      volumeGroupSnapshotClassName: cut.className,
      source: { selector: { matchLabels: { [GROUP_SNAPSHOT_LABEL]: cut.name } } },
    },
  } as KubeObject);
}

/** The group's cut point once the snapshot controller has set it; undefined while it has not. */
export async function groupCutPoint(client: KubeClient, ns: string, name: string): Promise<string | undefined> {
  const vgs = await client.get<GroupSnapshotObject>(Resources.VolumeGroupSnapshot, ns, name);
  if (vgs.status?.error?.message) throw new Error(`VolumeGroupSnapshot ${name}: ${vgs.status.error.message}`);
  return vgs.status?.creationTime;
}

/**
 * The group's member VolumeSnapshots as claim snapshots of the VM, once one exists for each of its claims.
 * A group that is ready without a member for one of the claims fails: its cut missed that disk.
 */
export async function groupMembers(
  client: KubeClient,
  ns: string,
  cut: GroupCut,
  creationTime: string,
  pollMs: number,
): Promise<NodeSnapshotStatusClaimSnapshot[]> {
  for (;;) {
    const vgs = await client.get<GroupSnapshotObject>(Resources.VolumeGroupSnapshot, ns, cut.name);
    const owned = (await client.list<MemberObject>(Resources.VolumeSnapshot, { namespace: ns })).items.filter((vs) =>
      vs.metadata.ownerReferences?.some((o) => o.kind === "VolumeGroupSnapshot" && o.uid === vgs.metadata.uid),
    );
    const byClaim = new Map(owned.map((vs) => [vs.spec?.source?.persistentVolumeClaimName, vs]));
    const missing = cut.claims.filter((c) => !byClaim.has(c.claimName));
    if (missing.length === 0)
      return cut.claims.map((c) => {
        const member = byClaim.get(c.claimName)!;
        return {
          ...cut.vm,
          volume: c.volume,
          claimName: c.claimName,
          volumeMode: c.volumeMode,
          volumeSnapshot: member.metadata.name!,
          creationTime: member.status?.creationTime ?? creationTime,
        };
      });
    if (vgs.status?.readyToUse)
      throw new Error(
        `VolumeGroupSnapshot ${cut.name} is ready without a snapshot of claim ${missing.map((c) => c.claimName).join(", ")}`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
