// Where a restore puts a captured VM: under its own name and namespace (in place, or again after it was
// deleted), or as a copy under another (workloads[].targetName, targetNamespace, or the restore's
// namespaceMapping). One function, so that the plan, the step and the created objects cannot disagree.
import type { WorkloadRef } from "./types.js";

/** What spec.workloads[] may say about the target of one VM. */
export interface TargetRequest {
  targetName?: string;
  targetNamespace?: string;
}

/**
 * The VM the restore acts on for the captured VM `source`: targetNamespace first, else the namespace
 * namespaceMapping maps the source's to, else the source's; targetName, else the source's name.
 */
export function restoreTarget(
  source: WorkloadRef,
  request: TargetRequest | undefined,
  namespaceMapping: Readonly<Record<string, string>> | undefined,
): WorkloadRef {
  return {
    namespace: request?.targetNamespace ?? namespaceMapping?.[source.namespace] ?? source.namespace,
    name: request?.targetName ?? source.name,
  };
}

/** A copy: the target is another VM than the captured one, which is never touched. */
export const isCopy = (source: WorkloadRef, target: WorkloadRef): boolean =>
  source.namespace !== target.namespace || source.name !== target.name;
