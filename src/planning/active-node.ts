import type { ObservedWorkload } from "./types.js";

/**
 * The node a VMI is active on, or undefined when it is not running anywhere. Only phase Running counts:
 * Pending/Scheduling VMs have no disk state worth capturing yet, and Succeeded/Failed ones have stopped.
 * During a live migration status.nodeName still names the source node, which is where the VM is active
 * until the migration completes.
 */
export function activeNodeOf(w: ObservedWorkload): string | undefined {
  if (w.phase !== "Running") return undefined;
  return w.node === undefined || w.node === "" ? undefined : w.node;
}
