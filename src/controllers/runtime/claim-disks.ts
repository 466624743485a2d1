// The VMs' disks that are claims, as the backup planner needs them: which claims of its namespace each
// VM's volumes name (directly or through a DataVolume), and why one cannot be captured. The decisions
// are vm-disks.ts's; this reads the claims from the API objects and keeps what concerns claims.
import type { VirtualMachineInstance } from "../../api/kubevirt.js";
import type { ClaimProblemReason, ObservedWorkload, PlannedClaim } from "../../planning/index.js";
import { classifyVmDisks, type ObservedClaim } from "../../planning/vm-disks.js";
import { parseQuantity } from "./quantity.js";

/** A PersistentVolumeClaim as the API server returns it, in the fields read here. */
export interface ClaimObject {
  metadata: { name?: string; namespace?: string };
  spec?: { volumeMode?: string; accessModes?: string[]; storageClassName?: string };
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

/** Whether a VMI names any claim (a persistentVolumeClaim or a dataVolume volume). */
export function namesClaims(vmi: VirtualMachineInstance): boolean {
  return (vmi.spec?.volumes ?? []).some((v) => v.persistentVolumeClaim || v.dataVolume);
}

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
  const planned: PlannedClaim[] = disks.disks.flatMap((d) =>
    d.kind === "claim"
      ? [
          {
            volume: d.volumes[0]!,
            claimName: d.claimName,
            sourceKind: d.source === "dataVolume" ? "DataVolume" : "PersistentVolumeClaim",
            volumeMode: d.volumeMode,
          },
        ]
      : [],
  );
  return { ...workload, claims: planned };
}
