// The shapes the digest reads and the rows it produces. Inputs are the cluster's objects as plain JSON;
// only the fields named here are read, so the generated API types (and hand-written literals in tests)
// fit them as they are.
import type { DiskKind } from "./disks.js";

/** Metadata fields the digest reads. */
export interface DigestMeta {
  namespace?: string;
  name?: string;
  labels?: Record<string, string>;
  creationTimestamp?: string;
}

/**
 * One entry of a VMI's spec.volumes, as far as its disk layout goes: the data sources. The others
 * (containerDisk, cloudInitNoCloud, ...) are never backed up and not read.
 */
export interface DigestVolume {
  name?: string;
  hostDisk?: unknown;
  persistentVolumeClaim?: { claimName?: string };
  dataVolume?: { name?: string };
}

/** A VirtualMachine: only whether it exists is read. */
export interface DigestVm {
  metadata: DigestMeta;
}

/** A VirtualMachineInstance. */
export interface DigestVmi {
  metadata: DigestMeta;
  spec?: { volumes?: readonly DigestVolume[] };
  status?: {
    phase?: string;
    nodeName?: string;
    migrationState?: { targetNode?: string; completed?: boolean; failed?: boolean };
  };
}

/** A FederatedBackup. */
export interface DigestBackup {
  metadata: DigestMeta;
  status?: { completionTime?: string };
}

/** A VM a step was asked to capture: its files on the shared volume and its claims. */
export interface DigestStepWorkload {
  namespace: string;
  name: string;
  /** Relative to the shared volume's mount path. */
  files?: readonly string[];
  claims?: ReadonlyArray<{ volume: string; claimName: string; sourceKind?: string; volumeMode?: string }>;
}

/** A NodeSnapshot: one step of a backup, with the VMs it captured. */
export interface DigestStep {
  metadata: DigestMeta;
  spec?: { backupName?: string; node?: string; round?: number; workloads?: readonly DigestStepWorkload[] };
  status?: {
    phase?: string;
    startTime?: string;
    completionTime?: string;
    /**
     * definition: whether the capture carries the VM's definition (its VirtualMachine), which a restore
     * needs to re-create a deleted VM. Read as untrusted: only a boolean is taken, anything else is as if
     * absent (as in captures recorded before the field existed).
     */
    captured?: ReadonlyArray<{ namespace: string; name: string; definition?: unknown }>;
  };
}

/** A WorkloadRestore. */
export interface DigestRestore {
  metadata: DigestMeta;
  status?: {
    startTime?: string;
    completionTime?: string;
    results?: ReadonlyArray<{ namespace: string; name: string; phase: string; node?: string }>;
  };
}

/** A Node. */
export interface DigestNode {
  metadata: DigestMeta;
  status?: { conditions?: ReadonlyArray<{ type: string; status: string }> };
}

/** A PersistentVolumeClaim: its volume mode (Kubernetes defaults it to Filesystem). */
export interface DigestClaim {
  metadata: DigestMeta;
  spec?: { volumeMode?: string };
}

export interface DigestInput {
  vmis: readonly DigestVmi[];
  /**
   * The VirtualMachines. When given, a VM known from a capture or restore that has neither a VMI nor a
   * VirtualMachine is Deleted (else, as when they could not be read, Missing).
   */
  vms?: readonly DigestVm[];
  backups: readonly DigestBackup[];
  steps: readonly DigestStep[];
  /** The WorkloadRestores: their status.results say when and where each VM was last restored. */
  restores: readonly DigestRestore[];
  /** When given, rows say whether the VM's node is Ready. */
  nodes?: readonly DigestNode[];
  /** When given, the volume mode of a VM's claims comes from them (else from the VM's last capture). */
  claims?: readonly DigestClaim[];
}

/**
 * One data disk of a VM. A running VM's come from its VMI's spec.volumes; a Missing VM's from its last
 * capture (the capturing step's workloads[] entry), where the files on the shared volume are "file".
 */
export interface DigestDisk {
  /** The volume's name in the VM spec; absent for a file known only from a capture. */
  volume?: string;
  type: "hostDisk" | "persistentVolumeClaim" | "dataVolume" | "file";
  /** A claim's name in the VM's namespace (a DataVolume's claim has the DataVolume's name). */
  claim?: string;
  /** A claim's volume mode: from the claim, else from the VM's last capture; absent when neither says. */
  volumeMode?: "Filesystem" | "Block";
  /** A captured file's path, relative to the shared volume's mount path. */
  file?: string;
}

/** The most recent capture of a VM. */
export interface LastBackup {
  /** The FederatedBackup, "namespace/name". */
  backup: string;
  /** When: the capturing step's status.completionTime, else the backup's (see captureTime). */
  at: string;
  /** The node of the capturing step. */
  node: string;
  /** The verification round of the capturing step. */
  round: number;
  /**
   * Whether the capture carries the VM's definition, so that a restore can re-create the VM: the step's
   * status.captured[].definition. Absent when the step does not say (captures recorded before the field
   * existed carry no definition).
   */
  definition?: boolean;
}

/** The most recent successful restore of a VM. */
export interface LastRestore {
  /** The WorkloadRestore, "namespace/name". */
  restore: string;
  /** The restore's status.completionTime (else its startTime, else its creationTimestamp). */
  at: string;
  /** The node the disks were restored on; "" when the result does not say. */
  node: string;
}

/** One VM: where it is, in what state, and when it was last backed up and restored. */
export interface DigestRow {
  namespace: string;
  name: string;
  /** status.nodeName while the VMI is Running. */
  node?: string;
  /** Whether that node is Ready; only when nodes were given. A node that no longer exists is not Ready. */
  nodeReady?: boolean;
  /**
   * The VMI's status.phase ("Unknown" when it has none); for a VM without a VMI, known from a capture or a
   * restore: "Missing" while its VirtualMachine exists (stopped) or when VirtualMachines could not be read,
   * "Deleted" when neither exists any more.
   */
  phase: string;
  /** A live migration is in progress. */
  migrating: boolean;
  /** The VM's data disks ([] when it has none, or for a Missing VM never captured with its disks listed). */
  disks: DigestDisk[];
  /** The VMI's labels ({} for a Missing or Deleted VM); what label selectors match. */
  labels: Record<string, string>;
  lastBackup?: LastBackup;
  lastRestore?: LastRestore;
  /** Backups (FederatedBackups) holding a capture of this VM; a backup counts once however many steps captured it. */
  backups: number;
  /** Failed steps (NodeSnapshots in phase Failed), of any backup, on the VM's current node. */
  nodeFailures: number;
}

/** What filterDigest keeps; every criterion given must hold. */
export interface DigestCriteria {
  namespace?: string;
  /** A label selector on the VMI's labels: "a=b,c!=d,e,!f", also "a==b", "a in (x,y)", "a notin (x,y)". */
  selector?: string;
  node?: string;
  /** A phase, or several separated by commas; case-insensitive. */
  phase?: string;
  /** Last backed up before this time (VMs never backed up do not qualify: see neverBackedUp). */
  backedUpBefore?: Date;
  /** Last backed up at or after this time. */
  backedUpSince?: Date;
  /** Last restored at or after this time. */
  restoredSince?: Date;
  /** Only VMs without any capture. */
  neverBackedUp?: boolean;
  /** Only VMs whose current node has at least this many failed steps. */
  minNodeFailures?: number;
  /** Only VMs with at least one disk of one of these kinds (see isDiskOfKind). */
  disks?: readonly DiskKind[];
  /**
   * true: only Deleted VMs (in backups only: neither a VirtualMachine nor a VMI exists). Otherwise they
   * are left out: the digest's default is the cluster's VMs. The other criteria apply to Deleted VMs as to
   * any row: they have no node, no labels and no node failures.
   */
  deleted?: boolean;
}

/** The VM key used throughout: "namespace/name". */
export const vmKey = (namespace: string, name: string): string => `${namespace}/${name}`;
