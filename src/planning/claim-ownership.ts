// Which claims a restore may write for each VM. A restore writes a VM's disks in place, so a claim that
// two VMs name (a disk shared between them) would change the other VM's disk too: such a claim is given
// to neither, and a backup holding it fails its VM (ForeignFile) before anything is written, as a file
// two VMs name does on the shared volume (file-ownership.ts).
import { compareStrings } from "./compare.js";
import type { PlannedClaim, WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

/** The claims one VM's current spec names (and that are Bound: vm-disks.ts leaves out the others). */
export interface ClaimsOfVm {
  workload: WorkloadRef;
  claims: readonly PlannedClaim[];
}

/** By workloadKey, the claims each VM alone names, sorted by volume; VMs left with none are left out. */
export function exclusiveClaims(vms: readonly ClaimsOfVm[]): Map<string, PlannedClaim[]> {
  const namedBy = new Map<string, Set<string>>();
  for (const { workload, claims } of vms) {
    for (const claim of claims) {
      const key = `${workload.namespace}/${claim.claimName}`;
      const owners = namedBy.get(key) ?? new Set<string>();
      owners.add(workloadKey(workload));
      namedBy.set(key, owners);
    }
  }
  const result = new Map<string, PlannedClaim[]>();
  for (const { workload, claims } of vms) {
    const own = claims
      .filter((c) => namedBy.get(`${workload.namespace}/${c.claimName}`)!.size === 1)
      .sort((a, b) => compareStrings(a.volume, b.volume));
    if (own.length > 0) result.set(workloadKey(workload), own);
  }
  return result;
}
