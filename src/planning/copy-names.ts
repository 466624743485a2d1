// The names a copy's disks get, so that a copy never shares a claim or a file with its original.
//
// A claim named after its VM keeps the pattern ("db-0-root" of db-0 becomes "db-0-copy-root" of db-0-copy);
// any other claim gets the copy's name in front ("shared-data" becomes "db-0-copy-shared-data"). A hostDisk
// path has the VM's name as a directory most of the time ("<ns>/db-0/disk0.img"): that directory, and the
// namespace directory right above it, are renamed; a path without the name gets the copy's name in front of
// its file name. A copy in another namespace under the same name keeps its claims' names (claims are
// namespaced) and still gets new file paths (the shared volume is not).
import { fnv1a32Hex } from "./fnv1a.js";
import type { WorkloadRef } from "./types.js";

/** fedbackup takes only claims named by DNS labels (vm-disks.ts), and CDI names DataVolumes so too. */
const MAX_NAME = 63;

/** A DNS label: dots (a targetName may have some) become dashes; a name too long is cut, a hash keeps it unique. */
function bounded(name: string): string {
  const label = name.replace(/\./g, "-");
  return label.length <= MAX_NAME ? label : `${label.slice(0, MAX_NAME - 9).replace(/-+$/, "")}-${fnv1a32Hex(name)}`;
}

/** The name of the copy's claim (or DataVolume) for the original's `claim`. */
export function copyClaimName(claim: string, source: WorkloadRef, target: WorkloadRef): string {
  if (source.name === target.name) return claim;
  if (claim === source.name || claim.startsWith(`${source.name}-`)) {
    return bounded(`${target.name}${claim.slice(source.name.length)}`);
  }
  return bounded(`${target.name}-${claim}`);
}

/** The path of the copy's file for the original's `path` (relative to the shared volume root). */
export function copyFilePath(path: string, source: WorkloadRef, target: WorkloadRef): string {
  if (source.namespace === target.namespace && source.name === target.name) return path;
  const parts = path.split("/");
  const file = parts.length - 1;
  const at = parts.lastIndexOf(source.name, file - 1);
  if (at >= 0) {
    parts[at] = target.name;
    if (at > 0 && parts[at - 1] === source.namespace) parts[at - 1] = target.namespace;
  } else {
    parts[file] = `${target.name}-${parts[file]}`;
  }
  // The same name in another namespace without a namespace directory to tell them apart: the file name does.
  if (parts.join("/") === path) parts[file] = `${target.namespace}-${parts[file]}`;
  return parts.join("/");
}
