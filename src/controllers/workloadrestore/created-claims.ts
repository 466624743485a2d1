// The claims a restore creates for a VM it creates, and the claims VMs name now (which it must not take).
import type { VirtualMachine } from "../../api/kubevirt.js";
import type { NodeRestoreSpecWorkloadClaim, WorkloadRestore } from "../../api/v1alpha1/index.js";
import type { KubeObject } from "../../k8s/types.js";
import type { WorkloadRef } from "../../planning/index.js";
import { claimsNamedByVolume } from "../../planning/recreated-vm.js";

/** On a claim a restore created: "<namespace>/<WorkloadRestore>". */
export const ANNOTATION_CREATED_BY_RESTORE = "fedbackup.io/created-by-restore";
/** On a DataVolume's claim: CDI takes the claim as populated for the DataVolume of that name. */
export const ANNOTATION_CDI_POPULATED_FOR = "cdi.kubevirt.io/storage.populatedFor";
/** What the scheduler writes on a WaitForFirstConsumer claim: the node to provision it for. */
export const ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node";

/**
 * A claim of the captured shape, empty, for the restore Job to write. Its Job is pinned to `node` by nodeName,
 * bypassing the scheduler, so the claim carries the scheduler's selected-node itself: a WaitForFirstConsumer
 * class provisions it there. A DataVolume's claim is marked populated for CDI, which then adopts it.
 */
export function createdClaim(
  restore: WorkloadRestore,
  vm: WorkloadRef,
  claim: NodeRestoreSpecWorkloadClaim,
  node: string,
): KubeObject {
  const shape = claim.create!;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: claim.claimName,
      namespace: vm.namespace,
      // Not managed-by fedbackup: once restored the claim is the VM's, like any other of its claims.
      annotations: {
        [ANNOTATION_CREATED_BY_RESTORE]: `${restore.metadata.namespace}/${restore.metadata.name}`,
        [ANNOTATION_SELECTED_NODE]: node,
        ...(claim.sourceKind === "DataVolume" ? { [ANNOTATION_CDI_POPULATED_FOR]: claim.claimName } : {}),
      },
    },
    spec: {
      accessModes: [...shape.accessModes],
      volumeMode: claim.volumeMode,
      ...(shape.storageClassName ? { storageClassName: shape.storageClassName } : {}),
      resources: { requests: { storage: shape.storage } },
    },
  } as KubeObject;
}

/** Every claim a VirtualMachine names now, as "namespace/name", whatever the volume's kind (claimsNamedByVolume). */
export function claimsNamedBy(vms: readonly VirtualMachine[]): Set<string> {
  const named = new Set<string>();
  for (const vm of vms) {
    for (const volume of vm.spec?.template?.spec?.volumes ?? []) {
      for (const claim of claimsNamedByVolume(volume as unknown as Record<string, unknown>)) {
        if (typeof claim === "string") named.add(`${vm.metadata.namespace}/${claim}`);
      }
    }
  }
  return named;
}
