// The parts of KubeVirt's and Kubernetes' objects that fedbackup reads, typed by hand (the operator
// does not own these APIs; unknown fields pass through untouched).
import type { ObjectMeta } from "./v1alpha1/index.js";

/**
 * One entry of a VMI's spec.volumes: its name and exactly one source (KubeVirt's admission enforces that;
 * planning/vm-disks.ts does not rely on it). The data sources are hostDisk, persistentVolumeClaim and
 * dataVolume; the others are ephemeral or configuration, never backed up.
 */
export interface HostDiskVolume {
  name: string;
  hostDisk?: { path: string; type?: string; capacity?: string; shared?: boolean };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean; hotpluggable?: boolean };
  /** A CDI DataVolume: its claim has the DataVolume's name, in the VMI's namespace. */
  dataVolume?: { name: string; hotpluggable?: boolean };
  containerDisk?: { image?: string; path?: string; imagePullPolicy?: string; imagePullSecret?: string };
  cloudInitNoCloud?: Record<string, unknown>;
  cloudInitConfigDrive?: Record<string, unknown>;
  emptyDisk?: { capacity?: string };
  /** A claim used read-only under a temporary overlay: writes are discarded, so it is not data. */
  ephemeral?: { persistentVolumeClaim?: { claimName: string; readOnly?: boolean } };
  configMap?: { name?: string; optional?: boolean; volumeLabel?: string };
  secret?: { secretName?: string; optional?: boolean; volumeLabel?: string };
  serviceAccount?: { serviceAccountName?: string };
  downwardAPI?: Record<string, unknown>;
  sysprep?: { configMap?: { name?: string }; secret?: { name?: string } };
}

/** The same entry under the name the claim-aware planning uses. */
export type VmiVolume = HostDiskVolume;

export interface VirtualMachineInstance {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & {
    resourceVersion?: string;
    ownerReferences?: Array<{ kind: string; name: string; uid: string }>;
  };
  spec?: { volumes?: HostDiskVolume[]; nodeSelector?: Record<string, string>; [field: string]: unknown };
  status?: {
    phase?: string;
    nodeName?: string;
    migrationState?: {
      sourceNode?: string;
      targetNode?: string;
      completed?: boolean;
      failed?: boolean;
      startTimestamp?: string;
      endTimestamp?: string;
    };
    fsFreezeStatus?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

export interface NodeObject {
  metadata: ObjectMeta & { resourceVersion?: string };
  spec?: { unschedulable?: boolean; taints?: Array<{ key: string; effect: string; value?: string }> };
  status?: {
    allocatable?: Record<string, string>;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
  };
}

export interface VirtualMachine {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & { resourceVersion?: string };
  spec?: {
    runStrategy?: string;
    running?: boolean;
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: { nodeSelector?: Record<string, string>; volumes?: HostDiskVolume[]; [field: string]: unknown };
    };
    [field: string]: unknown;
  };
  status?: { printableStatus?: string; ready?: boolean; created?: boolean };
}

export interface VirtualMachineInstanceMigration {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & { resourceVersion?: string };
  spec: { vmiName: string; addedNodeSelector?: Record<string, string> };
  status?: { phase?: string };
}
