// What the Starting stage does with the VirtualMachine object of a VM whose disks were restored, as the step
// recorded it (spec.workloads[].definition): create it from the definition the agent reported, put the
// captured spec back, or only say whether it still matches. Pure.
//
// The definition comes from the backup location, which others than fedbackup can write; the agent checked
// it against the manifest's sha256, and here it is parsed again and must name no disk but the ones its
// capture held (and the restore wrote), so that a VM created from it never gets another VM's disk.
import type { NodeRestoreSpecWorkload, NodeRestoreStatusResult } from "../../api/v1alpha1/index.js";
import {
  capturedRunStrategy,
  comparableSpec,
  foreignDisksOf,
  recreatedObjects,
  type RecreatedObjects,
} from "../../planning/recreated-vm.js";
import { parseVmDefinition, type VmDefinition } from "../../planning/vm-definition.js";
import { jsonEqual } from "../runtime/conditions.js";
import { ANNOTATION_RESTORE_HOLD, HOSTNAME_LABEL, RUNNING_STRATEGIES, type VmHold, type VmView } from "./vm-hold.js";

/** On a VirtualMachine a restore created: "<backup namespace>/<backup>: <captured namespace>/<name>". */
export const ANNOTATION_RESTORED_FROM = "fedbackup.io/restored-from";

export type DefinitionOutcome = "Created" | "Replaced" | "Kept" | "Matches";

/** The definition the agent reported, parsed; an error when it does not parse; undefined when none came. */
export function reportedDefinition(
  report: NodeRestoreStatusResult | undefined,
): VmDefinition | { error: string } | undefined {
  if (!report?.definition) return undefined;
  try {
    return parseVmDefinition(report.definition);
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

export type VmCreation =
  | { kind: "Create"; objects: RecreatedObjects; held: boolean; runStrategy: string }
  | { kind: "Refuse"; reason: "DefinitionNotReported" | "DefinitionMismatch"; message: string };

export interface VmCreationInput {
  workload: NodeRestoreSpecWorkload;
  report: NodeRestoreStatusResult | undefined;
  /** spec.sharedVolume.nodeMountPath of the step: where the captured hostDisk paths lie. */
  nodeMountPath: string;
  /** The restore's hold owner. */
  owner: string;
  /** "<namespace>/<backup>". */
  backup: string;
  keepIdentity: boolean;
  /** The Secrets and ConfigMaps it references that do not exist ("Secret x"): it is created halted. */
  missingReferences: readonly string[];
}

/**
 * The objects a VM is created from. One the captured run strategy keeps running is created halted and held
 * by the restore, which then starts it on the restore node like any VM it restored; one that lacks a Secret
 * or ConfigMap is created halted and left so; any other is created with its captured run strategy.
 */
export function vmCreation(input: VmCreationInput): VmCreation {
  const { workload: w } = input;
  const definition = reportedDefinition(input.report);
  if (!definition || "error" in definition) {
    return {
      kind: "Refuse",
      reason: "DefinitionNotReported",
      message: definition
        ? `its disks were restored, but its captured definition is not valid (${definition.error}); no VirtualMachine was created`
        : "its disks were restored, but the node agent reported no captured definition; no VirtualMachine was created",
    };
  }
  const claims = w.claims ?? [];
  const capturedClaims = new Set(claims.map((c) => c.capturedClaimName ?? c.claimName));
  const renamed = new Map((w.renamedFiles ?? []).map((r) => [r.to, r.from]));
  const capturedFiles = (w.files ?? []).map((f) => renamed.get(f) ?? f);
  const foreign = foreignDisksOf(definition, capturedClaims, capturedFiles, input.nodeMountPath);
  if (foreign.length > 0) {
    return {
      kind: "Refuse",
      reason: "DefinitionMismatch",
      message:
        `its disks were restored, but its captured definition names disks its capture did not hold ` +
        `(${foreign.slice(0, 5).join(", ")}); no VirtualMachine was created from it`,
    };
  }
  const captured = capturedRunStrategy(definition);
  const held = input.missingReferences.length === 0 && RUNNING_STRATEGIES.has(captured);
  const pinned = (definition.virtualMachine.spec.template as { spec?: { nodeSelector?: Record<string, string> } })?.spec
    ?.nodeSelector?.[HOSTNAME_LABEL];
  const hold: VmHold = {
    owner: input.owner,
    runStrategy: captured,
    activeNode: "",
    ...(typeof pinned === "string" ? { nodeSelector: pinned } : {}),
  };
  const source = w.source ?? { namespace: w.namespace, name: w.name };
  const runStrategy = held || input.missingReferences.length > 0 ? "Halted" : captured;
  const objects = recreatedObjects(definition, {
    source,
    target: { namespace: w.namespace, name: w.name },
    claimNames: new Map(claims.map((c) => [c.capturedClaimName ?? c.claimName, c.claimName])),
    renamedFiles: w.renamedFiles ?? [],
    newIdentity: !input.keepIdentity,
    runStrategy,
    annotations: {
      [ANNOTATION_RESTORED_FROM]: `${input.backup}: ${source.namespace}/${source.name}`,
      ...(held ? { [ANNOTATION_RESTORE_HOLD]: JSON.stringify(hold) } : {}),
    },
  });
  return { kind: "Create", objects, held, runStrategy };
}

/**
 * definition Replace: the spec to put back (halted, as the restore holds the VM) and the hold that starts it
 * as captured; undefined when its spec is the captured one already, or there is none to put back.
 */
export function replacement(
  v: VmView,
  report: NodeRestoreStatusResult | undefined,
): { spec: Record<string, unknown>; hold: VmHold } | undefined {
  const definition = reportedDefinition(report);
  if (!definition || "error" in definition || !v.hold) return undefined;
  const captured = definition.virtualMachine.spec;
  if (jsonEqual(comparableSpec(v.spec), comparableSpec(captured))) return undefined;
  const spec = structuredClone(captured);
  delete spec.running;
  spec.runStrategy = "Halted";
  const pinned = (captured.template as { spec?: { nodeSelector?: Record<string, string> } })?.spec?.nodeSelector?.[
    HOSTNAME_LABEL
  ];
  const { nodeSelector: _before, ...rest } = v.hold;
  return {
    spec,
    hold: {
      ...rest,
      runStrategy: capturedRunStrategy(definition),
      ...(typeof pinned === "string" ? { nodeSelector: pinned } : {}),
    },
  };
}

/** What the results say became of the VM object. */
export function definitionOutcome(
  w: NodeRestoreSpecWorkload,
  v: VmView,
  report: NodeRestoreStatusResult | undefined,
): DefinitionOutcome | undefined {
  if (w.definition === "Create") return "Created";
  const definition = reportedDefinition(report);
  if (!definition || "error" in definition) return undefined;
  if (w.definition === "Replace") return "Replaced";
  return jsonEqual(comparableSpec(v.spec), comparableSpec(definition.virtualMachine.spec)) ? "Matches" : "Kept";
}
