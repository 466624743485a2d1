// The VMs' disks that are claims, as the backup planner needs them: which claims of its namespace each
// VM's volumes name (directly or through a DataVolume), and why one cannot be captured. The decisions
// are vm-disks.ts's; this reads the claims from the API objects and keeps what concerns claims.
import type { HostDiskVolume, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import type { ClaimProblemReason, ObservedWorkload, PlannedClaim } from "../../planning/index.js";
import { exclusiveClaims } from "../../planning/claim-ownership.js";
import { classifyVmDisks, type ClaimDisk, type ObservedClaim, type VmDisk } from "../../planning/vm-disks.js";
import { parseQuantity } from "./quantity.js";

/** A PersistentVolumeClaim as the API server returns it, in the fields read here. */
export interface ClaimObject {
  metadata: { name?: string; namespace?: string };
  spec?: { volumeMode?: string; accessModes?: string[]; storageClassName?: string; volumeName?: string };
  status?: { phase?: string; capacity?: Record<string, string> };
}

export function observeClaim(pvc: ClaimObject): ObservedClaim {
  const capacity = pvc.status?.capacity?.storage;
  return {
    name: pvc.metadata.name ?? "",
    phase: pvc.status?.phase ?? "Pending",
    volumeMode: pvc.spec?.volumeMode === "Block" ? "Block" : "Filesystem",
    accessModes: pvc.spec?.accessModes ?? [],
    ...(capacity ? { capacityBytes: parseQuantity(capacity) } : {}),
    ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
  };
}

/** The PersistentVolume each claim is bound to, by claim name (claims not bound yet are left out). */
export const boundVolumesOf = (claims: readonly ClaimObject[]): Map<string, string> =>
  new Map(claims.flatMap((c) => (c.metadata.name && c.spec?.volumeName ? [[c.metadata.name, c.spec.volumeName]] : [])));

/** Whether a VMI names any claim (a persistentVolumeClaim or a dataVolume volume). */
export function namesClaims(vmi: VirtualMachineInstance): boolean {
  return volumesNameClaims(vmi.spec?.volumes);
}

const volumesNameClaims = (volumes: readonly HostDiskVolume[] | undefined): boolean =>
  (volumes ?? []).some((v) => v.persistentVolumeClaim || v.dataVolume);

const CLAIM_REASONS: ReadonlySet<string> = new Set<ClaimProblemReason>([
  "InvalidVolume",
  "ClaimNotFound",
  "ClaimNotBound",
]);

/**
 * The workload with its claims, or with the reason they cannot be captured. Claims are captured only for
 * VMs of the backup's own namespace: a node step's Job runs there, and a pod can mount only claims of its
 * own namespace (ClaimInOtherNamespace otherwise). `claims` are the claims of the backup's namespace.
 */
export function withClaims(
  workload: ObservedWorkload,
  vmi: VirtualMachineInstance,
  backupNamespace: string,
  claims: readonly ObservedClaim[],
): ObservedWorkload {
  if (!namesClaims(vmi)) return workload;
  const claimVolumes = (vmi.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim || v.dataVolume);
  if (workload.namespace !== backupNamespace) {
    return {
      ...workload,
      claimProblem: {
        reason: "ClaimInOtherNamespace",
        detail: `volumes ${claimVolumes.map((v) => JSON.stringify(v.name)).join(", ")} are claims of namespace ${workload.namespace}`,
      },
    };
  }
  const disks = classifyVmDisks({ workload, volumes: vmi.spec?.volumes ?? [], claims });
  const claimVolumeNames = new Set(claimVolumes.map((v) => v.name));
  // Problems of the hostDisks are file-ownership.ts's, already in workload.fileProblem.
  const problem = disks.problems.find(
    (p) => CLAIM_REASONS.has(p.reason) && (p.reason !== "InvalidVolume" || !p.volume || claimVolumeNames.has(p.volume)),
  );
  if (problem) {
    return { ...workload, claimProblem: { reason: problem.reason as ClaimProblemReason, detail: problem.detail } };
  }
  return { ...workload, claims: plannedClaims(disks.disks, "WithShape") };
}

/**
 * The claims among a VM's disks. A backup step records each claim's shape (so that a claim deleted since
 * can be made again like it); a restore step names the claims to write, nothing more.
 */
const plannedClaims = (disks: readonly VmDisk[], detail: "WithShape" | "NamesOnly"): PlannedClaim[] =>
  disks.flatMap((d) =>
    d.kind === "claim"
      ? [
          {
            volume: d.volumes[0]!,
            claimName: d.claimName,
            sourceKind: d.source === "dataVolume" ? "DataVolume" : "PersistentVolumeClaim",
            volumeMode: d.volumeMode,
            ...(detail === "WithShape" ? claimShape(d) : {}),
          },
        ]
      : [],
  );

const claimShape = (claim: ClaimDisk): Partial<PlannedClaim> => ({
  accessModes: [...claim.accessModes],
  ...(claim.storageClassName ? { storageClassName: claim.storageClassName } : {}),
  ...(claim.sizeBytes !== undefined ? { sizeBytes: claim.sizeBytes } : {}),
});

/**
 * The VM's volumes that are not data (containerDisk, cloudInitNoCloud, ...), named in its manifest as
 * skipped. Every VM has them looked at, whatever its disks.
 */
export function withSkippedVolumes(workload: ObservedWorkload, vmi: VirtualMachineInstance): ObservedWorkload {
  const { skipped } = classifyVmDisks({ workload, volumes: vmi.spec?.volumes ?? [], claims: [] });
  return skipped.length > 0 ? { ...workload, skippedVolumes: skipped } : workload;
}

/**
 * The claims each VM of `namespace` may be restored to (by workloadKey): the Bound claims its
 * VirtualMachine's current template names, and no other VM of the namespace names (claim-ownership.ts).
 * A restore stops the VM first, so its VirtualMachine, not an instance, says which disks it has.
 * `claims` are the claims of `namespace`.
 */
export function restorableClaimsNow(
  vms: readonly VirtualMachine[],
  namespace: string,
  claims: readonly ObservedClaim[],
): Map<string, PlannedClaim[]> {
  const named = vms
    .filter((vm) => vm.metadata.namespace === namespace)
    .map((vm) => {
      const workload = { namespace, name: vm.metadata.name! };
      const volumes = vm.spec?.template?.spec?.volumes ?? [];
      return { workload, claims: plannedClaims(classifyVmDisks({ workload, volumes, claims }).disks, "NamesOnly") };
    });
  return exclusiveClaims(named);
}

/** Whether a VirtualMachine's template names any claim. */
export const vmNamesClaims = (vm: VirtualMachine): boolean => volumesNameClaims(vm.spec?.template?.spec?.volumes);
