// Which VMIs a FederatedBackup selects.
import type { VirtualMachineInstance } from "../../api/kubevirt.js";
import type { FederatedBackupSpecWorkloads } from "../../api/v1alpha1/index.js";
import { matchesLabelSelector } from "./label-selector.js";

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
