// Turns the objects the informers hold into the plain data the planner decides on.
import type { NodeObject, VirtualMachineInstance } from "../../api/kubevirt.js";
import { ANNOTATION_EXTRA_FILES, LABEL_CRITICAL, LABEL_PRIORITY } from "../../api/labels.js";
import type { FederatedBackupSpecWorkloads } from "../../api/v1alpha1/index.js";
import type { ObservedNode, ObservedWorkload } from "../../planning/index.js";
import { matchesLabelSelector } from "./label-selector.js";
import { parseQuantity } from "./quantity.js";

/** A path under the shared mount, relative to it; undefined when it lies elsewhere. */
export function relativeToMount(mount: string, file: string): string | undefined {
  const root = mount.endsWith("/") ? mount : `${mount}/`;
  if (!file.startsWith(root)) return undefined;
  const rel = file.slice(root.length);
  return rel && !rel.split("/").includes("..") ? rel : undefined;
}

/** The VM's files on the shared volume: its shared hostDisk paths plus the extra-files annotation. */
export function sharedFilesOf(vmi: VirtualMachineInstance, nodeMountPath: string): string[] {
  const disks = (vmi.spec?.volumes ?? []).flatMap((v) => (v.hostDisk?.path ? [v.hostDisk.path] : []));
  const extra = (vmi.metadata.annotations?.[ANNOTATION_EXTRA_FILES] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const files = [...disks, ...extra].flatMap((f) => relativeToMount(nodeMountPath, f) ?? []);
  return [...new Set(files)].sort();
}

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
