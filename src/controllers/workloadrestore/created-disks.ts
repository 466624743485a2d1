// The disks of a VM the restore creates (its VirtualMachine is gone, or it is a copy): what its capture
// holds, under the target's names (copy-names.ts). Pure.
//
// Nothing is written that another VM names: a VM created with a claim or file another VM uses would make
// the restore overwrite that VM's disk. A claim of the target's name that exists and no VM names (the
// deleted VM's own claim, kept) is written in place; a claim that does not exist is created with the
// captured shape, its StorageClass possibly overridden by the restore.
import type { NodeRestoreSpecWorkloadClaim } from "../../api/v1alpha1/index.js";
import { workloadKey, type WorkloadRef } from "../../planning/index.js";
import { copyClaimName, copyFilePath } from "../../planning/copy-names.js";
import type { CaptureContents } from "./resolve.js";

export interface CreatedDisksInput {
  /** The WorkloadRestore's namespace: its Job mounts the claims of this namespace only. */
  restoreNamespace: string;
  source: WorkloadRef;
  target: WorkloadRef;
  capture: CaptureContents;
  /** The claims of the target's namespace now, by name. */
  existingClaims: ReadonlyMap<string, { volumeMode?: string }>;
  /** Every path relative to the shared volume root that a VM or an instance names now. */
  namedFiles: ReadonlySet<string>;
  /** Every claim "namespace/name" that a VM names now. */
  namedClaims: ReadonlySet<string>;
  /** spec.storageClassName: the class of the claims created. */
  storageClassName?: string;
}

export interface CreatedDisks {
  files: string[];
  renamedFiles: Array<{ from: string; to: string }>;
  claims: NodeRestoreSpecWorkloadClaim[];
}

export interface CreatedDisksProblem {
  problem: "ClaimInOtherNamespace" | "DiskInUse" | "ClaimShapeUnknown";
  message: string;
}

export function createdDisks(input: CreatedDisksInput): CreatedDisks | CreatedDisksProblem {
  const { source, target, capture } = input;
  const inUse: string[] = [];
  if (capture.claims.length > 0 && target.namespace !== input.restoreNamespace) {
    return {
      problem: "ClaimInOtherNamespace",
      message:
        `Skipped: ${workloadKey(target)} would have claims in ${target.namespace}, but the restore Job mounts the ` +
        `claims of ${input.restoreNamespace} only; restore it with a WorkloadRestore in ${target.namespace}.`,
    };
  }
  const files: string[] = [];
  const renamedFiles: CreatedDisks["renamedFiles"] = [];
  for (const from of capture.files) {
    const to = copyFilePath(from, source, target);
    if (input.namedFiles.has(to)) inUse.push(`file ${to}`);
    files.push(to);
    if (to !== from) renamedFiles.push({ from, to });
  }
  const claims: NodeRestoreSpecWorkloadClaim[] = [];
  for (const c of capture.claims) {
    const claimName = copyClaimName(c.claimName, source, target);
    if (input.namedClaims.has(`${target.namespace}/${claimName}`)) inUse.push(`claim ${claimName}`);
    const exists = input.existingClaims.has(claimName);
    if (!exists && !c.sizeBytes) {
      return {
        problem: "ClaimShapeUnknown",
        message:
          `Skipped: claim ${claimName} does not exist and the capture does not record ${c.claimName}'s size ` +
          "(a backup made before claim shapes were recorded); create the claim, then restore again.",
      };
    }
    claims.push({
      volume: c.volume,
      claimName,
      ...(c.sourceKind ? { sourceKind: c.sourceKind } : {}),
      volumeMode: c.volumeMode,
      ...(claimName !== c.claimName ? { capturedClaimName: c.claimName } : {}),
      ...(exists
        ? {}
        : {
            create: {
              accessModes: c.accessModes?.length ? [...c.accessModes] : ["ReadWriteOnce"],
              ...(input.storageClassName || c.storageClassName
                ? { storageClassName: input.storageClassName ?? c.storageClassName }
                : {}),
              storage: String(c.sizeBytes),
            },
          }),
    });
  }
  if (inUse.length > 0) {
    return {
      problem: "DiskInUse",
      message:
        `Skipped: ${workloadKey(target)} would be created with ${inUse.join(", ")}, which another VM names; ` +
        "nothing was written. Restore it under another targetName, or free the disk.",
    };
  }
  return { files, renamedFiles, claims };
}
