// The caches more than one controller reads, asked for in one way so that they share one informer.
// A controller's own kinds (its steps, its migrations) it asks for itself. The large kinds are kept
// slim (slim-objects.ts): only the fields the controllers read.
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import { LABEL_MANAGED_BY } from "../../api/labels.js";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../api/v1alpha1/index.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import type { LeaseObject } from "../../k8s/volume-lease.js";
import type { ControllerManager } from "./controller-manager.js";
import { slimPod, type PodObject } from "./node-requests.js";
import { slimJob, slimNode, slimVm, slimVmi } from "./slim-objects.js";

/** Only what this operator created (its steps, Jobs, migrations, Leases). */
export const MANAGED = { labelSelector: `${LABEL_MANAGED_BY}=fedbackup` };

export type Caches = Pick<ControllerManager, "informer">;

export const backupCache = (m: Caches) => m.informer<FederatedBackup & KubeObject>(Resources.FederatedBackup);

/** The BackupLocations: validated by their controller, read by the backups that reference them. */
export const backupLocationCache = (m: Caches) => m.informer<BackupLocation & KubeObject>(Resources.BackupLocation);

/** The backups' steps: what each backup captured, and which nodes failed. */
export const nodeSnapshotCache = (m: Caches) => m.informer<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, MANAGED);

/** The agent Jobs of backups and restores. */
export const agentJobCache = (m: Caches) =>
  m.informer<KubeObject & { status?: unknown }>(Resources.Job, MANAGED, slimJob);

export const vmCache = (m: Caches) => m.informer<VirtualMachine & KubeObject>(Resources.VirtualMachine, {}, slimVm);

export const vmiCache = (m: Caches) =>
  m.informer<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, {}, slimVmi);

export const nodeCache = (m: Caches) => m.informer<NodeObject & KubeObject>(Resources.Node, {}, slimNode);

/**
 * What pods reserve on each node (FreeResources, MostFreeResources): only bound, unfinished pods, and of
 * each only its node and effective request.
 */
export const podRequestCache = (m: Caches): Informer<PodObject> =>
  m.informer(Resources.Pod, { fieldSelector: "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed" }, slimPod);

/** The shared volumes' Leases, in the operator's namespace. */
export const volumeLeaseCache = (m: Caches, namespace: string) =>
  m.informer<LeaseObject>(Resources.Lease, { namespace, ...MANAGED });
