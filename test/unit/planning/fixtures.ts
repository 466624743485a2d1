// Builders for planner inputs: each test states only the fields it is about.
import type { NodeCandidate, ObservedNode, ObservedWorkload, WorkloadRef } from "../../../src/planning/index.js";
import { workloadKey } from "../../../src/planning/index.js";

/** A WorkloadRef from "namespace/name". */
export function ref(key: string): WorkloadRef {
  const [namespace = "", name = ""] = key.split("/");
  return { namespace, name };
}

/** A running VM with one disk on the shared volume, on `node` if given. */
export function vm(key: string, fields: Partial<ObservedWorkload> = {}): ObservedWorkload {
  const { namespace, name } = ref(key);
  return {
    namespace,
    name,
    uid: `uid-${namespace}-${name}`,
    phase: "Running",
    migrating: false,
    critical: false,
    priority: 0,
    files: [`${namespace}/${name}/disk.img`],
    ...fields,
  };
}

/** A Ready, schedulable worker node with some headroom and no recent failures. */
export function node(name: string, fields: Partial<ObservedNode> = {}): ObservedNode {
  return {
    name,
    ready: true,
    schedulable: true,
    controlPlane: false,
    freeCpuMilli: 1000,
    freeMemoryBytes: 1024 ** 3,
    recentFailures: 0,
    ...fields,
  };
}

/** A candidate with one workload and otherwise neutral figures. */
export function candidate(name: string, fields: Partial<NodeCandidate> = {}): NodeCandidate {
  return {
    name,
    workloads: 1,
    critical: 0,
    maxPriority: 0,
    freeCpuMilli: 1000,
    freeMemoryBytes: 1024 ** 3,
    recentFailures: 0,
    controlPlane: false,
    ...fields,
  };
}

/** "namespace/name" of each item, for compact assertions. */
export function keys(items: readonly WorkloadRef[]): string[] {
  return items.map(workloadKey);
}
