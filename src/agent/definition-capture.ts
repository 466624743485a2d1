// Reads a VM's definition from the API server for its backup: the VirtualMachine of the captured instance
// (same name and namespace), the standalone DataVolumes it names, and with includeSecrets the Secrets it
// references. The agent does this before any freeze, never inside a freeze window (backup.ts).
//
// The agent may read only what its step names (agent-access.ts grants get by name): the VM, the step's
// workloads[].dataVolumes and workloads[].secrets. A DataVolume or Secret the VM names now but the step did
// not (the VM changed since the step was planned) is not read, and the result says so. An object that does
// not exist (NotFound) is not an error: a VMI without a VirtualMachine has no definition, a missing
// DataVolume or Secret is left out. Any other API error is thrown, as the agent's other API errors are.
import type { KubeClient } from "../k8s/client.js";
import { Resources } from "../k8s/resources.js";
import type { KubeObject } from "../k8s/types.js";
import type { ApiObject, VmDefinition } from "../planning/vm-definition.js";
import { definitionOf, standaloneDataVolumeNames } from "../planning/vm-definition.js";
import type { SecretObject, SecretsFile } from "../planning/vm-secrets.js";
import { secretsFileOf } from "../planning/vm-secrets.js";

/** Reads one object by name; undefined when it does not exist. */
export interface VmObjectReader {
  virtualMachine(namespace: string, name: string): Promise<ApiObject | undefined>;
  dataVolume(namespace: string, name: string): Promise<ApiObject | undefined>;
  secret(namespace: string, name: string): Promise<SecretObject | undefined>;
}

/** What the step allows the agent to read for one VM. */
export interface DefinitionRequest {
  namespace: string;
  name: string;
  /** The standalone DataVolumes the step names for it. */
  dataVolumes?: readonly string[];
  /** With includeSecrets, the Secrets the step names for it. */
  secrets?: readonly string[];
}

export interface CapturedDefinition {
  /** Absent when the VM has no VirtualMachine. */
  definition?: VmDefinition;
  /** With includeSecrets and a definition: the referenced Secrets that exist (possibly none). */
  secrets?: SecretsFile;
  /** What was left out and why (no VirtualMachine, a DataVolume or Secret missing or not in the step). */
  notes: string[];
}

/** The VM's definition, and its Secrets with includeSecrets, as the step allows them to be read. */
export async function captureDefinition(
  reader: VmObjectReader,
  request: DefinitionRequest,
  includeSecrets: boolean,
): Promise<CapturedDefinition> {
  const { namespace, name } = request;
  const vm = await reader.virtualMachine(namespace, name);
  if (!vm) return { notes: ["it has no VirtualMachine, so no definition was recorded"] };
  const notes: string[] = [];
  const allowedDataVolumes = new Set(request.dataVolumes ?? []);
  const dataVolumes: ApiObject[] = [];
  for (const dv of standaloneDataVolumeNames(vm.spec)) {
    if (!allowedDataVolumes.has(dv)) {
      notes.push(`DataVolume ${dv} was not named when the step was planned and was not read`);
      continue;
    }
    const object = await reader.dataVolume(namespace, dv);
    if (object) dataVolumes.push(object);
    else notes.push(`DataVolume ${dv} does not exist`);
  }
  const definition = definitionOf(vm, dataVolumes);
  if (!includeSecrets) return { definition, notes };
  const allowedSecrets = new Set(request.secrets ?? []);
  const secrets: SecretObject[] = [];
  for (const { name: secret } of definition.references.secrets) {
    if (!allowedSecrets.has(secret)) {
      notes.push(`Secret ${secret} was not named when the step was planned and was not stored`);
      continue;
    }
    const object = await reader.secret(namespace, secret);
    if (object) secrets.push(object);
    else notes.push(`Secret ${secret} does not exist and was not stored`);
  }
  return { definition, secrets: secretsFileOf(secrets), notes };
}

/** Reads the objects from the API server with the agent's client (its step's token). */
export function apiVmObjectReader(client: KubeClient): VmObjectReader {
  return {
    virtualMachine: (ns, name) => client.find<KubeObject & ApiObject>(Resources.VirtualMachine, ns, name),
    dataVolume: (ns, name) => client.find<KubeObject & ApiObject>(Resources.DataVolume, ns, name),
    secret: (ns, name) => client.find<KubeObject & SecretObject>(Resources.Secret, ns, name),
  };
}
