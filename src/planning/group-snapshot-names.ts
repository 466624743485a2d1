// The names of what a step's Job makes to cut a VM's claims in one VolumeGroupSnapshot: the group snapshot
// and the label it selects the VM's claims by (a VolumeGroupSnapshot selects claims by label only). Both
// derive from the step's name and the VM's, so a retried Job finds an earlier attempt's group and labels,
// and the operator grants the agent access to the group and deletes it after the extraction. The label's
// value is the group's name: unique to the step and the VM, so two steps (or two VMs of one step) never
// select each other's claims.
import { fnv1a32Hex } from "./fnv1a.js";

/** The label the step's Job puts on a VM's claims while their VolumeGroupSnapshot is taken. */
export const GROUP_SNAPSHOT_LABEL = "fedbackup.io/group-snapshot";

// A label value is at most 63 characters and starts and ends alphanumeric; the hash ends it.
const MAX_PREFIX = 63 - 9;

/** The VolumeGroupSnapshot of VM `vm`'s claims taken by the step `step`, also its claims' label value. */
export function groupSnapshotName(step: string, vm: { namespace: string; name: string }): string {
  const prefix = `${step}-${vm.name}`.slice(0, MAX_PREFIX).replace(/[-.]+$/, "");
  return `${prefix}-${fnv1a32Hex(`${step}\n${vm.namespace}\n${vm.name}`)}`;
}
