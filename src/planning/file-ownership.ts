// Which files on a shared volume belong to which VM.
//
// A VM's spec and annotations are written by its owner, a tenant, and the node agent reads and writes
// files as root: a path that a VM names is not proof that the file is the VM's. So a VM owns exactly:
// - its disks (hostDisk paths on the volume), and
// - the extra files it names (annotation fedbackup.io/extra-files: NVRAM, TPM state, ...) that lie in the
//   directory of one of its own disks, directly: not above it, not below it;
// and of those, only the paths that no other VM on the cluster names, running or not. A path two VMs
// claim is captured for neither and restored for neither, so that no tenant can make fedbackup read or
// overwrite another tenant's disk by naming it; both are told which VM the other is.
import type { WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

/** What one VM names on the volume, paths relative to the volume root. */
export interface FileClaimant extends WorkloadRef {
  disks: readonly string[];
  extra: readonly string[];
}

export type FileProblem =
  { reason: "SharedFile"; path: string; others: WorkloadRef[] } | { reason: "UnsafeFile"; path: string; why: string };

export interface FileOwnership {
  /** The files that are the VM's own, sorted. */
  files: string[];
  /** Paths it names that are not its own, each with why; empty when every path is its own. */
  problems: FileProblem[];
}

/**
 * The ownership of every claimant's files. A VM listed twice (a VM and its running instance, say) is one
 * claimant: its paths are merged, so it never conflicts with itself.
 */
export function resolveFileOwnership(claimants: readonly FileClaimant[]): Map<string, FileOwnership> {
  const merged = new Map<string, { ref: WorkloadRef; disks: Set<string>; extra: Set<string> }>();
  for (const c of claimants) {
    const key = workloadKey(c);
    let entry = merged.get(key);
    if (!entry)
      merged.set(key, (entry = { ref: { namespace: c.namespace, name: c.name }, disks: new Set(), extra: new Set() }));
    for (const d of c.disks) entry.disks.add(d);
    for (const e of c.extra) entry.extra.add(e);
  }

  // Every path any VM names, whether or not it is that VM's own: naming another VM's disk is itself
  // a conflict, so that the disk's owner learns about it.
  const claimedBy = new Map<string, string[]>();
  for (const [key, entry] of merged) {
    for (const path of new Set([...entry.disks, ...entry.extra])) {
      const keys = claimedBy.get(path);
      if (keys) keys.push(key);
      else claimedBy.set(path, [key]);
    }
  }

  const out = new Map<string, FileOwnership>();
  for (const [key, entry] of merged) {
    const problems: FileProblem[] = [];
    const files: string[] = [];
    const diskDirs = new Set([...entry.disks].map((d) => directoryOf(d)));
    for (const path of [...new Set([...entry.disks, ...entry.extra])].sort()) {
      const others = (claimedBy.get(path) ?? []).filter((k) => k !== key).sort();
      if (others.length > 0) {
        problems.push({ reason: "SharedFile", path, others: others.map((k) => merged.get(k)!.ref) });
      } else if (!entry.disks.has(path) && !diskDirs.has(directoryOf(path))) {
        problems.push({ reason: "UnsafeFile", path, why: "it is not in the directory of one of the VM's disks" });
      } else {
        files.push(path);
      }
    }
    out.set(key, { files, problems });
  }
  return out;
}

// The directory part of a normalized relative path ("" at the volume root).
function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

/** One line for a VM's missing entry or restore result: which path, and why it is not the VM's. */
export function describeFileProblem(problem: FileProblem): string {
  if (problem.reason === "SharedFile") {
    const who = problem.others.map((o) => `VM ${workloadKey(o)}`).join(", ");
    return `${problem.path} is also named by ${who}`;
  }
  return `${problem.path}: ${problem.why}`;
}
