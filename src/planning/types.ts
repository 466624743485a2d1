// Plain data the planner works on. The gather step fills these in from the cluster; the planner
// never sees a Kubernetes object, so every decision can be unit-tested with literals.
import type { SkippedVolume } from "./disks.js";

/** Identifies one VirtualMachineInstance. */
export interface WorkloadRef {
  namespace: string;
  name: string;
}

/** The canonical "namespace/name" string used to compare, deduplicate and sort workloads. */
export const workloadKey = (w: WorkloadRef): string => `${w.namespace}/${w.name}`;

/** A VMI as observed now. */
export interface ObservedWorkload extends WorkloadRef {
  uid: string;
  /** VMI status.phase ("Running", "Pending", "Succeeded", ...). */
  phase: string;
  /** status.nodeName. */
  node?: string;
  /** A live migration is in progress (migrationState present, not completed/failed). */
  migrating: boolean;
  /** Labelled fedbackup.io/critical=true. */
  critical: boolean;
  /** From label fedbackup.io/priority (integer, default 0). */
  priority: number;
  /** Disk/extra file paths relative to the shared volume root; empty = no disk on the shared volume. */
  files: string[];
  /**
   * A path the VM names that is not its own (see file-ownership.ts), or hostDisk files in a run without a
   * shared volume (NoSharedDisk): the VM is not captured, and this says why (the detail names the path and,
   * for SharedFile, the other VM).
   */
  fileProblem?: { reason: "SharedFile" | "UnsafeFile" | "NoSharedDisk"; detail: string };
  /** Its disks that are claims of its namespace (see vm-disks.ts); absent or empty when it has none. */
  claims?: PlannedClaim[];
  /** Why its claims cannot be captured (the first problem, see vm-disks.ts); the VM is then not captured. */
  claimProblem?: { reason: ClaimProblemReason; detail: string };
  /** Its volumes that are not data (vm-disks.ts): named in its manifest as skipped, never captured. */
  skippedVolumes?: SkippedVolume[];
  /** The standalone DataVolumes its VirtualMachine names (vm-definition.ts): read by the agent for its definition. */
  dataVolumes?: string[];
  /** The Secrets its VirtualMachine references, only for a backup with includeSecrets: read and stored by the agent. */
  secrets?: string[];
}

/** A disk of a VM that is a PersistentVolumeClaim of its namespace, as a node step lists it. */
export interface PlannedClaim {
  /** The volume's name in the VM spec. */
  volume: string;
  claimName: string;
  /** How the VM names it: directly, or through a DataVolume of the claim's name. */
  sourceKind: "PersistentVolumeClaim" | "DataVolume";
  volumeMode: "Filesystem" | "Block";
  /**
   * The claim's shape when the step was planned, recorded in the backup so that a claim can be made again
   * like it: access modes, StorageClass, capacity in bytes. Backups only; a restore step names the claim.
   */
  accessModes?: string[];
  storageClassName?: string;
  sizeBytes?: number;
  /** How the claim is cut (see workload-claim-methods.ts); absent on steps planned before it was decided. */
  snapshotMethod?: "CSI" | "Reflink" | "Copy";
  /** Why that method, one line (what Auto picked and why). */
  why?: string;
  /** CSI only: the VolumeSnapshotClass of the claim's driver. */
  volumeSnapshotClassName?: string;
  /** CSI only: the claim's driver has a VolumeGroupSnapshotClass (its VM's claims are cut in one group). */
  groupSnapshot?: boolean;
  /** With groupSnapshot: the VolumeGroupSnapshotClass of the claim's driver. */
  volumeGroupSnapshotClassName?: string;
}

export type ClaimProblemReason =
  | "InvalidVolume"
  | "ClaimNotFound"
  | "ClaimNotBound"
  | "ClaimInOtherNamespace"
  | "VolumeSnapshotClassNotFound"
  | "ReflinkNotSupported";

/** A Node as observed now. */
export interface ObservedNode {
  name: string;
  ready: boolean;
  /** Not cordoned. */
  schedulable: boolean;
  controlPlane: boolean;
  /** Allocatable minus requests of pods on it. */
  freeCpuMilli: number;
  freeMemoryBytes: number;
  /** NotReady transitions + failed snapshot Jobs within the failure window (see countRecentFailures). */
  recentFailures: number;
}

/** spec.ordering of a FederatedBackup. */
export interface OrderingPolicy {
  policy: "WorkloadCount" | "FailureRate" | "CriticalWorkload" | "FreeResources" | "Explicit" | "Random";
  /** Explicit only. */
  nodes?: string[];
  /** Random only; defaults to 0. */
  seed?: number;
  controlPlaneNode?: "First" | "Last" | "Skip";
}

/** Every reason a selected VM can end up not captured; a const list so tests and callers can enumerate them. */
export const MISSING_REASONS = [
  "NotFound",
  "NotRunning",
  "Migrating",
  "NodeNotReady",
  "NodeFailed",
  "NodeSkipped",
  "NoSharedDisk",
  "SharedFile",
  "UnsafeFile",
  "InvalidVolume",
  "ClaimNotFound",
  "ClaimNotBound",
  "ClaimInOtherNamespace",
  "VolumeSnapshotClassNotFound",
  "ReflinkNotSupported",
  "CaptureFailed",
] as const;

export type MissingReason = (typeof MISSING_REASONS)[number];

/** The work on one node: one Job captures all of these VMs. */
export interface NodeStep {
  node: string;
  /** Position in the processing order, starting at 1 (as status.nodes[].order). */
  order: number;
  /** Sorted by workloadKey. */
  workloads: ObservedWorkload[];
}

/** A selected VM that no step will capture, and why. */
export interface UnplacedWorkload {
  workload: WorkloadRef;
  reason: MissingReason;
  /** One line, for status.missing[].message. */
  message: string;
  /** The node the VM was last seen on, when known. */
  lastNode?: string;
}
