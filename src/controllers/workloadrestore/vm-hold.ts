// A VM the restore has stopped carries a "hold" annotation with everything needed to put it back: who
// holds it, how it ran before, where, and the node selector the restore overrides to start it on its
// restore node. Kept on the VM itself so that an operator restarted at any moment still knows which VMs
// it stopped and how to start them again; no VM is left stopped or pinned by a forgotten restore.
import type { VirtualMachine } from "../../api/kubevirt.js";

export const ANNOTATION_RESTORE_HOLD = "fedbackup.io/restore-hold";
export const HOSTNAME_LABEL = "kubernetes.io/hostname";

export interface VmHold {
  /** The WorkloadRestore holding the VM: "WorkloadRestore/<ns>/<name>/<uid>". */
  owner: string;
  /** Its run strategy before the restore (spec.running true/false recorded as Always/Halted). */
  runStrategy: string;
  /** The node it ran on when it was stopped; "" when it was not running. */
  activeNode: string;
  /** Its template's kubernetes.io/hostname node selector before the restore; absent when it had none. */
  nodeSelector?: string;
}

/** What the restore needs to know of a VirtualMachine and its instance. */
export interface VmView {
  /** The VirtualMachine exists. */
  exists: boolean;
  /** spec.runStrategy, or Always/Halted from the deprecated spec.running. */
  runStrategy: string;
  hold?: VmHold;
  /** The template's kubernetes.io/hostname node selector. */
  pinnedNode?: string;
  /** The VirtualMachine's spec (definition Keep says whether it differs from the captured one). */
  spec?: Record<string, unknown>;
  vmi?: { node?: string; phase: string; migrating: boolean };
  /** This restore's migration of the VM, if it created one. */
  migration?: { phase: string };
}

/** Run strategies under which KubeVirt keeps the VM running. */
export const RUNNING_STRATEGIES: ReadonlySet<string> = new Set(["Always", "RerunOnFailure"]);

export function effectiveRunStrategy(vm: VirtualMachine): string {
  if (vm.spec?.runStrategy) return vm.spec.runStrategy;
  return vm.spec?.running ? "Always" : "Halted";
}

export function readHold(vm: VirtualMachine): VmHold | undefined {
  const text = vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD];
  if (!text) return undefined;
  try {
    const hold = JSON.parse(text) as Partial<VmHold>;
    if (typeof hold.owner !== "string" || typeof hold.runStrategy !== "string") return undefined;
    return {
      owner: hold.owner,
      runStrategy: hold.runStrategy,
      activeNode: typeof hold.activeNode === "string" ? hold.activeNode : "",
      ...(typeof hold.nodeSelector === "string" ? { nodeSelector: hold.nodeSelector } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The run strategy a VM is started with after its restore: the one it had if it ran, else Always. */
export const startStrategy = (hold: VmHold): string =>
  RUNNING_STRATEGIES.has(hold.runStrategy) ? hold.runStrategy : "Always";

/** Merge patch: record the hold and stop the VM (its VMI is deleted by KubeVirt). */
export function holdPatch(vm: VirtualMachine, hold: VmHold): Record<string, unknown> {
  return {
    metadata: { annotations: { [ANNOTATION_RESTORE_HOLD]: JSON.stringify(hold) } },
    // runStrategy and the deprecated running cannot both be set.
    spec: { runStrategy: "Halted", ...(vm.spec?.running !== undefined ? { running: null } : {}) },
  };
}

/** Merge patch: start the VM pinned to a node. */
export const startPatch = (node: string, runStrategy: string): Record<string, unknown> => ({
  spec: { runStrategy, template: { spec: { nodeSelector: { [HOSTNAME_LABEL]: node } } } },
});

/** Merge patch: drop the hold and the pin; a running instance stays where it runs. */
export const releasePatch = (hold: VmHold, runStrategy?: string): Record<string, unknown> => ({
  metadata: { annotations: { [ANNOTATION_RESTORE_HOLD]: null } },
  spec: {
    ...(runStrategy ? { runStrategy } : {}),
    template: { spec: { nodeSelector: { [HOSTNAME_LABEL]: hold.nodeSelector ?? null } } },
  },
});

export function pinnedNodeOf(vm: VirtualMachine): string | undefined {
  return vm.spec?.template?.spec?.nodeSelector?.[HOSTNAME_LABEL];
}
