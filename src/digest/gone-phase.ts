// The phase of a VM the digest knows only from a capture or a restore: it has no VMI now.
import { vmKey, type DigestVm } from "./types.js";

/** A VM without a VMI whose VirtualMachine exists (stopped), or whose VirtualMachines could not be read. */
export const MISSING_PHASE = "Missing";

/** A VM with neither a VirtualMachine nor a VMI: it exists only in backups. */
export const DELETED_PHASE = "Deleted";

/** The VirtualMachines that exist, by "namespace/name". */
export function existingVms(vms: readonly DigestVm[]): Set<string> {
  return new Set(vms.map((vm) => vmKey(vm.metadata.namespace ?? "", vm.metadata.name ?? "")));
}

/**
 * Missing or Deleted, for the VM `key` ("namespace/name") that has no VMI. Without the list of
 * VirtualMachines (a user who may not read them) a deleted VM cannot be told from a stopped one: Missing.
 * A VM deleted and created again under the same name exists, so it is not Deleted.
 */
export function phaseWithoutVmi(key: string, vms: ReadonlySet<string> | undefined): string {
  return vms && !vms.has(key) ? DELETED_PHASE : MISSING_PHASE;
}
