// Where each file of a backup is written on the shared volume. A VM restored as itself writes every file at
// the path it was captured at; a copy restored under another name or namespace (NodeRestore
// spec.workloads[].renamedFiles) writes a file at another path instead, so that the original's disk is
// never touched. Either way the manifest is untrusted: every target must be a file the operator allows
// for the VM (spec.workloads[].files), and no two files of the backup may land on one target.
import { relativePathProblem } from "./manifest.js";
import { RestoreError } from "./restore-error.js";

/** A file of the captured VM's backup written at another path (NodeRestore spec.workloads[].renamedFiles). */
export interface RenamedFile {
  /** The file's path in the backup, relative to the shared volume root. */
  from: string;
  /** Where it is written, relative to the shared volume root. */
  to: string;
}

/**
 * The target of each captured path of `files`, in their order: its `to` when renamed, else the captured
 * path itself. Throws ForeignFile for a target that is not allowed or that two files of the backup would
 * share; a renaming with an invalid path, or two renamings of one file, is refused as an invalid request.
 * Renamings of files the backup does not hold are left unused.
 */
export function restoreTargets(
  files: readonly string[],
  renamed: readonly RenamedFile[],
  allowed: readonly string[],
  vm: string,
): string[] {
  const targetOf = new Map<string, string>();
  for (const { from, to } of renamed) {
    for (const path of [from, to]) {
      const problem = relativePathProblem(path);
      if (problem) throw new Error(`invalid renamed file ${JSON.stringify(path)}: ${problem}`);
    }
    if (targetOf.has(from)) throw new Error(`${from} is renamed twice (to ${targetOf.get(from)} and ${to})`);
    targetOf.set(from, to);
  }
  const allowedSet = new Set(allowed);
  const writtenBy = new Map<string, string>();
  return files.map((path) => {
    const target = targetOf.get(path) ?? path;
    const as = target === path ? "" : ` (written as ${target})`;
    if (!allowedSet.has(target)) {
      throw new RestoreError(
        "ForeignFile",
        `the backup of ${vm} lists ${path}${as}, which is not a file ${vm} may be restored to ` +
          `(a disk its VirtualMachine uses now and no other VM uses); nothing was written`,
        target,
      );
    }
    const other = writtenBy.get(target);
    if (other !== undefined) {
      throw new RestoreError(
        "ForeignFile",
        `the backup of ${vm} lists both ${other} and ${path}, which would both be written to ${target}; ` +
          `nothing was written`,
        target,
      );
    }
    writtenBy.set(target, path);
    return target;
  });
}
