// Which storage back ends a node step touches: the keys of the Leases that keep two steps on one back end
// from running at once, across backups and restores.
//
// A key is one of:
// - `group/<name>`: a group the user named for the claims (the user says these claims share a back end,
//   or want to be serialized together, whatever their StorageClass);
// - `storageclass/<name>`: by default, a claim's StorageClass (the back end CSI provisions it on);
// - `volume/<identity>`: the filesystem identity of a PersistentVolume (runtime/volume-identity.ts), for
//   the shared volume of hostDisk VMs and for a claim without a StorageClass (statically provisioned). The
//   shared volume keeps the key it has always been serialized by, so a backup and a restore on it still
//   exclude each other whatever else they touch;
// - `claim/<namespace>/<name>`: a claim with neither a StorageClass nor a known volume, serialized alone.
// The prefixes keep the kinds apart: a StorageClass named like a group never shares its key.
//
// A step whose VMs span several back ends has several keys and must hold every one of their Leases
// before its Job starts. Taking them in the order nodeStepStorageKeys returns (sorted), and releasing
// the ones held when one cannot be had, keeps two steps that want the same two keys from each holding one
// and waiting for the other forever.
import { compareStrings } from "./compare.js";
import type { VmDisk } from "./disks.js";

export interface StorageGroupOptions {
  /** The group the user named for claims; empty or absent: each claim's StorageClass. */
  group?: string;
  /** The shared volume's filesystem identity; required when a disk is a hostDisk on the shared volume. */
  sharedVolumeIdentity?: string;
}

/** The key of the back end one disk lives on; undefined for a hostDisk off the shared volume (not captured). */
export function diskStorageKey(disk: VmDisk, namespace: string, options: StorageGroupOptions = {}): string | undefined {
  if (disk.kind === "hostDisk") {
    if (disk.sharedPath === undefined) return undefined;
    if (!options.sharedVolumeIdentity) {
      throw new Error(`hostDisk ${disk.path} is on the shared volume, but no identity of the shared volume was given`);
    }
    return `volume/${options.sharedVolumeIdentity}`;
  }
  if (options.group) return `group/${options.group}`;
  if (disk.storageClassName) return `storageclass/${disk.storageClassName}`;
  if (disk.volumeIdentity) return `volume/${disk.volumeIdentity}`;
  return `claim/${namespace}/${disk.claimName}`;
}

/** The VMs of one node step, each with its disks (vm-disks.ts's classification). */
export interface StepDisks {
  workload: { namespace: string };
  disks: readonly VmDisk[];
}

/** The sorted, de-duplicated keys of every back end a node step touches: the Leases it must hold, in order. */
export function nodeStepStorageKeys(workloads: readonly StepDisks[], options: StorageGroupOptions = {}): string[] {
  const keys = new Set<string>();
  for (const w of workloads) {
    for (const d of w.disks) {
      const key = diskStorageKey(d, w.workload.namespace, options);
      if (key !== undefined) keys.add(key);
    }
  }
  return [...keys].sort(compareStrings);
}

/** Whether two steps must not run at once: they share a back end. */
export function stepsConflict(a: readonly string[], b: readonly string[]): boolean {
  const keys = new Set(a);
  return b.some((k) => keys.has(k));
}
