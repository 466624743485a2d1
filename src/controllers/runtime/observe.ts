// Turns the VMIs and Nodes the informers hold into the plain data the planners of both controllers decide on.
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import { LABEL_CRITICAL, LABEL_PRIORITY } from "../../api/labels.js";
import type { ObservedNode, ObservedWorkload } from "../../planning/index.js";
import { sharedFilesOf } from "./file-claims.js";
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

/** A Node as the planners see it: `requested` is what its pods reserve (runtime/node-requests.ts). */
export function observeNode(
  node: NodeObject,
  requested: { cpuMilli: number; memoryBytes: number } = { cpuMilli: 0, memoryBytes: 0 },
  recentFailures = 0,
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

/** A VirtualMachine without an instance, as the planners see it: not running anywhere. */
export function stoppedWorkload(vm: VirtualMachine): ObservedWorkload {
  return {
    namespace: vm.metadata.namespace ?? "",
    name: vm.metadata.name ?? "",
    uid: vm.metadata.uid ?? "",
    phase: "Stopped",
    migrating: false,
    critical: false,
    priority: 0,
    files: [],
  };
}
