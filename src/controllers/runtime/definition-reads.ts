// What a backup step's agent may read for each VM's definition (see agent/definition-capture.ts), decided by
// the operator from its cached VirtualMachine when it plans the step: the standalone DataVolumes the VM
// names, and with includeSecrets the Secrets it references. The step's spec records them and the agent's
// Role grants get on exactly those names (agent-access.ts).
import type { VirtualMachine } from "../../api/kubevirt.js";
import type { ObservedWorkload } from "../../planning/index.js";
import { referencesOf, standaloneDataVolumeNames } from "../../planning/vm-definition.js";

/** Bounds of the step's spec (NodeSnapshot CRD): more is left out, the agent then notes what it did not read. */
export const MAX_DATA_VOLUMES = 64;
export const MAX_SECRETS = 256;

/** The workload with the names its agent may read; unchanged without a VirtualMachine. */
export function withDefinitionReads(
  workload: ObservedWorkload,
  vm: VirtualMachine | undefined,
  includeSecrets: boolean,
): ObservedWorkload {
  if (!vm || vm.metadata.namespace !== workload.namespace || vm.metadata.name !== workload.name) return workload;
  const dataVolumes = standaloneDataVolumeNames(vm.spec).slice(0, MAX_DATA_VOLUMES);
  const secrets = includeSecrets
    ? referencesOf(vm.spec)
        .secrets.map((r) => r.name)
        .slice(0, MAX_SECRETS)
    : [];
  return {
    ...workload,
    ...(dataVolumes.length > 0 ? { dataVolumes } : {}),
    ...(secrets.length > 0 ? { secrets } : {}),
  };
}
