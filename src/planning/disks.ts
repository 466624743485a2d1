// The disks of a VM as the planners see them: plain data that vm-disks.ts derives from a VMI's volumes
// and the claims of its namespace, and that storage-group.ts works on.

/** A PersistentVolumeClaim of the VM's namespace, as the gather step observed it. */
export interface ObservedClaim {
  name: string;
  /** status.phase: Bound, Pending or Lost. Only Bound claims can be captured. */
  phase: string;
  /** spec.volumeMode; Kubernetes' default is Filesystem. */
  volumeMode: "Filesystem" | "Block";
  /** spec.accessModes (ReadWriteOnce, ReadWriteMany, ReadOnlyMany, ReadWriteOncePod). */
  accessModes: readonly string[];
  /** status.capacity.storage in bytes; unknown while the claim is not bound. */
  capacityBytes?: number;
  /** spec.storageClassName; absent or "" for a claim bound to a statically provisioned volume. */
  storageClassName?: string;
  /** The bound PersistentVolume's spec.csi.driver, when it is a CSI volume. */
  driver?: string;
  /**
   * The filesystem identity of the bound PersistentVolume (what runtime/volume-identity.ts computes),
   * when known: the storage group of a claim without a StorageClass (see storage-group.ts).
   */
  volumeIdentity?: string;
}

/** How the VM names a claim: directly, or through a DataVolume (whose claim has the DataVolume's name). */
export type ClaimSource = "persistentVolumeClaim" | "dataVolume";

/** A hostDisk volume. */
export interface HostDiskDisk {
  kind: "hostDisk";
  /** The VM's volume names that name it, sorted. */
  volumes: string[];
  /** The path as the VM names it on the node. */
  path: string;
  /**
   * The path relative to the shared volume's root when it lies on the shared volume and is the VM's own
   * (file-ownership.ts); absent for a hostDisk elsewhere on the node, which fedbackup cannot capture.
   */
  sharedPath?: string;
}

/** A claim the VM's disks live on, counted once however many volumes name it. */
export interface ClaimDisk {
  kind: "claim";
  /** The VM's volume names that name it, sorted. */
  volumes: string[];
  claimName: string;
  /** dataVolume when any volume names it through a DataVolume: restoring it must leave CDI's object alone. */
  source: ClaimSource;
  volumeMode: "Filesystem" | "Block";
  accessModes: string[];
  sizeBytes?: number;
  storageClassName?: string;
  driver?: string;
  volumeIdentity?: string;
}

export type VmDisk = HostDiskDisk | ClaimDisk;

/** A volume that is not data (container images, cloud-init, config, scratch space): named, never captured. */
export interface SkippedVolume {
  volume: string;
  /** The volume source's field name: containerDisk, cloudInitNoCloud, ephemeral, ... */
  type: string;
}
