// Turns the objects the informers hold into the plain data the planner decides on.
import type { NodeObject, VirtualMachineInstance } from "../../api/kubevirt.js";
import { LABEL_CRITICAL, LABEL_PRIORITY } from "../../api/labels.js";
import type { FederatedBackupSpecWorkloads } from "../../api/v1alpha1/index.js";
import type { ObservedNode, ObservedWorkload } from "../../planning/index.js";
import { sharedFilesOf } from "../runtime/file-claims.js";
import { matchesLabelSelector } from "./label-selector.js";
import { parseQuantity } from "./quantity.js";

export function observeWorkload(vmi: VirtualMachineInstance, nodeMountPath: string): ObservedWorkload {
  const m = vmi.status?.migrationState;
  const priority = Number.parseInt(vmi.metadata.labels?.[LABEL_PRIORITY] ?? "0", 10);
  return {
    namespace: vmi.metadata.namespace ?? "",
    name: vmi.metadata.name ?? "",
    uid: vmi.metadata.uid ?? "",
    phase: vmi.status?.phase ?? "",
    node: vmi.status?.nodeName || undefined,
    migrating: !!m && !m.completed && !m.failed && !!m.targetNode,
    critical: vmi.metadata.labels?.[LABEL_CRITICAL] === "true",
    priority: Number.isFinite(priority) ? priority : 0,
    files: sharedFilesOf(vmi, nodeMountPath),
  };
}

/** Whether a VMI is selected by a FederatedBackup's spec.workloads (namespace default: the backup's own). */
export function inScope(
  vmi: VirtualMachineInstance,
  scope: FederatedBackupSpecWorkloads | undefined,
  ownNamespace: string,
): boolean {
  const ns = vmi.metadata.namespace ?? "";
  const name = vmi.metadata.name ?? "";
  if (scope?.names?.length) return scope.names.some((n) => (n.namespace ?? ownNamespace) === ns && n.name === name);
  const namespaces = scope?.namespaces?.length ? scope.namespaces : [ownNamespace];
  if (!namespaces.includes(ns)) return false;
  return matchesLabelSelector(scope?.selector, vmi.metadata.labels ?? {});
}

export function observeNode(
  node: NodeObject,
  requested: { cpuMilli: number; memoryBytes: number },
  recentFailures: number,
): ObservedNode {
  const alloc = node.status?.allocatable ?? {};
  return {
    name: node.metadata.name ?? "",
    ready: node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    schedulable: !node.spec?.unschedulable,
    controlPlane: "node-role.kubernetes.io/control-plane" in (node.metadata.labels ?? {}),
    freeCpuMilli: Math.max(0, parseQuantity(alloc.cpu ?? "0") * 1000 - requested.cpuMilli),
    freeMemoryBytes: Math.max(0, parseQuantity(alloc.memory ?? "0") - requested.memoryBytes),
    recentFailures,
  };
}
