// What a restore does with each VM's VirtualMachine object, decided once, at planning, and recorded in the
// plan and the step (the decision recorded is the one carried out). Pure.
//
//   the VM exists, restored in place   Keep (disks only) or Replace (spec.definition), the user's choice
//   the VM does not exist              Create, from the captured definition, with the disks created-disks.ts
//                                      gives it; skipped when the capture holds no definition
//   a copy (another name or namespace) Create; skipped when a VM of the target's name exists, which a copy
//                                      never overwrites
import { workloadKey } from "../../planning/index.js";
import type { CreatedDisks, CreatedDisksProblem } from "./created-disks.js";
import type { Resolution, ResolvedWorkload, Unrestorable } from "./resolve.js";

export type DefinitionAction = "Create" | "Replace" | "Keep";

export interface VmObjectPlan {
  /** The resolution without the VMs that cannot be restored as asked (moved to unrestorable). */
  resolution: Resolution;
  /** By target "namespace/name": what becomes of its VirtualMachine object. */
  definition: Map<string, DefinitionAction>;
  /** By target "namespace/name", for the VMs created: the disks they are created with. */
  created: Map<string, CreatedDisks>;
}

/**
 * `missing` holds, by target, the VMs whose VirtualMachine does not exist, with the disks they would be created
 * with or why they cannot be; a VM absent from it exists.
 */
export function planVmObjects(
  resolution: Resolution,
  missing: ReadonlyMap<string, CreatedDisks | CreatedDisksProblem>,
  definition: "Keep" | "Replace",
): VmObjectPlan {
  const workloads: ResolvedWorkload[] = [];
  const unrestorable: Unrestorable[] = [...resolution.unrestorable];
  const actions = new Map<string, DefinitionAction>();
  const created = new Map<string, CreatedDisks>();
  const skip = (w: ResolvedWorkload, reason: Unrestorable["reason"], message: string) =>
    unrestorable.push({ namespace: w.namespace, name: w.name, backup: w.backup, reason, message });
  for (const w of resolution.workloads) {
    const key = workloadKey(w);
    const disks = missing.get(key);
    if (!disks) {
      if (w.source) {
        skip(
          w,
          "TargetExists",
          `Skipped: VirtualMachine ${key} exists, and a copy of ${workloadKey(w.source)} is only ever created, ` +
            "never written over another VM; delete it or choose another targetName.",
        );
        continue;
      }
      actions.set(key, definition);
      workloads.push(w);
      continue;
    }
    if (!w.capture.definition) {
      skip(
        w,
        "NoDefinition",
        `Skipped: VirtualMachine ${key} does not exist, and its capture in ${w.backup} holds no definition to create ` +
          "it from (a backup made before definitions were captured, or a VMI without a VirtualMachine); create the " +
          "VirtualMachine, then restore its disks.",
      );
      continue;
    }
    if ("problem" in disks) {
      skip(w, disks.problem, disks.message);
      continue;
    }
    actions.set(key, "Create");
    created.set(key, disks);
    workloads.push(w);
  }
  return { resolution: { ...resolution, workloads, unrestorable }, definition: actions, created };
}
