// The storage back ends a run works on, from its node steps (NodeSnapshots or NodeRestores): the keys of
// the Leases it holds (planning/storage-group.ts). Recomputed on every pass from the steps and the claims'
// StorageClasses, so a restarted operator finds the same keys, and the Leases it took, again.
import { nodeStepStorageKeys, type StepDisks, type StorageGroupOptions } from "../../planning/storage-group.js";
import type { VmDisk } from "../../planning/disks.js";

/** A VM of a step, in the fields that say where its disks live. */
export interface StepStorage {
  namespace: string;
  /** Its files on the shared volume, relative to the volume's root. */
  files?: readonly string[];
  /**
   * Its claims, of its namespace. A backup step records each claim's StorageClass when it was planned
   * (absent for a claim without one, and in restore steps, which name their claims only).
   */
  claims?: readonly {
    claimName: string;
    volumeMode?: "Filesystem" | "Block";
    storageClassName?: string;
    /** A claim a restore creates, with the class it is created with (it may not exist yet to be read). */
    create?: { storageClassName?: string };
  }[];
}

/** At most this many keys are listed in a run's status (the Leases are taken whatever their number). */
export const MAX_LISTED_STORAGE_BACKENDS = 32;

export const claimRef = (namespace: string, claimName: string): string => `${namespace}/${claimName}`;

/**
 * The sorted keys of every back end the VMs of `workloads` live on: the shared volume when one has files
 * (and the run has a shared volume: without one a VM with files is never planned), each claim's StorageClass
 * from `storageClasses` (by claimRef; a claim whose class is unknown or empty is keyed by itself), or the
 * group the user named for all claims.
 */
export function runStorageKeys(
  workloads: readonly StepStorage[],
  storageClasses: ReadonlyMap<string, string>,
  options: StorageGroupOptions,
): string[] {
  const steps: StepDisks[] = workloads.map((w) => {
    const disks: VmDisk[] = [];
    const file = w.files?.[0];
    if (file !== undefined && options.sharedVolumeIdentity) {
      disks.push({ kind: "hostDisk", volumes: [], path: file, sharedPath: file });
    }
    for (const c of w.claims ?? []) {
      const storageClassName = storageClasses.get(claimRef(w.namespace, c.claimName));
      disks.push({
        kind: "claim",
        volumes: [],
        claimName: c.claimName,
        source: "persistentVolumeClaim",
        volumeMode: c.volumeMode ?? "Filesystem",
        accessModes: [],
        ...(storageClassName ? { storageClassName } : {}),
      });
    }
    return { workload: { namespace: w.namespace }, disks };
  });
  return nodeStepStorageKeys(steps, options);
}

/** The StorageClasses the steps recorded, by claimRef: no claim needs to be read for them. */
export function recordedClasses(workloads: readonly StepStorage[]): Map<string, string> {
  return new Map(
    workloads.flatMap((w) =>
      (w.claims ?? []).flatMap((c) =>
        c.storageClassName || c.create?.storageClassName
          ? [[claimRef(w.namespace, c.claimName), c.storageClassName ?? c.create!.storageClassName!]]
          : [],
      ),
    ) as Array<[string, string]>,
  );
}

/** The claims of `workloads` whose StorageClass `known` does not hold yet (claimRef, sorted, each once). */
export function claimsToLookUp(workloads: readonly StepStorage[], known: ReadonlyMap<string, string>): string[] {
  const refs = new Set(workloads.flatMap((w) => (w.claims ?? []).map((c) => claimRef(w.namespace, c.claimName))));
  return [...refs].filter((r) => !known.has(r)).sort();
}
