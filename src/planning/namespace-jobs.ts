// A node step split into one part per namespace: a pod can mount only claims of its own namespace, so
// the step runs one Job per (node, namespace), one after the other, and no Job ever reads a claim of a
// namespace other than its own.
//
// Which part a VM goes to:
// - a VM with at least one claim: the part of its own namespace, with all its disks, so that one Job
//   freezes it once and cuts every disk inside that freeze;
// - a VM whose only capturable disks are hostDisk files on the shared volume: the part of the step's own
//   namespace (where the shared volume's claim is), as every VM is today. A backup without claims thus
//   keeps exactly one part, the Job it has today.
// A part handles hostDisk files when one of its VMs has some (`sharedVolume`): its Job mounts the shared
// volume. A part of another namespace with `sharedVolume` set is a VM mixing hostDisks and claims outside
// the step's namespace; the shared volume's claim is not in that namespace, so the wiring must either give
// that Job the shared volume there (a claim of its own bound to the same filesystem) or report the VM.
//
// The parts' order: the step's own namespace first (the work of today, and the shared volume's), then the
// other namespaces by code units (compareStrings), so that every operator replica and every reconcile
// computes the same order whatever its locale, and a Job's name can carry its part's position.
import { compareStrings, compareWorkloads, toRef, uniqueBy } from "./compare.js";
import type { VmDisk } from "./disks.js";
import type { WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

/** One VM of the node step with its disks (vm-disks.ts). */
export interface StepWorkloadDisks {
  workload: WorkloadRef;
  disks: readonly VmDisk[];
}

/** The work of one Job of the step: the VMs of one namespace and the claims its pod must have. */
export interface NamespacePart {
  namespace: string;
  /** Position in the step, starting at 1. */
  order: number;
  /** Sorted by workloadKey. */
  workloads: WorkloadRef[];
  /** Filesystem-mode claims to mount (each VM's disk.img is read like a hostDisk file), sorted. */
  mounts: string[];
  /** Block-mode claims to attach as volumeDevices (read as raw devices), sorted. */
  devices: string[];
  /** A VM of the part has hostDisk files: the Job mounts the shared volume. */
  sharedVolume: boolean;
}

export interface NamespaceParts {
  parts: NamespacePart[];
  /** VMs with no capturable disk (no claim, no hostDisk on the shared volume): in no part, sorted. */
  leftOut: WorkloadRef[];
}

/**
 * Splits a node step into its per-namespace parts (see the top of this file). A VM listed twice is taken
 * once (the first). A claim two VMs of one namespace name is mounted once; its mode is the one the first
 * VM, in key order, saw (a claim has one mode: two different ones mean an observation changed meanwhile).
 */
export function splitByNamespace(stepNamespace: string, workloads: readonly StepWorkloadDisks[]): NamespaceParts {
  const byNamespace = new Map<
    string,
    { workloads: WorkloadRef[]; modes: Map<string, "Filesystem" | "Block">; sharedVolume: boolean }
  >();
  const leftOut: WorkloadRef[] = [];
  const unique = uniqueBy(workloads, (w) => workloadKey(w.workload)).sort((a, b) =>
    compareWorkloads(a.workload, b.workload),
  );
  for (const { workload, disks } of unique) {
    const claims = disks.flatMap((d) => (d.kind === "claim" ? [d] : []));
    const shared = disks.some((d) => d.kind === "hostDisk" && d.sharedPath !== undefined);
    if (claims.length === 0 && !shared) {
      leftOut.push(toRef(workload));
      continue;
    }
    const namespace = claims.length > 0 ? workload.namespace : stepNamespace;
    let part = byNamespace.get(namespace);
    if (!part) byNamespace.set(namespace, (part = { workloads: [], modes: new Map(), sharedVolume: false }));
    part.workloads.push(toRef(workload));
    part.sharedVolume ||= shared;
    for (const c of claims) if (!part.modes.has(c.claimName)) part.modes.set(c.claimName, c.volumeMode);
  }

  const namespaces = [...byNamespace.keys()].sort(
    (a, b) => Number(b === stepNamespace) - Number(a === stepNamespace) || compareStrings(a, b),
  );
  return {
    parts: namespaces.map((namespace, i) => {
      const part = byNamespace.get(namespace)!;
      const claimsOf = (mode: "Filesystem" | "Block") =>
        [...part.modes]
          .filter(([, m]) => m === mode)
          .map(([name]) => name)
          .sort(compareStrings);
      return {
        namespace,
        order: i + 1,
        workloads: part.workloads,
        mounts: claimsOf("Filesystem"),
        devices: claimsOf("Block"),
        sharedVolume: part.sharedVolume,
      };
    }),
    leftOut,
  };
}
