// Where a backup's files live at its location, relative to the backup's directory (on a claim or under
// an S3 prefix alike). Pure: names in, paths out; every name becomes exactly one path component.
//
// Layout under the backup's root directory at the location:
//   <namespace>/<vm>/manifest.json      one per VM: what was captured, how, and every file's size and sha256
//   <namespace>/<vm>/files/<path>       the disk images, at their path relative to the shared volume root
//   <namespace>/<vm>/devices/<disk>.data the non-zero chunks of a block device, packed (see block-device.ts)
//   <namespace>/<vm>/claims/<disk>/disk.img the disk.img of a Filesystem-mode claim, as it is on the claim
//   <namespace>/<vm>/definition.json    the VM's definition (planning/vm-definition.ts), when its VirtualMachine was read
//   <namespace>/<vm>/secrets.json       the Secrets it references (planning/vm-secrets.ts), mode 0600, with includeSecrets
//   nodes/<node>-r<round>.json          one per node Job run: which VMs it captured and which it could not
import { isAbsolute, posix } from "node:path";
import { ManifestError } from "./manifest-error.js";
import type { WorkloadManifest } from "./manifest-schema.js";

/** The VM's definition file, in its directory. */
export const DEFINITION_FILE = "definition.json";
/** The file of the Secrets it references (with includeSecrets), in its directory. */
export const SECRETS_FILE = "secrets.json";

/** A VM's directory: `<ns>/<vm>`. */
export function workloadDir(namespace: string, name: string): string {
  return posix.join(checkName("namespace", namespace), checkName("VM name", name));
}

/** A VM's manifest, `<ns>/<vm>/manifest.json`, as reported in results and the node manifest. */
export function workloadManifestPath(namespace: string, name: string): string {
  return posix.join(workloadDir(namespace, name), "manifest.json");
}

/** The same as workloadManifestPath (the name callers outside the agent know). */
export const relativeManifestPath = workloadManifestPath;

/** Where an extracted file lives: `<ns>/<vm>/files/<path>`. */
export function backupFilePath(namespace: string, name: string, path: string): string {
  return posix.join(workloadDir(namespace, name), "files", checkRelativePath(path));
}

/** Where a block disk's data file lives: `<ns>/<vm>/devices/<disk>.data`. */
export function backupBlockDiskPath(namespace: string, name: string, disk: string): string {
  return posix.join(workloadDir(namespace, name), "devices", `${checkName("disk name", disk)}.data`);
}

/** Where a Filesystem-mode claim's disk.img is stored: `<ns>/<vm>/claims/<disk>/disk.img`. */
export function backupFilesystemDiskPath(namespace: string, name: string, disk: string): string {
  return posix.join(workloadDir(namespace, name), "claims", checkName("disk name", disk), "disk.img");
}

/** A VM's definition: `<ns>/<vm>/definition.json`. */
export function workloadDefinitionPath(namespace: string, name: string): string {
  return posix.join(workloadDir(namespace, name), DEFINITION_FILE);
}

/** The Secrets a VM references (with includeSecrets): `<ns>/<vm>/secrets.json`. */
export function workloadSecretsPath(namespace: string, name: string): string {
  return posix.join(workloadDir(namespace, name), SECRETS_FILE);
}

/** A node run's manifest: `nodes/<node>-r<round>.json`. */
export function nodeManifestPath(node: string, round: number): string {
  return posix.join("nodes", `${checkName("node name", node)}-r${checkRound(round)}.json`);
}

/** Where the bytes of a listed file are: below the backup's directory, or below the shared volume root. */
export interface FileSource {
  root: "backup" | "shared";
  path: string;
}

/**
 * Where the bytes of a listed file are: under files/ for extractAt Backup, in the kept snapshot on the
 * shared volume for extractAt Restore.
 */
export function manifestFileSource(manifest: WorkloadManifest, path: string): FileSource {
  if (manifest.extractAt === "Backup") {
    return { root: "backup", path: backupFilePath(manifest.workload.namespace, manifest.workload.name, path) };
  }
  if (!manifest.snapshot) throw new ManifestError("Invalid", "extractAt Restore but no snapshot location");
  return {
    root: "shared",
    path: posix.join(checkRelativePath(manifest.snapshot.location), checkRelativePath(path)),
  };
}

/**
 * Why `path` is not a safe path relative to a root, or undefined if it is. Rejected: empty, absolute,
 * any `..` segment, NUL, and non-normalized spellings ("a//b", "./a", "a/"), so that one file has exactly
 * one spelling in a manifest and no path can leave the directory it is joined to.
 */
export function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return "the path is empty";
  if (path.includes("\0")) return "the path contains a NUL character";
  if (isAbsolute(path) || path.startsWith("/")) return "the path is absolute";
  if (path.split("/").includes("..")) return "the path has a '..' segment";
  if (posix.normalize(path) !== path || path.endsWith("/") || path === ".") return "the path is not normalized";
  return undefined;
}

export function checkRelativePath(path: string): string {
  const problem = relativePathProblem(path);
  if (problem) throw new ManifestError("Invalid", `unsafe file path ${JSON.stringify(path)}: ${problem}`);
  return path;
}

/** Namespaces, VM and node names become single path components: no separators, no dot-names. */
export function checkName(kind: string, value: string): string {
  if (value.length === 0 || value === "." || value === ".." || value.includes("/") || value.includes("\0")) {
    throw new ManifestError("Invalid", `invalid ${kind} ${JSON.stringify(value)}: it must be one path component`);
  }
  return value;
}

export function checkRound(round: number): number {
  if (!Number.isSafeInteger(round) || round < 0) throw new ManifestError("Invalid", `invalid round ${round}`);
  return round;
}
