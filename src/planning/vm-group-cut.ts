// Whether a VM's claims are cut in one VolumeGroupSnapshot: the step's Job does it (agent/csi.ts) and the
// operator grants it the access and deletes the group after (controllers/federatedbackup), so both ask here.
// A group is taken through one class, so it needs every claim the VM cuts with CSI marked groupSnapshot with
// the same VolumeGroupSnapshotClass; otherwise the VM's claims are cut one VolumeSnapshot each, as before.

/** A claim of a step's VM, in the fields the choice reads. */
export interface GroupCutClaim {
  groupSnapshot?: boolean;
  volumeGroupSnapshotClassName?: string;
}

/** The VolumeGroupSnapshotClass a VM's CSI claims are cut with together; undefined when they are not. */
export function vmGroupSnapshotClass(csiClaims: readonly GroupCutClaim[]): string | undefined {
  const className = csiClaims[0]?.volumeGroupSnapshotClassName;
  if (!className) return undefined;
  return csiClaims.every((c) => c.groupSnapshot === true && c.volumeGroupSnapshotClassName === className)
    ? className
    : undefined;
}
